"""Hypothesis strategies for whole small clusters: nodes, pods already placed, pods to place and
the storage objects their claims need. Small alphabets (three zones, two apps, a few taints and
ports) so that selectors, affinities, spreading, port and volume conflicts actually meet."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from hypothesis import strategies as st

from tests.builders import node, pod
from tests.plugins.volume_builders import pv, pvc, storage_class

JSON = dict[str, Any]
ZONES = ("a", "b", "c")
APPS = ("web", "db")
ZONE = "topology.kubernetes.io/zone"
HOSTNAME = "kubernetes.io/hostname"
LOCAL = "local"  # a WaitForFirstConsumer class of node-pinned volumes
ZONAL = "zonal"  # an Immediate class whose volumes live in one zone


@dataclass
class Cluster:
    nodes: list[JSON]
    placed: list[JSON]  # bound pods
    pending: list[JSON]  # pods to place, in queue order
    storage: list[JSON] = field(default_factory=list)

    def dump(self) -> JSON:
        """The cluster as a `kind: List` dump (`berth simulate`'s input)."""
        return {"kind": "List", "items": [*self.storage, *self.nodes, *self.placed, *self.pending]}


def _selector(draw: st.DrawFn) -> JSON:
    app = draw(st.sampled_from(APPS))
    if draw(st.booleans()):
        return {"matchLabels": {"app": app}}
    return {"matchExpressions": [{"key": "app", "operator": "In", "values": [app]}]}


@st.composite
def nodes(draw: st.DrawFn, *, count: tuple[int, int] = (2, 6), taints: bool = True) -> list[JSON]:
    out = []
    for i in range(draw(st.integers(*count))):
        labels = {ZONE: draw(st.sampled_from(ZONES))}
        if draw(st.booleans()):
            labels["disk"] = draw(st.sampled_from(["ssd", "hdd"]))
        if draw(st.integers(0, 3)) == 0:
            labels["cores"] = str(draw(st.integers(1, 64)))
        node_taints = []
        if taints and draw(st.integers(0, 3)) == 0:
            effect = draw(st.sampled_from(["NoSchedule", "NoExecute", "PreferNoSchedule"]))
            node_taints.append({"key": "dedicated", "value": "gpu", "effect": effect})
        out.append(
            node(
                f"n{i}",
                cpu=draw(st.sampled_from(["1", "2", "4", "8"])),
                memory=draw(st.sampled_from(["2Gi", "4Gi", "8Gi", "16Gi"])),
                pods=draw(st.sampled_from([2, 4, 110])),
                labels=labels,
                taints=node_taints,
                unschedulable=taints and draw(st.integers(0, 7)) == 0,
            )
        )
    return out


@st.composite
def pod_spec(
    draw: st.DrawFn, name: str, node_names: list[str], *, rich: bool = True, placed: str = ""
) -> JSON:
    """A pod with any mix of what the default plugins read; `placed`: bound to that node."""
    raw = pod(
        name,
        cpu=draw(st.sampled_from(["100m", "500m", "1", "2", "3"])),
        memory=draw(st.sampled_from(["128Mi", "1Gi", "3Gi"])),
        labels={"app": draw(st.sampled_from(APPS))},
        node_name=placed,
    )
    spec = raw["spec"]
    if draw(st.integers(0, 2)) == 0:
        port = draw(st.sampled_from([8080, 8081]))
        spec["containers"][0]["ports"] = [{"containerPort": port, "hostPort": port}]
    if not rich:
        return raw
    if draw(st.integers(0, 3)) == 0:
        spec["nodeSelector"] = {"disk": draw(st.sampled_from(["ssd", "hdd"]))}
    if draw(st.integers(0, 3)) == 0:
        op = draw(st.sampled_from(["In", "NotIn", "Exists", "DoesNotExist", "Gt", "Lt"]))
        expr: JSON = {"key": "cores" if op in ("Gt", "Lt") else ZONE, "operator": op}
        if op in ("In", "NotIn"):
            expr["values"] = sorted(draw(st.sets(st.sampled_from(ZONES), min_size=1)))
        elif op in ("Gt", "Lt"):
            expr["values"] = [str(draw(st.integers(0, 64)))]
        terms = [{"matchExpressions": [expr]}]
        if draw(st.integers(0, 4)) == 0 and node_names:
            terms.append(
                {
                    "matchFields": [
                        {
                            "key": "metadata.name",
                            "operator": "In",
                            "values": [draw(st.sampled_from(node_names))],
                        }
                    ]
                }
            )
        spec.setdefault("affinity", {})["nodeAffinity"] = {
            "requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": terms}
        }
    if draw(st.integers(0, 2)) == 0:
        toleration = {
            "key": "dedicated",
            "operator": "Equal",
            "value": "gpu",
            "effect": draw(st.sampled_from(["", "NoSchedule", "NoExecute"])),
        }
        if draw(st.booleans()):
            toleration = {**toleration, "operator": "Exists", "value": ""}
        spec["tolerations"] = [toleration]
    for kind in ("podAffinity", "podAntiAffinity"):
        if draw(st.integers(0, 3)) == 0:
            term = {
                "labelSelector": _selector(draw),
                "topologyKey": draw(st.sampled_from([ZONE, HOSTNAME])),
            }
            spec.setdefault("affinity", {})[kind] = {
                "requiredDuringSchedulingIgnoredDuringExecution": [term]
            }
    if draw(st.integers(0, 2)) == 0:
        spec["topologySpreadConstraints"] = [
            {
                "maxSkew": draw(st.integers(1, 2)),
                "topologyKey": draw(st.sampled_from([ZONE, HOSTNAME])),
                "whenUnsatisfiable": "DoNotSchedule",
                "labelSelector": _selector(draw),
                "nodeTaintsPolicy": draw(st.sampled_from(["Honor", "Ignore"])),
            }
        ]
    return raw


CSI_DRIVER = "ebs.csi.aws.com"


def _claim_volume(claim: str) -> JSON:
    return {"name": claim, "persistentVolumeClaim": {"claimName": claim}}


def _csi_claim(name: str) -> list[JSON]:
    """A claim bound to a CSI volume (counted against the node's attach limit)."""
    volume = pv(
        f"pv-{name}",
        cls="",
        claim=("default", name, f"uid-{name}"),
        phase="Bound",
        csi={"driver": CSI_DRIVER, "volumeHandle": f"vol-{name}"},
    )
    return [volume, pvc(name, cls="", volume=f"pv-{name}", bound=True)]


@st.composite
def clusters(
    draw: st.DrawFn,
    *,
    pending: tuple[int, int] = (1, 4),
    rich: bool = True,
    volumes: bool = False,
    node_name: bool = False,
) -> Cluster:
    """A cluster: nodes, 0..8 pods on them, `pending` pods to place (named in queue order).
    `volumes`: claims and inline disks, with the classes, PVs and CSINodes they need;
    `node_name`: the pods to place may name their node (NodeName's filter)."""
    node_list = draw(nodes(taints=rich))
    names = [n["metadata"]["name"] for n in node_list]
    placed = [
        draw(pod_spec(f"run{k}", names, rich=False, placed=draw(st.sampled_from(names))))
        for k in range(draw(st.integers(0, 8)))
    ]
    todo = [draw(pod_spec(f"p{k}", names, rich=rich)) for k in range(draw(st.integers(*pending)))]
    if node_name:
        for p in todo:
            if draw(st.integers(0, 3)) == 0:
                p["spec"]["nodeName"] = draw(st.sampled_from([*names, "elsewhere"]))
    storage: list[JSON] = []
    if volumes:
        storage = _storage(draw, names, placed, todo)
    return Cluster(nodes=node_list, placed=placed, pending=todo, storage=storage)


def _storage(draw: st.DrawFn, names: list[str], placed: list[JSON], todo: list[JSON]) -> list[JSON]:
    out = [
        storage_class(LOCAL, provisioner="kubernetes.io/no-provisioner"),
        storage_class(ZONAL, mode="Immediate"),
    ]
    for n in names:
        if draw(st.booleans()):
            driver = {"name": CSI_DRIVER, "nodeID": n, "allocatable": {"count": 1}}
            out.append(
                {
                    "apiVersion": "storage.k8s.io/v1",
                    "kind": "CSINode",
                    "metadata": {"name": n},
                    "spec": {"drivers": [driver]},
                }
            )
    for k in range(draw(st.integers(0, 4))):
        host = draw(st.sampled_from(names))
        affinity = [{"matchExpressions": [{"key": HOSTNAME, "operator": "In", "values": [host]}]}]
        out.append(pv(f"local-{k}", cls=LOCAL, size="10Gi", affinity=affinity))
    disk = {"name": "pd", "gcePersistentDisk": {"pdName": "disk-1"}}
    for k, p in enumerate(placed):
        choice = draw(st.integers(0, 3))
        if choice == 0:
            out += _csi_claim(f"used-{k}")
            p["spec"]["volumes"] = [_claim_volume(f"used-{k}")]
        elif choice == 1:
            p["spec"]["volumes"] = [disk]
    for k, p in enumerate(todo):
        claim = f"data-{k}"
        choice = draw(st.integers(0, 4))
        if choice == 0:
            out.append(pvc(claim, cls=LOCAL, size="5Gi"))
        elif choice == 1:
            zone = draw(st.sampled_from(ZONES))
            affinity = [{"matchExpressions": [{"key": ZONE, "operator": "In", "values": [zone]}]}]
            out.append(
                pv(
                    f"zonal-{k}",
                    cls=ZONAL,
                    labels={ZONE: zone},
                    claim=("default", claim, f"uid-{claim}"),
                    affinity=affinity,
                    phase="Bound",
                )
            )
            out.append(pvc(claim, cls=ZONAL, volume=f"zonal-{k}", bound=True))
        elif choice == 2:
            out += _csi_claim(claim)
        elif choice == 3:
            p["spec"]["volumes"] = [disk]
            continue
        else:
            continue
        p["spec"]["volumes"] = [_claim_volume(claim)]
    return out
