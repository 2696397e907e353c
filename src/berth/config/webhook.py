"""The `webhook` section of BerthConfiguration: which pods `berth webhook` routes to Berth, to
which profile, and when Berth counts as healthy enough to take them (Berth's own addition; kube-
scheduler has no such section).
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from berth.config.durations import parse_duration

DEFAULT_ANNOTATION = "berth.io/scheduler"
DEFAULT_READYZ_URL = "http://{holderIdentity}/readyz"
_OPERATORS = ("In", "NotIn", "Exists", "DoesNotExist")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class LabelSelectorRequirement(_Strict):
    key: str = Field(min_length=1)
    operator: str
    values: list[str] = Field(default_factory=list)

    @field_validator("operator")
    @classmethod
    def _operator(cls, value: str) -> str:
        if value not in _OPERATORS:
            raise ValueError(f"{value!r}: not a valid selector operator ({', '.join(_OPERATORS)})")
        return value


class LabelSelector(_Strict):
    """metav1.LabelSelector."""

    matchLabels: dict[str, str] = Field(default_factory=dict)
    matchExpressions: list[LabelSelectorRequirement] = Field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        return self.model_dump(exclude_defaults=True)


class PodRule(_Strict):
    """A pod matches when it is in one of `namespaces` (any namespace when empty) and its
    labels match `podSelector` (any pod when absent)."""

    namespaces: list[str] = Field(default_factory=list)
    podSelector: LabelSelector | None = None


def _duration(value: Any) -> float:
    return parse_duration(value)


class WebhookConfiguration(_Strict):
    # The profile selected pods are routed to (one of profiles[].schedulerName; default: the
    # first profile).
    schedulerName: str | None = Field(default=None, min_length=1)
    # A pod matching any rule is routed; with no rules only annotated pods are.
    rules: list[PodRule] = Field(default_factory=list)
    # A pod annotated `<annotation>: <profile>` is routed to that profile; `default-scheduler`
    # (or any name that is not a profile) keeps it away from Berth whatever the rules say.
    annotation: str = Field(default=DEFAULT_ANNOTATION, min_length=1)
    # Pods created with spec.schedulerName already naming a Berth profile go to
    # default-scheduler too while Berth is unhealthy (false: they are left to wait for Berth).
    fallbackExplicit: bool = True
    # How long since the leader's last renewal the Lease still counts; default: the Lease's own
    # spec.leaseDurationSeconds (what a standby waits before taking over).
    maxLeaseAge: float | None = None
    # The leader's /readyz: `{holderIdentity}` is replaced by the Lease holder's identity (run
    # Berth with --identity HOST:PORT of its endpoints); "" checks the Lease only.
    readyzURL: str = DEFAULT_READYZ_URL
    readyzTimeout: float = 1.0
    # PEM CA bundle that signed Berth's serving certificate (https readyzURL); default: system's.
    readyzCAFile: str = ""
    # The name Berth's certificate is checked against when it differs from the URL's host (the
    # URL names a pod IP, the certificate the Service), e.g. berth.kube-system.svc.
    readyzServerName: str = ""
    # How often the Lease and /readyz are read.
    checkInterval: float = 1.0

    @field_validator("maxLeaseAge", mode="before")
    @classmethod
    def _lease_age(cls, value: Any) -> float | None:
        if value is None:
            return None
        seconds = _duration(value)
        if seconds <= 0:
            raise ValueError("must be greater than 0")
        return seconds

    @field_validator("readyzTimeout", "checkInterval", mode="before")
    @classmethod
    def _positive(cls, value: Any) -> float:
        seconds = _duration(value)
        if seconds <= 0:
            raise ValueError("must be greater than 0")
        return seconds

    @field_validator("readyzURL")
    @classmethod
    def _url(cls, value: str) -> str:
        if not value:
            return value
        scheme = value.split("://", 1)[0] if "://" in value else ""
        if scheme not in ("http", "https"):
            raise ValueError(f"{value!r}: must start with http:// or https://")
        rest = value.replace("{holderIdentity}", "x")
        if "{" in rest or "}" in rest:
            raise ValueError(f"{value!r}: the only placeholder is {{holderIdentity}}")
        return value
