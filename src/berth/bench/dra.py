"""The DRA side of a benchmark workload (upstream scheduler_perf's
SchedulingWithResourceClaimTemplate): one ResourceSlice per node with `devicesPerNode` devices
shaped like upstream's template (an Intel GPU's attributes, unique PCI addresses), the
DeviceClass `test-class`, claims already allocated (upstream's initClaims) and, for each pod to
schedule, the claim the ResourceClaim controller would create from the pod's template.
`verify_devices` checks the outcome: no device allocated twice, every claim's devices on the
node of the pod that got them. Decisions in process take the claims the controller would make;
a run against the embedded cluster (`live_objects`) has its ResourceClaim controller make them
from the template, and `verify_cluster` checks the claims it ends with.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

JSON = dict[str, Any]
DRIVER = "test-driver.cdi.k8s.io"
CLASS = "test-class"
TEMPLATE = "test-claim-template"


@dataclass(frozen=True)
class DRASpec:
    devices_per_node: int = 10
    pci_roots: int = 2
    requests_per_claim: int = 1


def parse_dra(raw: Any) -> DRASpec | None:
    if raw is None:
        return None
    if not isinstance(raw, dict):
        raise ValueError("dra: must be a mapping")
    spec = DRASpec(
        devices_per_node=int(raw.get("devicesPerNode", 10)),
        pci_roots=int(raw.get("pciRoots", 2)),
        requests_per_claim=int(raw.get("requestsPerClaim", 1)),
    )
    if spec.devices_per_node < 1 or spec.pci_roots < 1 or spec.requests_per_claim < 1:
        raise ValueError("dra: devicesPerNode, pciRoots and requestsPerClaim must be >= 1")
    return spec


def _device(i: int, roots: int) -> JSON:
    root = i % roots
    return {
        "name": f"basic-device-{i}",
        "attributes": {
            "driver": {"string": "xe"},
            "driverVersion": {"version": "1.2.3"},
            "resource.k8s.io/pciRoot": {"string": str(root)},
            "family": {"string": "Arc Pro B-Series"},
            "health": {"string": "Healthy"},
            "model": {"string": "B60"},
            "pciAddress": {"string": f"0000:0{i}:00.0"},
            "pciId": {"string": "0xe211"},
            "pciRoot": {"string": f"0{root}"},
            "resource.kubernetes.io/pciBusID": {"string": f"0000:0{i}:00.0"},
            "resource.kubernetes.io/pciRoot": {"string": f"pci0000:0{root}"},
            "sriov": {"bool": True},
            "type": {"string": "gpu"},
        },
        "capacity": {"memory": {"value": "24480Mi"}, "millicores": {"value": "1k"}},
    }


def cluster_objects(
    spec: DRASpec, nodes: list[JSON], *, init_claims: int, namespace: str
) -> list[JSON]:
    """The DeviceClass, one slice per node and `init_claims` claims allocated round-robin."""
    out: list[JSON] = [
        {
            "apiVersion": "resource.k8s.io/v1",
            "kind": "DeviceClass",
            "metadata": {"name": CLASS},
            "spec": {"selectors": [{"cel": {"expression": f'device.driver == "{DRIVER}"'}}]},
        }
    ]
    names = [n["metadata"]["name"] for n in nodes]
    for name in names:
        out.append(
            {
                "apiVersion": "resource.k8s.io/v1",
                "kind": "ResourceSlice",
                "metadata": {"name": f"{name}-{DRIVER}"},
                "spec": {
                    "driver": DRIVER,
                    "nodeName": name,
                    "pool": {"name": name, "generation": 1, "resourceSliceCount": 1},
                    "devices": [_device(i, spec.pci_roots) for i in range(spec.devices_per_node)],
                },
            }
        )
    capacity = len(names) * spec.devices_per_node
    for k in range(min(init_claims, capacity)):
        node = names[k % len(names)]
        device = (k // len(names)) % spec.devices_per_node
        out.append(
            {
                "apiVersion": "resource.k8s.io/v1",
                "kind": "ResourceClaim",
                "metadata": {"name": f"init-{k:06d}", "namespace": namespace, "uid": f"init-{k}"},
                "spec": _claim_spec(spec),
                "status": {
                    "allocation": {
                        "devices": {
                            "results": [
                                {
                                    "request": "req-0",
                                    "driver": DRIVER,
                                    "pool": node,
                                    "device": f"basic-device-{device}",
                                }
                            ]
                        },
                        "nodeSelector": {
                            "nodeSelectorTerms": [
                                {
                                    "matchFields": [
                                        {"key": "metadata.name", "operator": "In", "values": [node]}
                                    ]
                                }
                            ]
                        },
                    }
                },
            }
        )
    return out


def _claim_spec(spec: DRASpec) -> JSON:
    return {
        "devices": {
            "requests": [
                {"name": f"req-{i}", "exactly": {"deviceClassName": CLASS}}
                for i in range(spec.requests_per_claim)
            ]
        }
    }


def with_claims(spec: DRASpec, pods: list[JSON]) -> tuple[list[JSON], list[JSON]]:
    """The pods with a claim template and its claim in their status, and those claims (what
    the ResourceClaim controller does before the scheduler sees a pod)."""
    claims: list[JSON] = []
    out: list[JSON] = []
    for raw in pods:
        meta = raw["metadata"]
        uid = meta.setdefault("uid", f"uid-{meta['namespace']}-{meta['name']}")
        claim_name = f"{meta['name']}-resource"
        pod = {
            **raw,
            "spec": {
                **raw["spec"],
                "resourceClaims": [{"name": "resource", "resourceClaimTemplateName": TEMPLATE}],
            },
            "status": {
                "resourceClaimStatuses": [{"name": "resource", "resourceClaimName": claim_name}]
            },
        }
        out.append(pod)
        claims.append(
            {
                "apiVersion": "resource.k8s.io/v1",
                "kind": "ResourceClaim",
                "metadata": {
                    "name": claim_name,
                    "namespace": meta["namespace"],
                    "uid": f"claim-{uid}",
                    "ownerReferences": [
                        {
                            "apiVersion": "v1",
                            "kind": "Pod",
                            "name": meta["name"],
                            "uid": uid,
                            "controller": True,
                        }
                    ],
                },
                "spec": _claim_spec(spec),
            }
        )
    return out, claims


def template_object(spec: DRASpec, namespace: str) -> JSON:
    """upstream's claim template: one device of the class per request."""
    return {
        "apiVersion": "resource.k8s.io/v1",
        "kind": "ResourceClaimTemplate",
        "metadata": {"name": TEMPLATE, "namespace": namespace},
        "spec": {"spec": _claim_spec(spec)},
    }


def live_objects(
    spec: DRASpec, nodes: list[JSON], pods: list[JSON], *, init_claims: int, namespace: str
) -> tuple[list[JSON], list[JSON]]:
    """For a run against the cluster: the pods with the claim template (their claims made by the
    cluster's ResourceClaim controller, as in upstream's scheduler_perf), and what to create
    before them: the pre-allocated claims' namespace, the class, the slices, those claims (with
    their status) and the template."""
    out = [
        {
            **raw,
            "spec": {
                **raw["spec"],
                "resourceClaims": [{"name": "resource", "resourceClaimTemplateName": TEMPLATE}],
            },
        }
        for raw in pods
    ]
    objects = [
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "init"}},
        *cluster_objects(spec, nodes, init_claims=init_claims, namespace="init"),
        template_object(spec, namespace),
    ]
    return out, objects


def verify_cluster(
    pods: Iterable[JSON], claims: Iterable[JSON], *, namespace: str
) -> tuple[int, list[str]]:
    """`verify_devices` over the cluster's final claims: every pod of `namespace` with claims has
    its claim, allocated and reserved for it, and no device is in two allocations."""
    claims = list(claims)
    by_key = {(c["metadata"]["namespace"], c["metadata"]["name"]): c for c in claims}
    violations: list[str] = []
    checks = 0
    owned: dict[tuple[str, str], str] = {}  # claim key -> the node of the pod holding it
    for pod in pods:
        meta = pod["metadata"]
        if meta.get("namespace") != namespace or not pod["spec"].get("resourceClaims"):
            continue  # (the running pods hold no claims)
        checks += 1
        statuses = (pod.get("status") or {}).get("resourceClaimStatuses") or []
        names = [s.get("resourceClaimName") for s in statuses if s.get("name") == "resource"]
        claim = by_key.get((namespace, str(names[0]))) if names and names[0] else None
        if claim is None:
            violations.append(f"pod {meta['name']}: no claim")
            continue
        status = claim.get("status") or {}
        if status.get("allocation") is None:
            violations.append(f"claim {claim['metadata']['name']}: not allocated")
        reserved = [r.get("uid") for r in status.get("reservedFor") or ()]
        if reserved != [meta["uid"]]:
            violations.append(f"claim {claim['metadata']['name']}: reserved for {reserved}")
        owned[(namespace, claim["metadata"]["name"])] = str(pod["spec"].get("nodeName") or "?")
    found, broken = verify_devices(
        (f"{ns}/{name}", owned.get((ns, name), ""), c["status"]["allocation"])
        for (ns, name), c in by_key.items()
        if (c.get("status") or {}).get("allocation") is not None
    )
    return checks + found, violations + broken


def verify_devices(allocations: Iterable[tuple[str, str, JSON]]) -> tuple[int, list[str]]:
    """(checks, violations) over (claim, node the pod got or "" for a pre-allocated claim,
    allocation): a device is in one allocation only (or, shared, in several under distinct
    share IDs and never also whole), and a pod's devices are on its node."""
    owner: dict[tuple[str, str, str], str] = {}
    shared: dict[tuple[str, str, str], str] = {}
    shares: set[tuple[str, str, str, str]] = set()
    violations: list[str] = []
    checks = 0
    for claim, node, allocation in allocations:
        for r in allocation.get("devices", {}).get("results", ()):
            device = (r["driver"], r["pool"], r["device"])
            checks += 1
            share = r.get("shareID")
            if device in owner or (share is None and device in shared):
                first = owner.get(device) or shared[device]
                violations.append(f"device {'/'.join(device)} allocated to {first} and {claim}")
            elif share is not None and (*device, share) in shares:
                violations.append(f"device {'/'.join(device)}: share {share} allocated twice")
            if share is None:
                owner[device] = claim
            else:
                shared.setdefault(device, claim)
                shares.add((*device, share))
            if node:
                checks += 1
                if r["pool"] != node:  # node-local pools are named after their node
                    violations.append(
                        f"claim {claim}: device {'/'.join(device)} is not on node {node}"
                    )
        if node:
            terms = (allocation.get("nodeSelector") or {}).get("nodeSelectorTerms") or []
            checks += 1
            values = [
                v for t in terms for f in t.get("matchFields") or () for v in f.get("values") or ()
            ]
            if values != [node]:
                violations.append(f"claim {claim}: nodeSelector {terms} does not pin node {node}")
    return checks, violations


def verify_allocations(engine: Any, placed: dict[str, str]) -> tuple[int, list[str]]:
    """`verify_devices` over the engine's final allocations (Reserve's in-flight ones as PreBind
    would write them), each claim with the node its pod got (pod uid -> node in `placed`)."""
    dra = engine.ports.dra
    claims = {c.uid: c for c in dra.claims.values()}
    claims.update(dra.in_flight)
    owners = {c.uid: c.controller[2] if c.controller else "" for c in claims.values()}
    return verify_devices(
        (c.key, placed.get(owners[c.uid], ""), c.allocation.raw)
        for c in claims.values()
        if c.allocation is not None
    )


def check_store(core: Any) -> tuple[int, list[str]]:
    """`verify_cluster` on an embedded cluster's store (run on its loop)."""
    from berth.bench.workload import NAMESPACE
    from berth.cluster.resources import PODS, RESOURCE_CLAIMS

    store = core.store
    return verify_cluster(store.items(PODS), store.items(RESOURCE_CLAIMS), namespace=NAMESPACE)
