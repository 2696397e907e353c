"""Fault injection for tests: error rates, latency, dropped watches and forced `410 Gone`.

Rules are matched per request by verb and resource (and subresource); the first matching rule
applies. Set them from Python (`Faults.set_rules`) or, when the admin endpoint is enabled, by
`PUT /berth-admin/faults` with the JSON form of the rules.
"""

from __future__ import annotations

import random
from dataclasses import asdict, dataclass, field
from typing import Any

JSON = dict[str, Any]

_REASONS = {
    400: "BadRequest",
    403: "Forbidden",
    404: "NotFound",
    409: "Conflict",
    410: "Expired",
    429: "TooManyRequests",
    500: "InternalError",
    503: "ServiceUnavailable",
    504: "Timeout",
}


@dataclass(frozen=True)
class FaultRule:
    """Fail `rate` of matching requests with `status`, and delay them by `latency` seconds.

    `verb` is a Kubernetes verb (get, list, watch, create, update, patch, delete, deletecollection)
    and `resource` a plural (`pods`), optionally with a subresource (`pods/binding`); None matches
    any. A rule with rate 0 and some latency only slows requests down.
    """

    verb: str | None = None
    resource: str | None = None
    rate: float = 0.0
    status: int = 500
    latency: float = 0.0

    def matches(self, *, verb: str, resource: str, subresource: str) -> bool:
        if self.verb is not None and self.verb != verb:
            return False
        if self.resource is None:
            return True
        if "/" in self.resource:
            return self.resource == f"{resource}/{subresource}"
        return self.resource == resource and not subresource

    @property
    def reason(self) -> str:
        return _REASONS.get(self.status, "InternalError")


@dataclass
class Faults:
    """The fault configuration of one cluster; safe to change from another thread."""

    rules: tuple[FaultRule, ...] = ()
    expire_next_watches: int = 0
    seed: int | None = None
    _random: random.Random = field(default_factory=random.Random, repr=False)

    def set_rules(self, *rules: FaultRule) -> None:
        self.rules = tuple(rules)

    def clear(self) -> None:
        self.rules = ()
        self.expire_next_watches = 0

    def expire_next_watch(self, count: int = 1) -> None:
        """Answer the next `count` watch requests with `410 Gone` (reason Expired)."""
        self.expire_next_watches += count

    def take_expired_watch(self) -> bool:
        if self.expire_next_watches > 0:
            self.expire_next_watches -= 1
            return True
        return False

    def pick(self, *, verb: str, resource: str, subresource: str) -> tuple[float, FaultRule | None]:
        """(latency to add, rule whose error to return or None) for one request."""
        for rule in self.rules:
            if rule.matches(verb=verb, resource=resource, subresource=subresource):
                failing = rule.rate > 0 and self._random.random() < rule.rate
                return rule.latency, rule if failing else None
        return 0.0, None

    def to_json(self) -> JSON:
        return {
            "rules": [asdict(r) for r in self.rules],
            "expireNextWatches": self.expire_next_watches,
        }

    def update_from_json(self, body: JSON) -> None:
        if "rules" in body:
            self.rules = tuple(
                FaultRule(
                    verb=r.get("verb"),
                    resource=r.get("resource"),
                    rate=float(r.get("rate", 0.0)),
                    status=int(r.get("status", 500)),
                    latency=float(r.get("latency", 0.0)),
                )
                for r in body["rules"]
            )
        if "expireNextWatches" in body:
            self.expire_next_watches = int(body["expireNextWatches"])
