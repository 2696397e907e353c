"""Whether a Berth leader is healthy enough to be given new pods: its Lease renewed within the
lease duration and its /readyz answering, read in the background so admission never waits.

The Lease is read as the official client's LeaseLock reads it (`berth.kube.leader.read_lease`).
Its age is judged twice, so that neither a skewed clock nor a webhook that has just started
misjudges it: by the wall clock (now minus `renewTime`, written by the leader's clock) and by
this process's monotonic clock since the record was last seen to change (client-go's
`observedTime`). The verdict is recomputed at every admission from what was last read, so a
Lease ages even if the checker itself stalls, and a stalled checker is a verdict of its own.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import ssl
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import aiohttp

from berth.config.webhook import WebhookConfiguration
from berth.kube.client import Connection
from berth.kube.leader import read_lease

log = logging.getLogger("berth.webhook")

# Reasons, the `reason` label of berth_webhook_routed_total.
HEALTHY = "healthy"
NOT_CHECKED = "not-checked"
CHECK_STALLED = "check-stalled"
LEASE_MISSING = "lease-missing"
LEASE_UNREADABLE = "lease-unreadable"
LEASE_RELEASED = "lease-released"
LEASE_EXPIRED = "lease-expired"
READYZ_FAILED = "readyz-failed"
REASONS = (
    HEALTHY,
    NOT_CHECKED,
    CHECK_STALLED,
    LEASE_MISSING,
    LEASE_UNREADABLE,
    LEASE_RELEASED,
    LEASE_EXPIRED,
    READYZ_FAILED,
)
DEFAULT_LEASE_SECONDS = 15.0
# An identity that can stand for the host of a URL: a name or IPv4 address, or [IPv6], and a port.
_HOSTPORT = re.compile(
    r"^(?:[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?|\[[0-9A-Fa-f:.]+\])(?::\d+)?$"
)

Probe = Callable[[str], Awaitable[tuple[bool, str]]]


@dataclass(frozen=True)
class Verdict:
    healthy: bool
    reason: str  # one of REASONS
    detail: str  # one line for the pod's annotation and the log
    holder: str | None = None
    lease_age: float | None = None


@dataclass
class _Observation:
    """What the last check read."""

    checked_at: float  # monotonic
    error: str | None = None  # the Lease could not be read
    missing: bool = False
    holder: str | None = None
    renewed_at: float | None = None  # wall clock (epoch seconds) of renewTime
    duration: float | None = None  # the Lease's leaseDurationSeconds
    readyz_ok: bool | None = None  # None: not probed
    readyz_detail: str = ""


def _epoch(text: str | None) -> float | None:
    """The election record's time string (UTC, written without a zone by the client)."""
    if not text:
        return None
    try:
        stamp = datetime.fromisoformat(text)
    except ValueError:
        return None
    if stamp.tzinfo is None:
        stamp = stamp.replace(tzinfo=UTC)
    return stamp.timestamp()


def readyz_url(template: str, holder: str) -> str | None:
    """The leader's /readyz URL, or None when the holder's identity cannot stand for a host."""
    if "{holderIdentity}" not in template:
        return template
    if not _HOSTPORT.match(holder):
        return None
    return template.replace("{holderIdentity}", holder)


class LeaderHealth:
    """Reads the Lease and probes the leader every `checkInterval`; `verdict()` answers at once."""

    def __init__(
        self,
        *,
        connection: Connection | None,
        namespace: str,
        name: str,
        settings: WebhookConfiguration,
        probe: Probe | None = None,
        wall: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.connection = connection
        self.namespace = namespace
        self.name = name
        self.settings = settings
        self._probe = probe
        self._wall = wall
        self._mono = monotonic
        self._seen: _Observation | None = None
        self._record: tuple[str | None, float | None] | None = None
        self._changed_at = 0.0
        self._session: aiohttp.ClientSession | None = None
        self.checks = 0

    @property
    def lease(self) -> str:
        return f"{self.namespace}/{self.name}"

    # -- reading -----------------------------------------------------------------------------

    async def check_once(self) -> None:
        assert self.connection is not None
        ok, record = await read_lease(
            connection=self.connection,
            namespace=self.namespace,
            name=self.name,
            timeout=max(1.0, self.settings.checkInterval * 2),
        )
        now = self._mono()
        if not ok:
            status = getattr(record, "status", 0)
            reason = getattr(record, "reason", "") or type(record).__name__
            self.observe(
                _Observation(
                    checked_at=now,
                    missing=status == 404,
                    error=f"{status} {reason}".strip() if status else str(reason),
                )
            )
            return
        seen = _Observation(
            checked_at=now,
            holder=record.holder_identity or None,
            renewed_at=_epoch(record.renew_time),
            duration=float(record.lease_duration) if record.lease_duration else None,
        )
        if self.settings.readyzURL and seen.holder and self._fresh(seen, now):
            url = readyz_url(self.settings.readyzURL, seen.holder)
            if url is None:
                seen.readyz_ok = False
                seen.readyz_detail = (
                    f"its identity {seen.holder!r} is not HOST:PORT, so its /readyz cannot be "
                    "reached (run berth with --identity HOST:PORT of its endpoints, or set "
                    "webhook.readyzURL to a fixed URL)"
                )
            else:
                seen.readyz_ok, seen.readyz_detail = await (self._probe or self._get)(url)
        self.observe(seen)

    def observe(self, seen: _Observation) -> None:
        """Record one check's reading (the monotonic age restarts when the record changed)."""
        record = (seen.holder, seen.renewed_at)
        if record != self._record:
            self._record = record
            self._changed_at = seen.checked_at
        self._seen = seen
        self.checks += 1

    async def _get(self, url: str) -> tuple[bool, str]:
        if self._session is None:
            self._session = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=self.settings.readyzTimeout),
                trust_env=False,
            )
        kwargs: dict[str, Any] = {}
        if url.startswith("https://"):
            kwargs["ssl"] = _client_context(self.settings.readyzCAFile or None)
            if self.settings.readyzServerName:
                kwargs["server_hostname"] = self.settings.readyzServerName
        try:
            async with self._session.get(url, allow_redirects=False, **kwargs) as response:
                if response.status == 200:
                    return True, "ok"
                text = (await response.content.read(200)).decode("utf-8", "replace").strip()
                return False, f"GET {url}: {response.status} {text}".rstrip()
        except TimeoutError:
            return False, f"GET {url}: no answer within {self.settings.readyzTimeout:g}s"
        except aiohttp.ClientConnectorError as exc:
            return False, f"GET {url}: cannot connect: {exc.os_error.strerror or exc.os_error}"
        except (aiohttp.ClientError, OSError, ssl.SSLError) as exc:
            return False, f"GET {url}: {exc or type(exc).__name__}"

    async def run(self) -> None:
        """Check every checkInterval until cancelled; a failed check is a verdict, never a
        stop."""
        while True:
            started = self._mono()
            try:
                await self.check_once()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # one bad reading never ends the loop
                log.warning("health check failed", extra={"error": repr(exc)})
                self.observe(_Observation(checked_at=self._mono(), error=repr(exc)))
            elapsed = self._mono() - started
            await asyncio.sleep(max(0.0, self.settings.checkInterval - elapsed))

    async def close(self) -> None:
        if self._session is not None:
            with contextlib.suppress(Exception):
                await self._session.close()
            self._session = None

    # -- judging -----------------------------------------------------------------------------

    def _limit(self, seen: _Observation) -> float:
        return self.settings.maxLeaseAge or seen.duration or DEFAULT_LEASE_SECONDS

    def _age(self, seen: _Observation, now: float) -> float:
        wall = 0.0
        if seen.renewed_at is not None:
            wall = max(0.0, self._wall() - seen.renewed_at)
        else:
            wall = float("inf")
        changed = self._changed_at if self._record == (seen.holder, seen.renewed_at) else now
        return max(wall, now - changed)

    def _fresh(self, seen: _Observation, now: float) -> bool:
        return self._age(seen, now) <= self._limit(seen)

    def verdict(self) -> Verdict:
        seen = self._seen
        lease = self.lease
        if seen is None:
            return Verdict(False, NOT_CHECKED, "no health check of Berth has completed yet")
        now = self._mono()
        stall = 3 * self.settings.checkInterval + self.settings.readyzTimeout + 2.0
        if now - seen.checked_at > stall:
            return Verdict(
                False,
                CHECK_STALLED,
                f"the last health check of Berth was {now - seen.checked_at:.1f}s ago",
            )
        if seen.missing:
            return Verdict(False, LEASE_MISSING, f"no Lease {lease}: no Berth leader has run")
        if seen.error is not None:
            return Verdict(False, LEASE_UNREADABLE, f"cannot read Lease {lease}: {seen.error}")
        if not seen.holder:
            return Verdict(False, LEASE_RELEASED, f"Lease {lease} has no holder (released)")
        age, limit = self._age(seen, now), self._limit(seen)
        if age > limit:
            shown = "never" if age == float("inf") else f"{age:.1f}s ago"
            return Verdict(
                False,
                LEASE_EXPIRED,
                f"Lease {lease} of {seen.holder} last renewed {shown}, more than {limit:g}s",
                seen.holder,
                age,
            )
        if seen.readyz_ok is False:
            return Verdict(
                False,
                READYZ_FAILED,
                f"leader {seen.holder} is not ready: {seen.readyz_detail}",
                seen.holder,
                age,
            )
        checked = ", /readyz ok" if seen.readyz_ok else ""
        return Verdict(
            True,
            HEALTHY,
            f"leader {seen.holder} healthy: Lease renewed {age:.1f}s ago (limit {limit:g}s)"
            f"{checked}",
            seen.holder,
            age,
        )


_CONTEXTS: dict[str | None, ssl.SSLContext] = {}


def _client_context(cafile: str | None) -> ssl.SSLContext:
    context = _CONTEXTS.get(cafile)
    if context is None:
        context = ssl.create_default_context(cafile=cafile)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        _CONTEXTS[cafile] = context
    return context
