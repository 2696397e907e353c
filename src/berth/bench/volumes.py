"""The storage side of a benchmark workload: WaitForFirstConsumer claims over local volumes.

One StorageClass `local-storage` (`kubernetes.io/no-provisioner`, WaitForFirstConsumer) and
`pvsPerNode` local PersistentVolumes pinned to each node by a required hostname affinity, sizes
10, 20 or 50Gi; each pod to schedule gets its own unbound claim of that class (what a StatefulSet's
volumeClaimTemplates would make). Each decision runs VolumeBinding's Filter over every node and
its Reserve takes the chosen volume, so the pool shrinks as the run goes. `verify_volumes` checks
the outcome: no volume taken twice, every pod's volume on the pod's node.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from berth.engine import Engine

JSON = dict[str, Any]
CLASS = "local-storage"
HOSTNAME = "kubernetes.io/hostname"


@dataclass(frozen=True)
class VolumeSpec:
    pvs_per_node: int = 1
    claim_share: float = 1.0  # of the pods to schedule, those with a claim (evenly spread)


def parse_volumes(raw: Any) -> VolumeSpec | None:
    if raw is None:
        return None
    if not isinstance(raw, dict):
        raise ValueError("volumes: must be a mapping")
    spec = VolumeSpec(
        pvs_per_node=int(raw.get("pvsPerNode", 1)), claim_share=float(raw.get("claimShare", 1))
    )
    if spec.pvs_per_node < 1:
        raise ValueError("volumes: pvsPerNode must be >= 1")
    if not 0 < spec.claim_share <= 1:
        raise ValueError("volumes: claimShare must be in (0, 1]")
    return spec


def cluster_objects(spec: VolumeSpec, nodes: list[JSON]) -> list[JSON]:
    """The StorageClass and the local volumes, round robin over the nodes."""
    out: list[JSON] = [
        {
            "apiVersion": "storage.k8s.io/v1",
            "kind": "StorageClass",
            "metadata": {"name": CLASS},
            "provisioner": "kubernetes.io/no-provisioner",
            "volumeBindingMode": "WaitForFirstConsumer",
        }
    ]
    names = [n["metadata"]["name"] for n in nodes]
    for k in range(len(names) * spec.pvs_per_node):
        host = names[k % len(names)]
        term = {"matchExpressions": [{"key": HOSTNAME, "operator": "In", "values": [host]}]}
        out.append(
            {
                "apiVersion": "v1",
                "kind": "PersistentVolume",
                "metadata": {"name": f"local-{k:06d}", "resourceVersion": "1"},
                "spec": {
                    "capacity": {"storage": f"{(10, 20, 50)[k % 3]}Gi"},
                    "accessModes": ["ReadWriteOnce"],
                    "storageClassName": CLASS,
                    "local": {"path": f"/mnt/disks/{k}"},
                    "nodeAffinity": {"required": {"nodeSelectorTerms": [term]}},
                },
                "status": {"phase": "Available"},
            }
        )
    return out


def with_claims(spec: VolumeSpec, pods: list[JSON]) -> tuple[list[JSON], list[JSON]]:
    """The pods, `claim_share` of them with a claim of their own, and those claims."""
    claims: list[JSON] = []
    out: list[JSON] = []
    for k, raw in enumerate(pods):
        if int((k + 1) * spec.claim_share) == int(k * spec.claim_share):
            out.append(raw)
            continue
        meta = raw["metadata"]
        meta.setdefault("uid", f"uid-{meta['namespace']}-{meta['name']}")
        claim = f"data-{meta['name']}"
        volume = {"name": "data", "persistentVolumeClaim": {"claimName": claim}}
        out.append({**raw, "spec": {**raw["spec"], "volumes": [volume]}})
        claims.append(
            {
                "apiVersion": "v1",
                "kind": "PersistentVolumeClaim",
                "metadata": {
                    "name": claim,
                    "namespace": meta["namespace"],
                    "uid": f"uid-{claim}",
                    "resourceVersion": "1",
                },
                "spec": {
                    "accessModes": ["ReadWriteOnce"],
                    "storageClassName": CLASS,
                    "resources": {"requests": {"storage": "5Gi"}},
                },
                "status": {"phase": "Pending"},
            }
        )
    return out, claims


def verify_volumes(engine: Engine, placed: dict[str, str]) -> tuple[int, list[str]]:
    """(checks, violations) over the volumes Reserve took: each for one claim only, on the node
    of the pod that claims it (pod uid -> node in `placed`)."""
    volumes = engine.ports.volumes
    node_of_claim = {f"data-{key.split('/', 1)[1]}": node for key, node in _pods(engine, placed)}
    taken: dict[tuple[str, str], str] = {}
    violations: list[str] = []
    checks = 0
    for pv in volumes.assumed_pvs.values():
        ref = pv.claim_ref
        if ref is None:
            continue
        claim = (ref[0], ref[1])
        checks += 1
        if claim in taken:
            violations.append(f"claim {claim[1]} got volumes {taken[claim]} and {pv.name}")
        taken[claim] = pv.name
        host = pv.raw["spec"]["nodeAffinity"]["required"]["nodeSelectorTerms"][0][
            "matchExpressions"
        ][0]["values"][0]
        checks += 1
        if node_of_claim.get(claim[1]) != host:
            violations.append(
                f"volume {pv.name} (node {host}) bound to {claim[1]}, whose pod is on "
                f"{node_of_claim.get(claim[1])}"
            )
    checks += 1
    claimed = sum(1 for key, _ in _pods(engine, placed) if engine.state.pods[key].volumes)
    if len(taken) != claimed:
        violations.append(f"{claimed} pods with a claim placed but {len(taken)} volumes taken")
    return checks, violations


def _pods(engine: Engine, placed: dict[str, str]) -> list[tuple[str, str]]:
    """(pod key, node) of the placed pods, from the engine's state (placed is by uid)."""
    by_uid = {p.uid: key for key, p in engine.state.pods.items()}
    return [(by_uid[uid], node) for uid, node in placed.items() if uid in by_uid]
