"""The per-node metric table: the only thing a scheduling decision reads about live metrics.

Sources write whole series into it from the background (`update`); the MetricScore plugin reads
them during a decision without ever waiting on the network. Each value keeps its sample time so
the reader can ignore stale ones. The table also records recent placements (`note_placement`,
called by MetricScore's Reserve or by a front) as an append-only event log, so a reader can add
an estimated load for pods placed on a node after its last sample (the herd effect: a burst
must not pile onto the node that looked best a minute ago).
"""

from __future__ import annotations

import itertools
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

DEFAULT_PLACEMENT_RETENTION = 600.0  # seconds a placement stays in the event log


@dataclass(frozen=True, slots=True)
class MetricKey:
    """What a source is asked: its name, the query, and how answers map onto nodes."""

    source: str
    query: str
    node_label: str = "node"
    node_match: str = "auto"


@dataclass(frozen=True, slots=True)
class Series:
    """One refresh of one query: node name -> value and node name -> sample time (unix s)."""

    values: Mapping[str, float]
    times: Mapping[str, float]
    fetched_at: float
    generation: int


@dataclass(slots=True)
class SourceState:
    """What the refresher last learnt about a source (shown in logs and status output)."""

    up: bool | None = None  # None: not tried yet
    last_error: str = ""
    last_success: float = 0.0
    last_attempt: float = 0.0
    errors: int = 0


@dataclass(frozen=True, slots=True)
class PlacementEvent:
    """A pod placed on (`sign` +1) or taken back from (-1) `node`; `at` is the placement time."""

    node: str
    at: float
    sign: int


@dataclass(repr=False, eq=False)
class MetricTable:
    """Series per MetricKey, source states, and the recent-placement event log. Thread-safe."""

    clock: Callable[[], float] = time.time
    placement_retention: float = DEFAULT_PLACEMENT_RETENTION
    _series: dict[MetricKey, Series] = field(default_factory=dict)
    _sources: dict[str, SourceState] = field(default_factory=dict)
    _events: list[PlacementEvent] = field(default_factory=list)
    _first_seq: int = 0  # sequence number of _events[0]
    _offset: int = 0  # _events[:_offset] are trimmed, kept until compaction
    _live: OrderedDict[str, PlacementEvent] = field(default_factory=OrderedDict)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _generations: itertools.count[int] = field(default_factory=lambda: itertools.count(1))
    _anonymous: itertools.count[int] = field(default_factory=itertools.count)

    # ----- series ------------------------------------------------------------------------------
    def update(
        self,
        key: MetricKey,
        values: Mapping[str, float],
        *,
        sample_time: float | None = None,
        times: Mapping[str, float] | None = None,
    ) -> Series:
        """Replace the series of `key`; each value's time is `times[node]` or `sample_time`."""
        now = self.clock()
        default = now if sample_time is None else sample_time
        per_node = {n: (times or {}).get(n, default) for n in values}
        series = Series(
            values=dict(values),
            times=per_node,
            fetched_at=now,
            generation=next(self._generations),
        )
        with self._lock:
            self._series[key] = series
        return series

    def series(self, key: MetricKey) -> Series | None:
        return self._series.get(key)

    def keys(self) -> list[MetricKey]:
        return list(self._series)

    # ----- sources -----------------------------------------------------------------------------
    def source_state(self, name: str) -> SourceState:
        with self._lock:
            return self._sources.setdefault(name, SourceState())

    def sources(self) -> dict[str, SourceState]:
        with self._lock:
            return dict(self._sources)

    # ----- placements --------------------------------------------------------------------------
    def note_placement(
        self, node: str, pod_key: str | None = None, *, at: float | None = None
    ) -> None:
        """Record that a pod went to `node` now (a front may call this for pods it places)."""
        when = self.clock() if at is None else at
        key = pod_key if pod_key is not None else f"\x00anonymous-{next(self._anonymous)}"
        with self._lock:
            old = self._live.pop(key, None)
            if old is not None:
                self._events.append(PlacementEvent(old.node, old.at, -1))
            event = PlacementEvent(node, when, +1)
            self._live[key] = event
            self._events.append(event)
            self._trim(when)

    def forget_placement(self, pod_key: str) -> None:
        """Undo `note_placement` (the pod's reservation or bind failed)."""
        with self._lock:
            old = self._live.pop(pod_key, None)
            if old is not None:
                self._events.append(PlacementEvent(old.node, old.at, -1))

    def events_since(self, seq: int) -> tuple[list[PlacementEvent], int, bool]:
        """Events from sequence number `seq` on, the next sequence number, and whether events
        between `seq` and the first one returned were already trimmed (then replay from 0)."""
        with self._lock:
            end = self._first_seq + len(self._events)
            start = seq - self._first_seq
            trimmed = start < self._offset
            events = self._events[max(start, self._offset) :]
        return events, end, trimmed

    def recent_placements(self) -> dict[str, int]:
        """Node name -> placements still in the log (for status output and tests)."""
        with self._lock:
            out: dict[str, int] = {}
            for event in self._live.values():
                out[event.node] = out.get(event.node, 0) + 1
            return out

    def _trim(self, now: float) -> None:
        horizon = now - self.placement_retention
        events = self._events
        while self._offset < len(events) and events[self._offset].at < horizon:
            self._offset += 1
        if self._offset > 1024 and self._offset * 2 > len(events):
            del events[: self._offset]
            self._first_seq += self._offset
            self._offset = 0
        while self._live:
            key, event = next(iter(self._live.items()))
            if event.at >= horizon:
                break
            del self._live[key]


__all__ = [
    "DEFAULT_PLACEMENT_RETENTION",
    "MetricKey",
    "MetricTable",
    "PlacementEvent",
    "Series",
    "SourceState",
]
