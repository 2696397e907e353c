"""The BerthConfiguration model, shaped like upstream's KubeSchedulerConfiguration.

Field names, defaults and validation messages follow kube-scheduler (apis/config/v1 and
validation) so an existing scheduler config carries over; Berth's own additions are marked.
"""

from __future__ import annotations

from typing import Any, Final, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from berth.config.durations import Duration
from berth.config.errors import several
from berth.config.metrics import MetricSource
from berth.config.webhook import WebhookConfiguration

API_VERSION: Final = "berth.io/v1alpha1"
KIND: Final = "BerthConfiguration"
DEFAULT_SCHEDULER_NAME = "berth"


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True, strict=False)


class PluginRef(Strict):
    name: str = Field(min_length=1)
    weight: int | None = Field(default=None, ge=0)


class PluginSet(Strict):
    enabled: list[PluginRef] = Field(default_factory=list)
    disabled: list[PluginRef] = Field(default_factory=list)


class Plugins(Strict):
    multiPoint: PluginSet = Field(default_factory=PluginSet)
    preEnqueue: PluginSet = Field(default_factory=PluginSet)
    preFilter: PluginSet = Field(default_factory=PluginSet)
    filter: PluginSet = Field(default_factory=PluginSet)
    postFilter: PluginSet = Field(default_factory=PluginSet)
    preScore: PluginSet = Field(default_factory=PluginSet)
    score: PluginSet = Field(default_factory=PluginSet)
    reserve: PluginSet = Field(default_factory=PluginSet)
    permit: PluginSet = Field(default_factory=PluginSet)
    preBind: PluginSet = Field(default_factory=PluginSet)
    bind: PluginSet = Field(default_factory=PluginSet)


class PluginConfig(Strict):
    name: str = Field(min_length=1)
    args: dict[str, Any] = Field(default_factory=dict)


class Profile(Strict):
    schedulerName: str = Field(default=DEFAULT_SCHEDULER_NAME, min_length=1)
    percentageOfNodesToScore: int | None = Field(default=None, ge=0, le=100)
    plugins: Plugins = Field(default_factory=Plugins)
    pluginConfig: list[PluginConfig] = Field(default_factory=list)

    @model_validator(mode="after")
    def _unique_plugin_config(self) -> Profile:
        seen: set[str] = set()
        for pc in self.pluginConfig:
            if pc.name in seen:
                raise ValueError(f"pluginConfig: Duplicate value: {pc.name!r}")
            seen.add(pc.name)
        return self


class LeaderElection(Strict):
    """Upstream's LeaderElectionConfiguration; the lease is named for Berth, not kube-scheduler."""

    leaderElect: bool = True
    leaseDuration: Duration = 15.0
    renewDeadline: Duration = 10.0
    retryPeriod: Duration = 2.0
    resourceLock: Literal["leases"] = "leases"
    resourceName: str = Field(default="berth", min_length=1)
    resourceNamespace: str = Field(default="kube-system", min_length=1)

    @model_validator(mode="after")
    def _durations(self) -> LeaderElection:
        problems: list[str] = []
        if self.leaderElect:
            if self.leaseDuration <= self.renewDeadline:
                problems.append("leaseDuration: must be greater than renewDeadline")
            if self.renewDeadline <= self.retryPeriod:
                problems.append("renewDeadline: must be greater than retryPeriod")
            # The official client's elector (which Berth uses) needs whole seconds here.
            if self.retryPeriod < 1:
                problems.append("retryPeriod: must be at least 1s")
            elif self.renewDeadline <= 1.2 * self.retryPeriod:
                problems.append("renewDeadline: must be greater than 1.2 x retryPeriod")
        error = several(problems)
        if error is not None:
            raise error
        return self


class ClientConnection(Strict):
    kubeconfig: str = ""
    qps: float = Field(default=50.0, gt=0)
    burst: int = Field(default=100, gt=0)
    # Berth: a timeout for every API call, so a hung API server never hangs the scheduler.
    timeout: Duration = 30.0


class BerthConfiguration(Strict):
    apiVersion: Literal["berth.io/v1alpha1"] = API_VERSION
    kind: Literal["BerthConfiguration"] = KIND
    percentageOfNodesToScore: int | None = Field(default=None, ge=0, le=100)
    podInitialBackoffSeconds: int = Field(default=1, gt=0)
    podMaxBackoffSeconds: int = Field(default=10, gt=0)
    leaderElection: LeaderElection = Field(default_factory=LeaderElection)
    clientConnection: ClientConnection = Field(default_factory=ClientConnection)
    profiles: list[Profile] = Field(default_factory=lambda: [Profile()])
    # Berth: where MetricScore's live node metrics come from (berth.metrics, docs/metrics.md).
    metricSources: list[MetricSource] = Field(default_factory=list)
    # Berth: which pods `berth webhook` routes to Berth while it is healthy (docs/running.md).
    webhook: WebhookConfiguration = Field(default_factory=WebhookConfiguration)

    @model_validator(mode="after")
    def _checks(self) -> BerthConfiguration:
        problems: list[str] = []
        if self.podMaxBackoffSeconds < self.podInitialBackoffSeconds:
            problems.append(
                "podMaxBackoffSeconds: must be greater than or equal to PodInitialBackoffSeconds"
            )
        if not self.profiles:
            self.profiles = [Profile()]
        seen: set[str] = set()
        for i, p in enumerate(self.profiles):
            if p.schedulerName in seen:
                problems.append(
                    f"profiles[{i}].schedulerName: Duplicate value: {p.schedulerName!r}"
                )
            seen.add(p.schedulerName)
        if self.webhook.schedulerName is None:
            self.webhook.schedulerName = self.profiles[0].schedulerName
        elif self.webhook.schedulerName not in seen:
            problems.append(
                f"webhook.schedulerName: {self.webhook.schedulerName!r} is not a profile "
                f"(profiles: {', '.join(sorted(seen))})"
            )
        error = several(problems)
        if error is not None:
            raise error
        return self
