"""`berth capacity`: how many more copies of a pod fit, where they go, and what stops the next.

cluster-capacity's question, answered by the engine's own cycle with every plugin of the
profile (spreading, affinity, volumes, DRA): copy after copy goes through the scheduling cycle
and is assumed on its node, as the live scheduler assumes a pod before binding it, so the next
copy sees the earlier ones without the state being rebuilt. It stops at the first copy that fits
nowhere (or at `replicas_max`); that copy's diagnosis says, per node, what stands in the way.
Copies never preempt (PostFilter is off here): capacity counts free room, not room that evicting
others would make. A copy whose claims come from ResourceClaimTemplates gets its own claims, as
the resourceclaim controller would create them.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass, field
from typing import Any

from berth.engine import Engine
from berth.feed import Feed
from berth.framework.cycle import Error, Reserved, Unschedulable
from berth.objects import ObjectError, parse_pod
from berth.objects.pod import PodInfo

WORKLOAD_KINDS = ("Deployment", "ReplicaSet", "StatefulSet", "Job", "ReplicationController")


class CapacityError(Exception):
    """The pod file cannot be used (one line for users)."""


@dataclass
class CapacityResult:
    pod: str  # namespace/name of the template
    profile: str
    count: int
    per_node: dict[str, int]
    stopped: str  # why the next copy is not counted
    reasons: dict[str, list[str]] = field(default_factory=dict)  # node -> what stops it
    seconds: float = 0.0
    nodes: int = 0

    def to_json(self) -> dict[str, Any]:
        return {
            "pod": self.pod,
            "profile": self.profile,
            "count": self.count,
            "perNode": self.per_node,
            "stopped": self.stopped,
            "reasons": self.reasons,
            "seconds": round(self.seconds, 3),
            "nodes": self.nodes,
        }


def pod_template(doc: Any, *, source: str) -> dict[str, Any]:
    """The Pod of a manifest: a Pod, or the pod template of a Deployment, ReplicaSet,
    StatefulSet, Job or ReplicationController (in the workload's namespace)."""
    if not isinstance(doc, dict) or not isinstance(doc.get("kind"), str):
        raise CapacityError(f"{source}: not a Kubernetes object (no kind)")
    kind = doc["kind"]
    meta = doc.get("metadata") if isinstance(doc.get("metadata"), dict) else {}
    assert isinstance(meta, dict)
    if kind == "Pod":
        raw = dict(doc)
    elif kind in WORKLOAD_KINDS:
        spec = doc.get("spec") if isinstance(doc.get("spec"), dict) else {}
        assert isinstance(spec, dict)
        template = spec.get("template")
        if not isinstance(template, dict):
            raise CapacityError(f"{source}: {kind} has no spec.template")
        tmeta = dict(template.get("metadata") or {})
        tmeta.setdefault("name", meta.get("name") or "capacity")
        tmeta.setdefault("namespace", meta.get("namespace"))
        raw = {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": tmeta,
            **{"spec": template.get("spec")},
        }
    else:
        raise CapacityError(
            f"{source}: a Pod (or a {', '.join(WORKLOAD_KINDS)}) is expected, not {kind}"
        )
    raw_meta = dict(raw.get("metadata") or {})
    raw_meta.setdefault("name", raw_meta.get("generateName") or "capacity")
    raw_meta["namespace"] = raw_meta.get("namespace") or "default"
    raw["metadata"] = raw_meta
    spec = dict(raw.get("spec") or {})
    spec.pop("nodeName", None)  # a copy is placed by the scheduler
    raw["spec"] = spec
    raw.pop("status", None)
    return raw


class Copies:
    """Copies of one template pod: parsed once, each with its own name, uid and claims."""

    def __init__(self, engine: Engine, raw: dict[str, Any], *, profile: str) -> None:
        self.engine = engine
        self.raw = raw
        try:
            self.base = parse_pod(raw)
        except ObjectError as exc:
            raise CapacityError(str(exc)) from None
        self.profile = profile
        self.templates = [pc for pc in self.base.resource_claims if pc.template_name is not None]
        self._feed = Feed(state=engine.state, ports=engine.ports, responsible=lambda _: False)

    def make(self, i: int) -> PodInfo:
        name = f"{self.base.name}-{i:05d}"
        uid = f"capacity-{i:05d}-{self.base.uid or 'pod'}"
        statuses = list(self.base.resource_claim_statuses)
        for pc in self.templates:
            claim = generated_claim(
                self.engine, self.base, pc.name, pc.template_name or "", name, uid
            )
            if claim is None:
                continue  # template missing: DynamicResources says so, as it would live
            self._feed.add(claim)
            statuses = [s for s in statuses if s[0] != pc.name] + [
                (pc.name, claim["metadata"]["name"])
            ]
        return dataclasses.replace(
            self.base,
            name=name,
            uid=uid,
            scheduler_name=self.profile,
            resource_claim_statuses=tuple(statuses),
        )


def generated_claim(
    engine: Engine, pod: PodInfo, claim: str, template: str, name: str, uid: str
) -> dict[str, Any] | None:
    """The ResourceClaim the resourceclaim controller would create for copy `name` from
    `template` (owned by the copy, named as the controller names them)."""
    info = engine.ports.dra.templates.get(f"{pod.namespace}/{template}")
    if info is None:
        return None
    return {
        "apiVersion": "resource.k8s.io/v1",
        "kind": "ResourceClaim",
        "metadata": {
            "name": f"{name}-{claim}",
            "namespace": pod.namespace,
            "uid": f"{uid}-{claim}",
            "labels": dict(info.labels),
            "annotations": {
                **info.annotations,
                "resource.kubernetes.io/pod-claim-name": claim,
            },
            "ownerReferences": [
                {
                    "apiVersion": "v1",
                    "kind": "Pod",
                    "name": name,
                    "uid": uid,
                    "controller": True,
                    "blockOwnerDeletion": True,
                }
            ],
        },
        "spec": info.spec,
    }


def estimate(
    engine: Engine,
    raw: dict[str, Any],
    *,
    replicas_max: int | None = None,
    profile: str | None = None,
) -> CapacityResult:
    """Place copies of `raw` one by one on `engine`'s state (changing it) until one fits
    nowhere or `replicas_max` are placed."""
    from berth.explain import ExplainError, profile_for

    try:
        scheduler = profile_for(engine, parse_pod(raw), profile)
    except (ObjectError, ExplainError) as exc:
        raise CapacityError(str(exc)) from None
    for s in engine.schedulers.values():
        s.framework.post_filter = []  # copies never preempt
    copies = Copies(engine, raw, profile=scheduler.framework.scheduler_name)
    per_node: dict[str, int] = {}
    start = time.perf_counter()
    count = 0
    stopped = ""
    next_pod: PodInfo | None = None
    while replicas_max is None or count < replicas_max:
        pod = copies.make(count)
        outcome = engine.schedule(pod)
        if isinstance(outcome, Reserved):
            per_node[outcome.node] = per_node.get(outcome.node, 0) + 1
            count += 1
            continue
        if isinstance(outcome, Unschedulable):
            stopped = outcome.fit.message
        elif isinstance(outcome, Error):
            stopped = f"{outcome.status.plugin or 'error'}: {outcome.status.message}"
        next_pod = pod
        break
    else:
        stopped = f"--replicas-max {replicas_max} reached"
    seconds = time.perf_counter() - start
    if next_pod is None:
        next_pod = copies.make(count)
    _, diagnosis = scheduler.find_feasible(next_pod, engine.state.node_indices())
    reasons = {n: list(s.reasons) for n, s in diagnosis.node_statuses().items()}
    return CapacityResult(
        pod=copies.base.key,
        profile=copies.profile,
        count=count,
        per_node=dict(sorted(per_node.items(), key=lambda kv: (-kv[1], kv[0]))),
        stopped=stopped,
        reasons=reasons,
        seconds=seconds,
        nodes=engine.state.num_nodes,
    )


def format_report(result: CapacityResult) -> str:
    """cluster-capacity's report: the count, the termination reason, the copies per node and
    what stops one more on each node."""
    lines = [
        f"The cluster can schedule {result.count} more instance(s) of the pod {result.pod} "
        f"(profile {result.profile}).",
        f"Termination reason: {result.stopped}",
        "",
    ]
    names = sorted(set(result.per_node) | set(result.reasons))
    names.sort(key=lambda n: (-result.per_node.get(n, 0), n))
    rows = [("NODE", "COPIES", "NEXT COPY")]
    for n in names:
        why = ", ".join(result.reasons.get(n, [])) or "fits"
        rows.append((n, str(result.per_node.get(n, 0)), why))
    width = [max(len(r[i]) for r in rows) for i in range(2)]
    for r in rows:
        lines.append(f"{r[0].ljust(width[0])}  {r[1].rjust(width[1])}  {r[2]}".rstrip())
    rest = result.nodes - len(names)
    if rest > 0:  # stopped by --replicas-max before these were asked
        lines.append(f"and {rest} more node(s) with no copy where the next copy fits")
    return "\n".join(lines)


__all__ = [
    "CapacityError",
    "CapacityResult",
    "Copies",
    "estimate",
    "format_report",
    "generated_claim",
    "pod_template",
]
