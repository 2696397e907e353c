"""Repeated warnings at a bounded rate: while the API server is down every informer fails every
second or so, and a log of identical lines hides the one that matters. The first line of a kind
goes out at once; more of the same kind within the interval are counted, and the next line let
through says how many were suppressed."""

from __future__ import annotations

import time
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field


@dataclass
class Throttle:
    """At most one line per `interval` seconds for each key."""

    interval: float = 10.0
    clock: Callable[[], float] = time.monotonic
    _last: dict[Hashable, float] = field(default_factory=dict)
    _suppressed: dict[Hashable, int] = field(default_factory=dict)

    def admit(self, key: Hashable) -> int | None:
        """None when this line is to be dropped; otherwise how many lines of `key` were
        dropped since the last one let through."""
        now = self.clock()
        last = self._last.get(key)
        if last is not None and now - last < self.interval:
            self._suppressed[key] = self._suppressed.get(key, 0) + 1
            return None
        self._last[key] = now
        return self._suppressed.pop(key, 0)

    def pending(self, key: Hashable) -> int:
        """Lines of `key` dropped and not yet reported."""
        return self._suppressed.get(key, 0)

    def reset(self, key: Hashable) -> int:
        """Forget `key` (its trouble is over); returns the lines dropped and not reported."""
        self._last.pop(key, None)
        return self._suppressed.pop(key, 0)
