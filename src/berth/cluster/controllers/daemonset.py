"""DaemonSets (upstream pkg/controller/daemon): one pod per node that its node selector, node
affinity and taints admit, each pinned to its node by a required node affinity on
`metadata.name` (so the scheduler places it, as upstream since 1.12), with the DaemonSet
tolerations added, removed from nodes that no longer qualify, rolled within maxUnavailable.
"""

from __future__ import annotations

import time
from typing import Any

from berth.cluster.controllers.base import (
    Controller,
    Key,
    is_active,
    is_available,
    is_ready,
    owner_reference,
)
from berth.cluster.controllers.deployment import scaled, template_hash
from berth.cluster.controllers.replicaset import pod_from_template
from berth.cluster.controllers.statefulset import REVISION_LABEL, revision_object
from berth.cluster.errors import ApiError
from berth.cluster.resources import CONTROLLER_REVISIONS, DAEMON_SETS, NODES, PODS
from berth.cluster.store import Change

JSON = dict[str, Any]
GENERATION_LABEL = "pod-template-generation"
# upstream util.AddOrUpdateDaemonPodTolerations
_TOLERATIONS = (
    ("node.kubernetes.io/not-ready", "NoExecute"),
    ("node.kubernetes.io/unreachable", "NoExecute"),
    ("node.kubernetes.io/disk-pressure", "NoSchedule"),
    ("node.kubernetes.io/memory-pressure", "NoSchedule"),
    ("node.kubernetes.io/pid-pressure", "NoSchedule"),
    ("node.kubernetes.io/unschedulable", "NoSchedule"),
)


def _expression_ok(e: JSON, value: str | None) -> bool:
    op, values = e.get("operator"), [str(v) for v in e.get("values") or []]
    if op == "In":
        return value is not None and value in values
    if op == "NotIn":
        return value is None or value not in values
    if op == "Exists":
        return value is not None
    if op == "DoesNotExist":
        return value is None
    if op in ("Gt", "Lt") and value is not None and values:
        try:
            a, b = int(value), int(values[0])
        except ValueError:
            return False
        return a > b if op == "Gt" else a < b
    return False


def node_admits(pod_spec: JSON, node: JSON) -> bool:
    """Whether `node` fits the pod's node selector, required node affinity and its
    NoSchedule/NoExecute taints (upstream NodeShouldRunDaemonPod's predicates)."""
    labels = node["metadata"].get("labels") or {}
    for k, v in (pod_spec.get("nodeSelector") or {}).items():
        if labels.get(k) != v:
            return False
    required = (
        ((pod_spec.get("affinity") or {}).get("nodeAffinity") or {}).get(
            "requiredDuringSchedulingIgnoredDuringExecution"
        )
        or {}
    ).get("nodeSelectorTerms")
    if required:
        fields = {"metadata.name": node["metadata"]["name"]}
        if not any(
            (term.get("matchExpressions") or term.get("matchFields"))
            and all(
                _expression_ok(e, labels.get(e.get("key")))
                for e in term.get("matchExpressions") or []
            )
            and all(
                _expression_ok(e, fields.get(e.get("key"))) for e in term.get("matchFields") or []
            )
            for term in required
            if isinstance(term, dict)
        ):
            return False
    tolerations = [t for t in pod_spec.get("tolerations") or [] if isinstance(t, dict)]
    for taint in (node.get("spec") or {}).get("taints") or []:
        if taint.get("effect") not in ("NoSchedule", "NoExecute"):
            continue
        if not any(_tolerates(t, taint) for t in tolerations):
            return False
    return True


def _tolerates(t: JSON, taint: JSON) -> bool:
    if t.get("effect") and t.get("effect") != taint.get("effect"):
        return False
    if not t.get("key"):
        return t.get("operator") == "Exists"
    if t.get("key") != taint.get("key"):
        return False
    if t.get("operator") == "Exists":
        return True
    return str(t.get("value") or "") == str(taint.get("value") or "")


def daemon_pod_spec(spec: JSON, node_name: str) -> JSON:
    """The template's spec for `node_name`: a required node affinity on metadata.name
    (ReplaceDaemonSetPodNodeNameNodeAffinity) and the DaemonSet tolerations."""
    spec = dict(spec)
    field = {"key": "metadata.name", "operator": "In", "values": [node_name]}
    affinity = dict(spec.get("affinity") or {})
    node_affinity = dict(affinity.get("nodeAffinity") or {})
    required = dict(node_affinity.get("requiredDuringSchedulingIgnoredDuringExecution") or {})
    terms = [t for t in required.get("nodeSelectorTerms") or [] if isinstance(t, dict)]
    if terms:
        terms = [{**t, "matchFields": [field]} for t in terms]
    else:
        terms = [{"matchFields": [field]}]
    required["nodeSelectorTerms"] = terms
    node_affinity["requiredDuringSchedulingIgnoredDuringExecution"] = required
    affinity["nodeAffinity"] = node_affinity
    spec["affinity"] = affinity
    tolerations = [t for t in spec.get("tolerations") or [] if isinstance(t, dict)]
    wanted = list(_TOLERATIONS)
    if spec.get("hostNetwork"):
        wanted.append(("node.kubernetes.io/network-unavailable", "NoSchedule"))
    for key, effect in wanted:
        if not any(t.get("key") == key and t.get("effect") == effect for t in tolerations):
            tolerations.append({"key": key, "operator": "Exists", "effect": effect})
    spec["tolerations"] = tolerations
    return spec


def pod_node(pod: JSON) -> str | None:
    """The node a daemon pod is for: its node, else its metadata.name affinity."""
    spec = pod.get("spec") or {}
    if spec.get("nodeName"):
        return str(spec["nodeName"])
    terms = (
        ((spec.get("affinity") or {}).get("nodeAffinity") or {}).get(
            "requiredDuringSchedulingIgnoredDuringExecution"
        )
        or {}
    ).get("nodeSelectorTerms") or []
    for term in terms:
        for f in term.get("matchFields") or []:
            if f.get("key") == "metadata.name" and f.get("operator") == "In" and f.get("values"):
                return str(f["values"][0])
    return None


class DaemonSetController(Controller):
    name = "daemonset-controller"
    rt = DAEMON_SETS
    watched = (PODS, NODES)

    def keys(self, change: Change) -> list[Key]:
        if change.key == PODS.key:
            return list(self.owner_key(change))
        if change.key == NODES.key:
            old, new = change.old or {}, change.obj
            if change.type == "MODIFIED" and (
                old.get("spec") == new.get("spec")
                and old["metadata"].get("labels") == new["metadata"].get("labels")
            ):
                return []  # a status or lease-like write: nothing a DaemonSet reads
            return [
                (d["metadata"]["namespace"], d["metadata"]["name"])
                for d in self.store.items(DAEMON_SETS)
            ]
        return list(self.own_key(change))

    def sync(self, ds: JSON) -> int:
        meta, spec = ds["metadata"], ds.get("spec") or {}
        if meta.get("deletionTimestamp"):
            return 0
        ns = meta["namespace"]
        template = spec.get("template") or {}
        revision = template_hash(template)
        name = f"{meta['name']}-{revision}"
        if self.store.get(CONTROLLER_REVISIONS, ns, name) is None:
            number = (
                max(
                    (int(r.get("revision") or 0) for r in self.owned(CONTROLLER_REVISIONS, ds)),
                    default=0,
                )
                + 1
            )
            data = {"spec": {"template": {**template, "$patch": "replace"}}}
            self.api.create(
                CONTROLLER_REVISIONS,
                namespace=ns,
                body=revision_object(DAEMON_SETS, ds, name=name, revision=number, data=data),
            )
        tspec = daemon_pod_spec(template.get("spec") or {}, "")
        nodes = {n["metadata"]["name"]: n for n in self.store.items(NODES)}
        eligible = {
            n
            for n, node in nodes.items()
            if node_admits({**tspec, "affinity": template.get("spec", {}).get("affinity")}, node)
        }
        by_node: dict[str, list[JSON]] = {}
        for pod in self.owned(PODS, ds):
            if is_active(pod):
                by_node.setdefault(pod_node(pod) or "", []).append(pod)
        for node_name in sorted(eligible):
            if node_name not in by_node:
                self._create(ds, node_name, revision)
        for node_name, pods in by_node.items():
            doomed = (
                pods
                if node_name not in eligible
                else sorted(pods, key=lambda p: str(p["metadata"].get("creationTimestamp", "")))[1:]
            )
            for pod in doomed:
                self.api.delete(PODS, namespace=ns, name=pod["metadata"]["name"])
        # rolling update: old-revision pods go, maxUnavailable at a time
        strategy = spec.get("updateStrategy") or {}
        pods = [p for p in self.owned(PODS, ds) if is_active(p)]
        if strategy.get("type", "RollingUpdate") == "RollingUpdate":
            limit = max(
                1,
                scaled(
                    (strategy.get("rollingUpdate") or {}).get("maxUnavailable", 1),
                    len(eligible),
                    round_up=False,
                ),
            )
            unavailable = sum(1 for p in pods if not is_ready(p))
            for pod in pods:
                if unavailable >= limit:
                    break
                if (pod["metadata"].get("labels") or {}).get(REVISION_LABEL) != revision:
                    self.api.delete(PODS, namespace=ns, name=pod["metadata"]["name"])
                    unavailable += 1
        pods = [p for p in self.owned(PODS, ds) if is_active(p)]
        scheduled = [p for p in pods if (p.get("spec") or {}).get("nodeName")]
        on_eligible = [p for p in scheduled if p["spec"]["nodeName"] in eligible]
        at = time.time()
        min_ready = int(spec.get("minReadySeconds") or 0)
        ready = [p for p in on_eligible if is_ready(p)]
        available = [p for p in ready if is_available(p, min_ready, at)]
        status: JSON = {
            "currentNumberScheduled": len({p["spec"]["nodeName"] for p in on_eligible}),
            "numberMisscheduled": len(
                [p for p in scheduled if p["spec"]["nodeName"] not in eligible]
            ),
            "desiredNumberScheduled": len(eligible),
            "numberReady": len(ready),
            "observedGeneration": meta.get("generation", 1),
            "updatedNumberScheduled": len(
                [
                    p
                    for p in on_eligible
                    if (p["metadata"].get("labels") or {}).get(REVISION_LABEL) == revision
                ]
            ),
            "numberAvailable": len(available),
            "numberUnavailable": max(0, len(eligible) - len(available)),
        }
        keep = (
            "currentNumberScheduled",
            "numberMisscheduled",
            "desiredNumberScheduled",
            "numberReady",
        )
        status = {k: v for k, v in status.items() if v or k in keep}
        return self.write_status(DAEMON_SETS, ds, status)

    def _create(self, ds: JSON, node_name: str, revision: str) -> None:
        meta, spec = ds["metadata"], ds.get("spec") or {}
        template = spec.get("template") or {}
        body = pod_from_template(
            template,
            owner=owner_reference(DAEMON_SETS, ds),
            namespace=meta["namespace"],
            generate_name=f"{meta['name']}-",
        )
        body["metadata"]["labels"] = {
            **(body["metadata"].get("labels") or {}),
            REVISION_LABEL: revision,
            GENERATION_LABEL: str(meta.get("generation", 1)),
        }
        body["spec"] = daemon_pod_spec(body["spec"] or {}, node_name)
        try:
            created = self.api.create(PODS, namespace=meta["namespace"], body=body).obj
        except ApiError as err:
            self.event(
                ds, reason="FailedCreate", message=f"Error creating: {err.message}", kind="Warning"
            )
            return
        self.event(
            ds, reason="SuccessfulCreate", message=f"Created pod: {created['metadata']['name']}"
        )
