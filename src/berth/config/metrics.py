"""The `metricSources[]` entries of a BerthConfiguration, and their cross-checks with MetricScore.

A source says where values come from (Prometheus, Sysdig, metrics.k8s.io, node annotations or
labels), how to reach it (URL, credentials, TLS) and how often to refresh. Credentials are named
(a file or an environment variable), never written inline, so a configuration can be logged and
a model's repr never holds a secret; the secret is read at request time.
"""

from __future__ import annotations

import os
from collections.abc import Collection, Mapping, Sequence
from pathlib import Path
from typing import Any, Final, Literal

from pydantic import (
    AliasChoices,
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    field_validator,
    model_validator,
)

from berth.config.durations import Duration
from berth.config.errors import several

SourceType = Literal["prometheus", "sysdig", "metrics-api", "node-annotation", "node-label"]
HTTP_SOURCES: Final = frozenset({"prometheus", "sysdig"})
NODE_SOURCES: Final = frozenset({"node-annotation", "node-label"})
# Queries a metrics-api source answers: utilisation in percent of allocatable, or raw usage.
METRICS_API_QUERIES: Final = ("cpu", "memory", "cpu-cores", "memory-bytes")
SYSDIG_DEFAULT_URL: Final = "https://app.sysdigcloud.com"
METRIC_SCORE: Final = "MetricScore"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class CredentialError(Exception):
    """A configured credential could not be read; the message names where, never the secret."""


class Credentials(_Strict):
    """A bearer token (or, with `username`, a basic-auth password) read from a file or env var."""

    tokenFile: str | None = None
    tokenEnv: str | None = None
    username: str | None = None

    @model_validator(mode="after")
    def _one(self) -> Credentials:
        if (self.tokenFile is None) == (self.tokenEnv is None):
            raise ValueError("tokenFile: set exactly one of tokenFile or tokenEnv")
        return self

    def secret(self) -> SecretStr:
        """The secret, read now (so a rotated token file is picked up on the next refresh)."""
        if self.tokenFile is not None:
            try:
                text = Path(self.tokenFile).read_text(encoding="utf-8").strip()
            except OSError as exc:
                raise CredentialError(
                    f"cannot read tokenFile {self.tokenFile}: {exc.strerror}"
                ) from None
            if not text:
                raise CredentialError(f"tokenFile {self.tokenFile} is empty")
            return SecretStr(text)
        assert self.tokenEnv is not None
        value = os.environ.get(self.tokenEnv, "").strip()
        if not value:
            raise CredentialError(f"environment variable {self.tokenEnv} is not set or empty")
        return SecretStr(value)


class TLSOptions(_Strict):
    caFile: str | None = None
    insecureSkipVerify: bool = False
    certFile: str | None = None
    keyFile: str | None = None

    @model_validator(mode="after")
    def _pair(self) -> TLSOptions:
        if (self.certFile is None) != (self.keyFile is None):
            raise ValueError("certFile: certFile and keyFile go together")
        return self


class MetricSource(_Strict):
    """One `metricSources[]` entry."""

    name: str = Field(min_length=1, max_length=63, pattern=r"^[A-Za-z0-9]([A-Za-z0-9_.-]*)$")
    type: SourceType
    url: str | None = Field(default=None, validation_alias=AliasChoices("url", "address"))
    credentials: Credentials | None = None
    tls: TLSOptions = Field(default_factory=TLSOptions)
    timeout: Duration = 5.0
    refreshInterval: Duration = 15.0
    # sysdig: the data window (`last`), the segmentation key and data source type of /api/data.
    window: Duration = 60.0
    segmentBy: str = "host.hostName"
    dataSourceType: str = "host"
    filter: str | None = None
    # metrics-api without `url`: the kubeconfig to read (default: in-cluster, then the default
    # loading rules).
    kubeconfig: str | None = None

    # Checks of one field are field validators, so that pydantic reports them all at once.
    @field_validator("timeout", "refreshInterval")
    @classmethod
    def _positive(cls, value: float) -> float:
        if value <= 0:
            raise ValueError("must be greater than zero")
        return value

    @field_validator("window")
    @classmethod
    def _window(cls, value: float) -> float:
        if value < 1:
            raise ValueError("must be at least 1s")
        return value

    @field_validator("url")
    @classmethod
    def _scheme(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        return value

    @model_validator(mode="after")
    def _checks(self) -> MetricSource:
        problems: list[str] = []
        if self.type == "sysdig" and self.url is None:
            self.url = SYSDIG_DEFAULT_URL
        if self.type == "prometheus" and not self.url:
            problems.append("url: Required value for a prometheus source")
        if self.type == "sysdig" and self.credentials is None:
            problems.append("credentials: Required value for a sysdig source (an API token)")
        if self.type in NODE_SOURCES:
            for name in ("url", "credentials", "kubeconfig"):
                if getattr(self, name) is not None:
                    problems.append(f"{name}: not used by a {self.type} source")
        if self.url is not None:
            self.url = self.url.rstrip("/")
        if self.kubeconfig is not None and self.type != "metrics-api":
            problems.append("kubeconfig: only used by a metrics-api source")
        error = several(problems)
        if error is not None:
            raise error
        return self


def check_metric_references(
    *,
    sources: Sequence[MetricSource | None],
    profiles: Sequence[Any],
    resolved_args: Mapping[str, Mapping[str, Any]],
    also_defined: Collection[str] = (),
) -> list[str]:
    """Problems (`field.path: reason`) with source names and MetricScore's use of them.

    `sources` and `profiles` are the configured ones (profiles with `schedulerName` and
    `pluginConfig`; None for one that did not validate); `resolved_args` maps a scheduler name
    to its parsed plugin args; `also_defined` names sources that exist but did not validate."""
    problems: list[str] = []
    by_name: dict[str, MetricSource] = {}
    for i, source in enumerate(sources):
        if source is None:
            continue
        if source.name in by_name:
            problems.append(f"metricSources[{i}].name: Duplicate value: {source.name!r}")
        by_name[source.name] = source
    defined = ", ".join(sorted(by_name)) or "none"
    for i, profile in enumerate(profiles):
        if profile is None:
            continue
        args = resolved_args.get(profile.schedulerName, {}).get(METRIC_SCORE)
        if args is None:
            continue
        index = next(
            (j for j, pc in enumerate(profile.pluginConfig) if pc.name == METRIC_SCORE), -1
        )
        where = f"profiles[{i}].pluginConfig[{index}].args"
        for k, metric in enumerate(getattr(args, "metrics", ())):
            used = by_name.get(metric.source)
            if used is None and metric.source in also_defined:
                continue
            if used is None:
                problems.append(
                    f"{where}.metrics[{k}].source: metric source {metric.source!r} is not "
                    f"defined in metricSources (defined: {defined})"
                )
            elif used.type == "metrics-api" and metric.query not in METRICS_API_QUERIES:
                problems.append(
                    f"{where}.metrics[{k}].query: Unsupported value: {metric.query!r}: a "
                    f"metrics-api source answers {', '.join(METRICS_API_QUERIES)}"
                )
    return problems


__all__ = [
    "HTTP_SOURCES",
    "METRICS_API_QUERIES",
    "NODE_SOURCES",
    "CredentialError",
    "Credentials",
    "MetricSource",
    "TLSOptions",
    "check_metric_references",
]
