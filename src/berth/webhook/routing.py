"""Which scheduler a new pod gets: the pods the configuration selects go to a Berth profile while
Berth is healthy and to default-scheduler otherwise; every other pod is left as it came.

Only new pods are routed: `spec.schedulerName` cannot change once a pod exists. The pod seen at
admission is already defaulted, so a pod that named no scheduler shows `default-scheduler`.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from typing import Any

from berth.config.webhook import LabelSelector, PodRule, WebhookConfiguration
from berth.webhook.health import Verdict

JSON = dict[str, Any]
DEFAULT_SCHEDULER = "default-scheduler"
ROUTED_TO = "berth.io/routed-to"
ROUTE_REASON = "berth.io/routing-reason"
# Annotation values are bounded by the object's size only; a reason stays one readable line.
_MAX_REASON = 512


@dataclass(frozen=True)
class Route:
    to: str  # the schedulerName the pod leaves admission with
    reason: str  # the health verdict's reason (berth_webhook_routed_total's label)
    detail: str
    patch: list[JSON] = field(default_factory=list)


def _selector_matches(selector: LabelSelector, labels: Mapping[str, str]) -> bool:
    for key, value in selector.matchLabels.items():
        if labels.get(key) != value:
            return False
    for e in selector.matchExpressions:
        present = e.key in labels
        if e.operator == "In" and labels.get(e.key) not in e.values:
            return False
        if e.operator == "NotIn" and present and labels[e.key] in e.values:
            return False
        if e.operator == "Exists" and not present:
            return False
        if e.operator == "DoesNotExist" and present:
            return False
    return True


def _rule_matches(rule: PodRule, namespace: str, labels: Mapping[str, str]) -> bool:
    if rule.namespaces and namespace not in rule.namespaces:
        return False
    return rule.podSelector is None or _selector_matches(rule.podSelector, labels)


def _str_map(value: Any) -> dict[str, str]:
    if not isinstance(value, dict):
        return {}
    return {str(k): v for k, v in value.items() if isinstance(v, str)}


def wanted_profile(
    pod: JSON, *, namespace: str, settings: WebhookConfiguration, profiles: Collection[str]
) -> str | None:
    """The Berth profile the pod is meant for, or None when it is not Berth's business."""
    spec = pod.get("spec")
    meta = pod.get("metadata")
    if not isinstance(spec, dict) or not isinstance(meta, dict):
        return None
    if spec.get("nodeName"):
        return None  # bound at creation: no scheduler is involved
    current = spec.get("schedulerName") or DEFAULT_SCHEDULER
    if current != DEFAULT_SCHEDULER and current not in profiles:
        return None  # a third scheduler, chosen explicitly
    asked = _str_map(meta.get("annotations")).get(settings.annotation)
    if asked is not None:
        return asked if asked in profiles else None
    if current in profiles:
        return current if settings.fallbackExplicit else None
    labels = _str_map(meta.get("labels"))
    if any(_rule_matches(r, namespace, labels) for r in settings.rules):
        return settings.schedulerName
    return None


def _pointer(key: str) -> str:
    return key.replace("~", "~0").replace("/", "~1")


def route(
    pod: JSON,
    *,
    namespace: str,
    settings: WebhookConfiguration,
    profiles: Collection[str],
    verdict: Verdict,
) -> Route | None:
    """The route of a new pod and the JSONPatch that applies it, or None: leave the pod alone."""
    wanted = wanted_profile(pod, namespace=namespace, settings=settings, profiles=profiles)
    if wanted is None:
        return None
    to = wanted if verdict.healthy else DEFAULT_SCHEDULER
    detail = verdict.detail if verdict.healthy else f"Berth unavailable: {verdict.detail}"
    detail = detail[:_MAX_REASON]
    patch: list[JSON] = []
    if (pod["spec"].get("schedulerName") or DEFAULT_SCHEDULER) != to:
        # "add" replaces an existing member (RFC 6902 4.1): right whether or not it is set.
        patch.append({"op": "add", "path": "/spec/schedulerName", "value": to})
    notes = {ROUTED_TO: to, ROUTE_REASON: detail}
    annotations = pod["metadata"].get("annotations")
    if isinstance(annotations, dict):
        patch += [
            {"op": "add", "path": f"/metadata/annotations/{_pointer(k)}", "value": v}
            for k, v in notes.items()
        ]
    else:
        patch.append({"op": "add", "path": "/metadata/annotations", "value": notes})
    return Route(to=to, reason=verdict.reason, detail=detail, patch=patch)
