"""The background refresh loop: one asyncio task per source, each query bounded by a timeout.

A refresh writes whole series into the MetricTable; a failure leaves the old values in place
(they age out of scores after the metric's maxAge) and is reported by `berth_metric_source_up`,
`berth_metric_source_errors_total` and one log line per transition (down, recovered). Scheduling
never waits on any of this: decisions only read the table.

The engine builds one from the configuration's metricSources (`Engine.refresher`, whose table is
the engine's metrics port); a live front runs `await refresher.start()` ... `await
refresher.stop()`, an offline one takes a single sample (`Engine.sample_metrics`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any

import aiohttp
from prometheus_client import Counter, Gauge, Histogram

from berth.config.metrics import MetricSource
from berth.metrics.annotations import NodeFieldSource
from berth.metrics.base import FetchResult, NodeDirectory, NodeRecord, Source, SourceError
from berth.metrics.metrics_api import MetricsAPISource
from berth.metrics.prometheus import PrometheusSource
from berth.metrics.sysdig import SysdigSource
from berth.metrics.table import MetricKey, MetricTable

if TYPE_CHECKING:
    from berth.config.loader import Config
    from berth.state.cluster import ClusterState

log = logging.getLogger("berth.metrics")

SOURCE_UP = Gauge(
    "berth_metric_source_up",
    "1 if the metric source answered its last refresh, 0 if it did not.",
    ["source"],
)
SOURCE_ERRORS = Counter(
    "berth_metric_source_errors",
    "Failed metric source queries, by reason (timeout, connection, http, malformed, query, ...).",
    ["source", "reason"],
)
UNMATCHED = Counter(
    "berth_metric_unmatched_series",
    "Answers from a metric source (series, hosts, items) that matched no node.",
    ["source"],
)
REFRESH_SECONDS = Histogram(
    "berth_metric_refresh_duration_seconds",
    "Time to refresh all queries of one metric source.",
    ["source"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
_MAX_REMEMBERED = 1000  # distinct unmatched/query-error messages logged once per source

SOURCE_CLASSES: dict[str, type[Source]] = {
    "prometheus": PrometheusSource,
    "sysdig": SysdigSource,
    "metrics-api": MetricsAPISource,
    "node-annotation": NodeFieldSource,
    "node-label": NodeFieldSource,
}


def build_source(config: MetricSource) -> Source:
    return SOURCE_CLASSES[config.type](config)


def directory_from_state(state: ClusterState) -> NodeDirectory:
    """The nodes of `state` as sources see them (names, addresses, labels, allocatable)."""
    for _ in range(3):
        try:
            infos = [n for n in list(state.nodes) if n is not None]
            break
        except RuntimeError:  # mutated by another thread while copying: try again
            continue
    else:
        infos = []
    return NodeDirectory(
        NodeRecord(
            name=n.name,
            addresses=tuple(a for _, a in n.addresses),
            labels=n.labels,
            annotations=n.annotations,
            allocatable=n.allocatable,
        )
        for n in infos
    )


def keys_from_config(config: Config) -> list[MetricKey]:
    """Every MetricKey the MetricScore plugins of `config`'s profiles read."""
    keys: list[MetricKey] = []
    for profile in config.profiles.values():
        args = profile.args.get("MetricScore")
        for metric in getattr(args, "metrics", ()):
            if metric.key not in keys:
                keys.append(metric.key)
    return keys


class Refresher:
    """Keeps `table` filled from `sources` for the metric `keys`, in the background."""

    def __init__(
        self,
        *,
        sources: Sequence[MetricSource | Source],
        keys: Iterable[MetricKey],
        table: MetricTable | None = None,
        nodes: Callable[[], NodeDirectory],
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.sources: dict[str, Source] = {}
        for s in sources:
            source = s if isinstance(s, Source) else build_source(s)
            self.sources[source.name] = source
        self.keys: dict[str, list[MetricKey]] = {name: [] for name in self.sources}
        for key in keys:
            if key.source not in self.sources:
                raise ValueError(f"metric source {key.source!r} is not configured")
            if key not in self.keys[key.source]:
                self.keys[key.source].append(key)
        self.table = table if table is not None else MetricTable(clock=clock)
        self.nodes = nodes
        self.clock = clock
        self._session: aiohttp.ClientSession | None = None
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._wake: dict[str, asyncio.Event] = {}
        self._logged: dict[str, set[str]] = {name: set() for name in self.sources}

    @classmethod
    def from_config(
        cls,
        config: Config,
        *,
        state: ClusterState,
        table: MetricTable | None = None,
        clock: Callable[[], float] = time.time,
    ) -> Refresher:
        return cls(
            sources=config.model.metricSources,
            keys=keys_from_config(config),
            table=table,
            nodes=lambda: directory_from_state(state),
            clock=clock,
        )

    # ----- lifecycle ---------------------------------------------------------------------------
    async def start(self) -> None:
        """Start one refresh task per source that has queries (the first refresh is immediate)."""
        if self._tasks:
            return
        for name, keys in self.keys.items():
            if not keys:
                continue
            self._wake[name] = asyncio.Event()
            self._tasks[name] = asyncio.create_task(self._run(name), name=f"metrics:{name}")

    async def stop(self) -> None:
        tasks = list(self._tasks.values())
        self._tasks.clear()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def __aenter__(self) -> Refresher:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    def refresh_soon(self, name: str | None = None) -> None:
        """Wake the loop of source `name` (all when None) now instead of at its next interval."""
        for source, event in self._wake.items():
            if name is None or source == name:
                event.set()

    async def _run(self, name: str) -> None:
        interval = self.sources[name].config.refreshInterval
        wake = self._wake[name]
        loop = asyncio.get_running_loop()
        while True:
            started = loop.time()
            wake.clear()
            try:
                await self.refresh_source(name)
            except Exception:  # the loop must outlive any bug in one refresh
                log.exception("metric source %s: refresh failed unexpectedly", name)
            delay = max(0.0, started + interval - loop.time())
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(wake.wait(), timeout=delay)

    # ----- one refresh -------------------------------------------------------------------------
    def _get_session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                cookie_jar=aiohttp.DummyCookieJar(),
                timeout=aiohttp.ClientTimeout(total=None),
            )
        return self._session

    async def refresh_once(self) -> dict[str, bool]:
        """Refresh every source now, concurrently; source name -> up."""
        names = [n for n, keys in self.keys.items() if keys]
        results = await asyncio.gather(*(self.refresh_source(n) for n in names))
        return dict(zip(names, results, strict=True))

    async def refresh_source(self, name: str) -> bool:
        """Run all queries of one source once and record the outcome; True when it is up."""
        source = self.sources[name]
        keys = self.keys[name]
        state = self.table.source_state(name)
        started = time.perf_counter()
        state.last_attempt = self.clock()
        directory = self.nodes()
        session = self._get_session() if source.needs_session() else None
        outcomes = await asyncio.gather(
            *(self._fetch(source, key, directory, session) for key in keys)
        )
        REFRESH_SECONDS.labels(name).observe(time.perf_counter() - started)
        down: SourceError | None = None
        for key, outcome in zip(keys, outcomes, strict=True):
            if isinstance(outcome, SourceError):
                SOURCE_ERRORS.labels(name, outcome.reason).inc()
                state.errors += 1
                if outcome.down:
                    down = down or outcome
                else:
                    self._log_once(name, f"query {key.query!r}: {outcome}", logging.WARNING)
                continue
            self.table.update(
                key, outcome.values, sample_time=outcome.sample_time, times=outcome.times
            )
            if outcome.unmatched:
                UNMATCHED.labels(name).inc(len(outcome.unmatched))
                for item in outcome.unmatched:
                    self._log_once(
                        name,
                        f"{item} in the answer to {key.query!r} matches no node "
                        f"(nodeLabel {key.node_label!r}, match {key.node_match})",
                        logging.WARNING,
                    )
        was_up = state.up
        if down is None:
            state.up = True
            state.last_success = self.clock()
            state.last_error = ""
            SOURCE_UP.labels(name).set(1)
            if was_up is False:
                log.info("metric source %s recovered", name)
            return True
        state.up = False
        state.last_error = str(down)
        SOURCE_UP.labels(name).set(0)
        if was_up is not False:
            log.warning(
                "metric source %s is down: %s; its values drop out of scores once older than "
                "maxAge, scheduling continues with the other plugins",
                name,
                down,
            )
        return False

    async def _fetch(
        self,
        source: Source,
        key: MetricKey,
        directory: NodeDirectory,
        session: aiohttp.ClientSession | None,
    ) -> FetchResult | SourceError:
        timeout = source.config.timeout
        try:
            return await asyncio.wait_for(
                source.fetch(key, nodes=directory, session=session), timeout=timeout
            )
        except TimeoutError:
            return SourceError(f"no answer within {timeout:g}s", reason="timeout")
        except SourceError as exc:
            return exc
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # a bug or an unexpected answer must not kill the loop
            log.exception("metric source %s: unexpected error", source.name)
            return SourceError(f"unexpected error: {type(exc).__name__}", reason="internal")

    def _log_once(self, name: str, message: str, level: int) -> None:
        seen = self._logged[name]
        if message in seen or len(seen) >= _MAX_REMEMBERED:
            return
        seen.add(message)
        log.log(level, "metric source %s: %s", name, message)

    def status(self) -> dict[str, dict[str, Any]]:
        """Per source: up, last error, seconds since the last success (for fronts to show)."""
        now = self.clock()
        out: dict[str, dict[str, Any]] = {}
        for name in self.sources:
            st = self.table.source_state(name)
            out[name] = {
                "up": st.up,
                "lastError": st.last_error,
                "secondsSinceSuccess": round(now - st.last_success, 3) if st.last_success else None,
                "queries": [k.query for k in self.keys[name]],
            }
        return out


__all__ = [
    "REFRESH_SECONDS",
    "SOURCE_ERRORS",
    "SOURCE_UP",
    "UNMATCHED",
    "Refresher",
    "build_source",
    "directory_from_state",
    "keys_from_config",
]
