"""What the simulated controllers (kubelet, PV controller, disruption controller) do with an
object they cannot handle: skip it, log it once per version, and go on with the others.

A controller pass that raised would stop for good (its task dies) or, retried, let one bad
object block every other; upstream's controllers log the object's error and requeue it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

log = logging.getLogger("berth.cluster.controllers")
JSON = dict[str, Any]

_REMEMBERED = 10_000  # failing object versions kept to log each once


class ObjectErrors:
    """One controller's per-object failures: `run` calls `step(obj)` and never raises."""

    def __init__(self, controller: str) -> None:
        self.controller = controller
        self.failures = 0
        self._logged: set[tuple[str, str, str]] = set()

    def run(self, obj: Any, step: Callable[[Any], int]) -> int:
        try:
            return step(obj)
        except Exception:
            self.failures += 1
            meta = obj.get("metadata") if isinstance(obj, dict) else None
            meta = meta if isinstance(meta, dict) else {}
            key = (
                str(meta.get("namespace") or ""),
                str(meta.get("name") or ""),
                str(meta.get("resourceVersion") or ""),
            )
            if key not in self._logged:
                if len(self._logged) >= _REMEMBERED:
                    self._logged.clear()
                self._logged.add(key)
                log.exception(
                    "%s skipped %s (resourceVersion %s)",
                    self.controller,
                    "/".join(p for p in key[:2] if p) or "an object",
                    key[2] or "?",
                )
            return 0
