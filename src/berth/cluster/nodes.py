"""Generated nodes: realistic Node objects (labels, capacity, conditions, addresses, node info)
for a cluster of N identical nodes spread round-robin over Z zones, plus their node Leases.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

from berth.cluster.admission import now, now_micro
from berth.cluster.discovery import KUBE_VERSION

JSON = dict[str, Any]


@dataclass(frozen=True)
class NodeShape:
    """What every generated node looks like."""

    cpu: str = "32"
    memory: str = "128Gi"
    pods: int = 110
    ephemeral_storage: str = "100Gi"
    instance_type: str = ""

    @property
    def instance(self) -> str:
        return self.instance_type or f"berth.c{self.cpu}-m{self.memory.lower()}"


def zone_name(index: int) -> str:
    """zone-a, zone-b, ..., zone-z, zone-aa, ..."""
    letters = ""
    index += 1
    while index:
        index, rem = divmod(index - 1, 26)
        letters = chr(ord("a") + rem) + letters
    return f"zone-{letters}"


def node_name(index: int, *, total: int) -> str:
    return f"node-{index:0{max(3, len(str(total)))}d}"


def make_node(*, index: int, total: int, zones: int, shape: NodeShape) -> JSON:
    """The Node object of node number `index` (1-based) of `total`."""
    name = node_name(index, total=total)
    zone = zone_name((index - 1) % max(1, zones))
    digest = hashlib.sha256(name.encode()).hexdigest()
    stamp = now()
    resources = {
        "cpu": shape.cpu,
        "memory": shape.memory,
        "pods": str(shape.pods),
        "ephemeral-storage": shape.ephemeral_storage,
        "hugepages-1Gi": "0",
        "hugepages-2Mi": "0",
    }
    conditions = [
        (
            "MemoryPressure",
            "False",
            "KubeletHasSufficientMemory",
            "kubelet has sufficient memory available",
        ),
        ("DiskPressure", "False", "KubeletHasNoDiskPressure", "kubelet has no disk pressure"),
        ("PIDPressure", "False", "KubeletHasSufficientPID", "kubelet has sufficient PID available"),
        ("Ready", "True", "KubeletReady", "kubelet is posting ready status"),
    ]
    hi, lo = divmod(index, 250)
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": name,
            "labels": {
                "kubernetes.io/hostname": name,
                "kubernetes.io/os": "linux",
                "kubernetes.io/arch": "amd64",
                "beta.kubernetes.io/os": "linux",
                "beta.kubernetes.io/arch": "amd64",
                "topology.kubernetes.io/zone": zone,
                "topology.kubernetes.io/region": "region-1",
                "node.kubernetes.io/instance-type": shape.instance,
                "type": "berth",
            },
            "annotations": {"node.alpha.kubernetes.io/ttl": "0"},
        },
        "spec": {
            "podCIDR": f"10.{64 + hi}.{lo}.0/24",
            "podCIDRs": [f"10.{64 + hi}.{lo}.0/24"],
            "providerID": f"berth://{name}",
        },
        "status": {
            "capacity": dict(resources),
            "allocatable": dict(resources),
            "conditions": [
                {
                    "type": t,
                    "status": s,
                    "reason": r,
                    "message": m,
                    "lastHeartbeatTime": stamp,
                    "lastTransitionTime": stamp,
                }
                for t, s, r, m in conditions
            ],
            "addresses": [
                {"type": "InternalIP", "address": f"10.0.{hi}.{lo + 1}"},
                {"type": "Hostname", "address": name},
            ],
            "daemonEndpoints": {"kubeletEndpoint": {"Port": 10250}},
            "nodeInfo": {
                "machineID": digest[:32],
                "systemUUID": f"{digest[:8]}-{digest[8:12]}-{digest[12:16]}-{digest[16:20]}-"
                f"{digest[20:32]}",
                "bootID": digest[32:64],
                "kernelVersion": "6.8.0-berth",
                "osImage": "Berth simulated node",
                "containerRuntimeVersion": "berth://0.1.0",
                "kubeletVersion": KUBE_VERSION,
                "kubeProxyVersion": "",
                "operatingSystem": "linux",
                "architecture": "amd64",
            },
        },
    }


def make_node_lease(*, node: JSON) -> JSON:
    """The kube-node-lease Lease a kubelet keeps for its node."""
    name = node["metadata"]["name"]
    return {
        "apiVersion": "coordination.k8s.io/v1",
        "kind": "Lease",
        "metadata": {
            "name": name,
            "namespace": "kube-node-lease",
            "ownerReferences": [
                {"apiVersion": "v1", "kind": "Node", "name": name, "uid": node["metadata"]["uid"]}
            ],
        },
        "spec": {
            "holderIdentity": name,
            "leaseDurationSeconds": 40,
            "renewTime": now_micro(),
        },
    }


def node_ip(node: JSON) -> str:
    for a in (node.get("status") or {}).get("addresses") or []:
        if a.get("type") == "InternalIP":
            return str(a.get("address"))
    return ""
