"""VolumeBinding: PreFilter and Filter rows after upstream's volume_binding_test.go (and the
FindPodVolumes cases of binder_test.go), then Reserve/Unreserve on the assume cache."""

from __future__ import annotations

from typing import Any

import pytest

from berth.framework.plugin import CycleState
from berth.framework.status import Code
from berth.objects import parse_pod
from tests.builders import node, pod
from tests.plugins.volume_builders import harness, pod_with_claims, pv, pvc, storage_class

BIND_CONFLICT = "node(s) didn't find available persistent volumes to bind"
NODE_CONFLICT = "node(s) didn't match PersistentVolume's node affinity"
PV_NOT_EXIST = "node(s) unavailable due to one or more pvc(s) bound to non-existent pv(s)"
IMMEDIATE = "pod has unbound immediate PersistentVolumeClaims"
HOST = "kubernetes.io/hostname"
ZONE = "topology.kubernetes.io/zone"


def on(key: str, *values: str) -> list[dict[str, Any]]:
    return [{"matchExpressions": [{"key": key, "operator": "In", "values": list(values)}]}]


NODES = [
    node("node-a", labels={ZONE: "zone-1"}),
    node("node-b", labels={ZONE: "zone-1"}),
    node("node-c", labels={ZONE: "zone-2"}),
]
CLASSES = [
    storage_class("wait", provisioner="kubernetes.io/no-provisioner"),
    storage_class("wait-provision"),
    storage_class("wait-zone-2", topologies=[{ZONE: ["zone-2"]}]),
    storage_class("immediate", mode="Immediate"),
]


@pytest.mark.parametrize(
    ("name", "objects", "claims", "want"),
    [
        (
            "all bound, PV without node affinity",
            [pvc("pvc-a", volume="pv-a"), pv("pv-a", claim=("default", "pvc-a"), phase="Bound")],
            ["pvc-a"],
            {},
        ),
        (
            "bound claim, PV pinned to one node",
            [
                pvc("pvc-a", volume="pv-a"),
                pv("pv-a", phase="Bound", affinity=on(HOST, "node-b")),
            ],
            ["pvc-a"],
            {"node-a": [NODE_CONFLICT], "node-c": [NODE_CONFLICT]},
        ),
        (
            "bound claim, PV in a zone",
            [pvc("pvc-a", volume="pv-a"), pv("pv-a", phase="Bound", affinity=on(ZONE, "zone-2"))],
            ["pvc-a"],
            {"node-a": [NODE_CONFLICT], "node-b": [NODE_CONFLICT]},
        ),
        (
            "pv not found",
            [pvc("pvc-a", volume="pv-a")],
            ["pvc-a"],
            {n: [PV_NOT_EXIST] for n in ("node-a", "node-b", "node-c")},
        ),
        (
            "unbound claims no matches",
            [pvc("pvc-a", cls="wait")],
            ["pvc-a"],
            {n: [BIND_CONFLICT] for n in ("node-a", "node-b", "node-c")},
        ),
        (
            "unbound claim, local PV on one node",
            [pvc("pvc-a", cls="wait"), pv("local-b", cls="wait", affinity=on(HOST, "node-b"))],
            ["pvc-a"],
            {"node-a": [BIND_CONFLICT], "node-c": [BIND_CONFLICT]},
        ),
        (
            "unbound claim, the only PV is too small",
            [pvc("pvc-a", cls="wait", size="50Gi"), pv("pv-small", cls="wait")],
            ["pvc-a"],
            {n: [BIND_CONFLICT] for n in ("node-a", "node-b", "node-c")},
        ),
        (
            "unbound claim, PV of another class",
            [pvc("pvc-a", cls="wait"), pv("pv-other", cls="other")],
            ["pvc-a"],
            {n: [BIND_CONFLICT] for n in ("node-a", "node-b", "node-c")},
        ),
        (
            "unbound claim, PV lacks the access mode",
            [pvc("pvc-a", cls="wait", modes=("ReadWriteMany",)), pv("pv-rwo", cls="wait")],
            ["pvc-a"],
            {n: [BIND_CONFLICT] for n in ("node-a", "node-b", "node-c")},
        ),
        (
            "unbound claim, PV not Available",
            [pvc("pvc-a", cls="wait"), pv("pv-released", cls="wait", phase="Released")],
            ["pvc-a"],
            {n: [BIND_CONFLICT] for n in ("node-a", "node-b", "node-c")},
        ),
        (
            "unbound claim, PV claimed by another claim",
            [pvc("pvc-a", cls="wait"), pv("pv-taken", cls="wait", claim=("default", "other"))],
            ["pvc-a"],
            {n: [BIND_CONFLICT] for n in ("node-a", "node-b", "node-c")},
        ),
        (
            "unbound claim, selector does not match",
            [
                pvc("pvc-a", cls="wait", selector={"matchLabels": {"tier": "gold"}}),
                pv("pv-silver", cls="wait", labels={"tier": "silver"}),
            ],
            ["pvc-a"],
            {n: [BIND_CONFLICT] for n in ("node-a", "node-b", "node-c")},
        ),
        ("unbound claim, class provisions anywhere", [pvc("pvc-a", cls="wait-provision")],
         ["pvc-a"], {}),
        (
            "unbound claim, class provisions in zone-2 only (allowedTopologies)",
            [pvc("pvc-a", cls="wait-zone-2")],
            ["pvc-a"],
            {"node-a": [BIND_CONFLICT], "node-b": [BIND_CONFLICT]},
        ),
        (
            "two claims, one local PV per node: each node has only one",
            [
                pvc("pvc-a", cls="wait"),
                pvc("pvc-b", cls="wait"),
                pv("local-a", cls="wait", affinity=on(HOST, "node-a")),
                pv("local-b", cls="wait", affinity=on(HOST, "node-b")),
            ],
            ["pvc-a", "pvc-b"],
            {n: [BIND_CONFLICT] for n in ("node-a", "node-b", "node-c")},
        ),
        (
            "two claims, two local PVs on node-a",
            [
                pvc("pvc-a", cls="wait"),
                pvc("pvc-b", cls="wait"),
                pv("local-a1", cls="wait", affinity=on(HOST, "node-a")),
                pv("local-a2", cls="wait", affinity=on(HOST, "node-a")),
            ],
            ["pvc-a", "pvc-b"],
            {"node-b": [BIND_CONFLICT], "node-c": [BIND_CONFLICT]},
        ),
        (
            "claim already provisioning on node-c (selected-node annotation)",
            [
                pvc(
                    "pvc-a",
                    cls="wait-provision",
                    annotations={"volume.kubernetes.io/selected-node": "node-c"},
                )
            ],
            ["pvc-a"],
            {"node-a": [BIND_CONFLICT], "node-b": [BIND_CONFLICT]},
        ),
        (
            "bound and unbound unsatisfied",
            [
                pvc("pvc-a", volume="pv-a"),
                pv("pv-a", phase="Bound", affinity=on(HOST, "node-a")),
                pvc("pvc-b", cls="wait"),
                pv("local-c", cls="wait", affinity=on(HOST, "node-c")),
            ],
            ["pvc-a", "pvc-b"],
            {"node-b": [NODE_CONFLICT, BIND_CONFLICT], "node-a": [BIND_CONFLICT],
             "node-c": [NODE_CONFLICT]},
        ),
        (
            "a PV pre-bound to the claim is the only choice",
            [
                pvc("pvc-a", cls="wait"),
                pv("pv-prebound", cls="wait", claim=("default", "pvc-a"), phase="Pending",
                   affinity=on(HOST, "node-c")),
                pv("pv-free", cls="wait"),
            ],
            ["pvc-a"],
            {"node-a": [BIND_CONFLICT], "node-b": [BIND_CONFLICT]},
        ),
    ],
)  # fmt: skip
def test_filter(
    name: str, objects: list[dict[str, Any]], claims: list[str], want: dict[str, list[str]]
) -> None:
    h, _ = harness("VolumeBinding", NODES, CLASSES + objects)
    statuses = h.filter(pod_with_claims(*claims))
    got = {n: list(s.reasons) for n, s in statuses.items() if not s.ok}
    assert got == want, name
    for s in statuses.values():
        assert s.ok or s.code == Code.UNSCHEDULABLE_AND_UNRESOLVABLE


@pytest.mark.parametrize(
    ("name", "objects", "raw_pod", "code", "reason"),
    [
        ("pod has no pvcs", [], pod(), Code.SKIP, ""),
        (
            "PVC does not exist",
            [],
            pod_with_claims("pvc-a"),
            Code.UNSCHEDULABLE_AND_UNRESOLVABLE,
            'persistentvolumeclaim "pvc-a" not found',
        ),
        (
            "Part of PVCs do not exist",
            [pvc("pvc-a", volume="pv-a")],
            pod_with_claims("pvc-a", "pvc-b"),
            Code.UNSCHEDULABLE_AND_UNRESOLVABLE,
            'persistentvolumeclaim "pvc-b" not found',
        ),
        (
            "immediate claims not bound",
            [pvc("pvc-a", cls="immediate")],
            pod_with_claims("pvc-a"),
            Code.UNSCHEDULABLE_AND_UNRESOLVABLE,
            IMMEDIATE,
        ),
        (
            "claim without a class is immediate",
            [pvc("pvc-a")],
            pod_with_claims("pvc-a"),
            Code.UNSCHEDULABLE_AND_UNRESOLVABLE,
            IMMEDIATE,
        ),
        (
            "pre-bound claim not yet bound counts as immediate",
            [pvc("pvc-a", cls="wait", volume="pv-a", bound=False)],
            pod_with_claims("pvc-a"),
            Code.UNSCHEDULABLE_AND_UNRESOLVABLE,
            IMMEDIATE,
        ),
        (
            "pv not found claim lost",
            [pvc("pvc-a", volume="pv-a", phase="Lost")],
            pod_with_claims("pvc-a"),
            Code.UNSCHEDULABLE_AND_UNRESOLVABLE,
            'persistentvolumeclaim "pvc-a" bound to non-existent persistentvolume "pv-a"',
        ),
        (
            "generic ephemeral volume not created yet",
            [],
            pod("web", spec={"volumes": [{"name": "scratch", "ephemeral": {}}]}),
            Code.UNSCHEDULABLE_AND_UNRESOLVABLE,
            "waiting for ephemeral volume controller to create the persistentvolumeclaim "
            '"web-scratch"',
        ),
        (
            "generic ephemeral volume owned by someone else",
            [pvc("web-scratch", cls="wait-provision", owner_uid="someone")],
            pod("web", spec={"volumes": [{"name": "scratch", "ephemeral": {}}]}),
            Code.UNSCHEDULABLE_AND_UNRESOLVABLE,
            "PVC default/web-scratch was not created for pod default/web (pod is not owner)",
        ),
        (
            "generic ephemeral volume owned by the pod",
            [pvc("web-scratch", cls="wait-provision", owner_uid="uid-web")],
            pod("web", spec={"volumes": [{"name": "scratch", "ephemeral": {}}]}),
            Code.SUCCESS,
            "",
        ),
    ],
)
def test_pre_filter(
    name: str, objects: list[dict[str, Any]], raw_pod: dict[str, Any], code: Code, reason: str
) -> None:
    h, _ = harness("VolumeBinding", NODES, CLASSES + objects)
    plugin: Any = h.plugin
    _, status = plugin.pre_filter(CycleState(), parse_pod(raw_pod))
    assert status.code == code, name
    assert status.reasons == ((reason,) if reason else ()), name


def _decide(h: Any, raw_pod: dict[str, Any], node_name: str) -> tuple[Any, CycleState, Any]:
    plugin = h.plugin
    p = parse_pod(raw_pod)
    cycle = CycleState()
    _, status = plugin.pre_filter(cycle, p)
    assert status.ok
    nodes = h.state.node_indices()
    plugin.filter(cycle, p, nodes)
    assert plugin.reserve(cycle, p, node_name).ok
    return plugin, cycle, p


def test_reserve_assumes_smallest_pv_and_unreserve_reverts() -> None:
    objects = [
        pvc("pvc-a", cls="wait"),
        pv("pv-big", cls="wait", size="100Gi"),
        pv("pv-small", cls="wait", size="6Gi"),
    ]
    h, index = harness("VolumeBinding", NODES, CLASSES + objects)
    plugin, cycle, p = _decide(h, pod_with_claims("pvc-a"), "node-a")
    assumed = index.pv("pv-small")
    assert assumed is not None and assumed.claim_ref == ("default", "pvc-a", "uid-pvc-a")
    assert assumed.raw["metadata"]["annotations"]["pv.kubernetes.io/bound-by-controller"] == "yes"
    # The next pod with another claim of the class now gets the big one.
    statuses = h.filter(pod_with_claims("pvc-a"))
    assert all(s.ok for s in statuses.values())
    plugin.unreserve(cycle, p, "node-a")
    restored = index.pv("pv-small")
    assert restored is not None and restored.claim_ref is None


def test_reserve_annotates_claims_to_provision() -> None:
    h, index = harness("VolumeBinding", NODES, [*CLASSES, pvc("data-0", cls="wait-provision")])
    plugin, cycle, p = _decide(h, pod_with_claims("data-0"), "node-b")
    claim = index.pvc("default", "data-0")
    assert claim is not None
    assert claim.annotations["volume.kubernetes.io/selected-node"] == "node-b"
    # Another pod of the same claim must follow it to node-b.
    reasons = h.reasons(pod_with_claims("data-0"))
    assert reasons == {"node-a": [BIND_CONFLICT], "node-c": [BIND_CONFLICT]}
    plugin.unreserve(cycle, p, "node-b")
    assert "volume.kubernetes.io/selected-node" not in index.pvc("default", "data-0").annotations  # type: ignore[union-attr]


def test_assumed_pv_dropped_when_api_catches_up() -> None:
    objects = [pvc("pvc-a", cls="wait"), pv("pv-a", cls="wait")]
    h, index = harness("VolumeBinding", NODES, CLASSES + objects)
    _decide(h, pod_with_claims("pvc-a"), "node-a")
    assert index.pv("pv-a").claim_ref is not None  # type: ignore[union-attr]
    newer = pv("pv-a", cls="wait", phase="Available")  # a later resourceVersion, no claimRef
    index.upsert(newer)
    assert index.pv("pv-a").claim_ref is None  # type: ignore[union-attr]


def test_all_bound_pod_reserves_nothing() -> None:
    objects = [pvc("pvc-a", volume="pv-a"), pv("pv-a", phase="Bound")]
    h, index = harness("VolumeBinding", NODES, CLASSES + objects)
    _decide(h, pod_with_claims("pvc-a"), "node-a")
    assert not index.assumed_pvs and not index.assumed_pvcs


def test_args() -> None:
    from berth.plugins.volumebinding import VolumeBindingArgs

    assert VolumeBindingArgs().bindTimeoutSeconds == 600
    with pytest.raises(ValueError):
        VolumeBindingArgs.model_validate({"bindTimeoutSeconds": -1})
    with pytest.raises(ValueError):
        VolumeBindingArgs.model_validate({"shape": []})


@pytest.mark.parametrize("plugin", ["VolumeBinding", "VolumeZone", "VolumeRestrictions"])
def test_untracked_storage_skips(plugin: str) -> None:
    """The extender does not watch storage (kube-scheduler ran its volume plugins already)."""
    h, index = harness(plugin, NODES)
    index.tracked = False
    assert all(s.ok for s in h.filter(pod_with_claims("pvc-nowhere")).values())


# --- The array walk against upstream's FindMatchingVolume, one node at a time ---------------------
def _reference_choice(
    claims: list[dict[str, Any]], pvs: list[dict[str, Any]], labels: dict[str, str]
) -> list[str | None]:
    """upstream findMatchingVolumes on one node: claims by request, each takes the first PV
    pre-bound to it (matching the node or not) or else the smallest Available matching PV;
    chosen PVs are excluded for the next claims. Only `In` affinities, as generated below."""

    def fits(pv: dict[str, Any]) -> bool:
        terms = (pv["spec"].get("nodeAffinity") or {}).get("required", {}).get("nodeSelectorTerms")
        if terms is None:
            return True
        return any(
            all(labels.get(e["key"]) in e["values"] for e in t["matchExpressions"]) for t in terms
        )

    def size(obj: dict[str, Any], path: str) -> int:
        return int(obj["spec"][path]["storage"].removesuffix("Gi"))

    excluded: set[str] = set()
    out: list[str | None] = []
    ordered = sorted(claims, key=lambda c: int(c["spec"]["resources"]["requests"]["storage"][:-2]))
    for c in ordered:
        name = c["metadata"]["name"]
        want = int(c["spec"]["resources"]["requests"]["storage"][:-2])
        smallest: dict[str, Any] | None = None
        result: dict[str, Any] | None = None
        for v in sorted(pvs, key=lambda v: v["metadata"]["name"]):
            if v["metadata"]["name"] in excluded:
                continue
            ref = v["spec"].get("claimRef")
            if ref is not None and ref["name"] != name:
                continue
            cap = size(v, "capacity")
            if cap < want:
                continue
            if ref is not None:
                result = v if fits(v) else None
                break
            if v["status"]["phase"] != "Available" or not fits(v):
                continue
            if smallest is None or size(smallest, "capacity") > cap:
                smallest = v
        else:
            result = smallest
        out.append(None if result is None else result["metadata"]["name"])
        if result is not None:
            excluded.add(result["metadata"]["name"])
    return out


@pytest.mark.parametrize("seed", range(12))
def test_first_match_equals_upstream_walk_per_node(seed: int) -> None:
    import random

    rng = random.Random(seed)
    zones = ["a", "b", "c"]
    nodes = [node(f"n{i}", labels={"zone": zones[i % 3]}) for i in range(24)]
    host = "kubernetes.io/hostname"
    claims = [
        pvc(f"c{k}", cls="local", size=f"{rng.choice([1, 2, 5])}Gi", bound=False)
        for k in range(rng.randint(1, 3))
    ]
    pvs = []
    for j in range(40):
        kind = rng.random()
        if kind < 0.15:
            affinity = None
        elif kind < 0.4:
            affinity = on("zone", rng.choice(zones))
        elif kind < 0.9:
            affinity = on(host, f"n{rng.randrange(24)}")
        else:
            affinity = on(host, f"n{rng.randrange(24)}", f"n{rng.randrange(24)}")
        claim_ref = None
        if rng.random() < 0.08:
            claim_ref = ("default", f"c{rng.randrange(len(claims))}")
        pvs.append(
            pv(
                f"pv-{j:02d}",
                cls="local",
                size=f"{rng.choice([1, 2, 5, 10])}Gi",
                affinity=affinity,
                claim=claim_ref,
                phase=rng.choice(["Available"] * 5 + ["Bound"]),
            )
        )
    objects = [storage_class("local", provisioner="kubernetes.io/no-provisioner"), *claims, *pvs]
    h, _ = harness("VolumeBinding", nodes, objects)
    raw = pod_with_claims(*(c["metadata"]["name"] for c in claims))
    got = {n: s.ok for n, s in h.filter(raw).items()}
    for n in nodes:
        name = n["metadata"]["name"]
        labels = {host: name, **n["metadata"]["labels"]}
        want = _reference_choice(claims, pvs, labels)
        assert got[name] == all(w is not None for w in want), (name, want)


# --- Score: storage capacity scoring (volume_binding_test.go, StorageCapacityScoring on) -------
@pytest.mark.parametrize(
    ("name", "claims", "pvs", "args", "want"),
    [
        (
            "local volumes with close capacity are preferred",
            [pvc("pvc-a", cls="wait", size="50Gi")],
            [
                pv("pv-a-0", cls="wait", size="200Gi", affinity=on(HOST, "node-a")),
                pv("pv-a-1", cls="wait", size="200Gi", affinity=on(HOST, "node-a")),
                pv("pv-b-0", cls="wait", size="100Gi", affinity=on(HOST, "node-b")),
                pv("pv-b-1", cls="wait", size="100Gi", affinity=on(HOST, "node-b")),
            ],
            None,
            {"node-a": 75, "node-b": 50},
        ),
        (
            "local volumes with close capacity are preferred (multiple pvcs)",
            [pvc("pvc-0", cls="wait", size="50Gi"), pvc("pvc-1", cls="wait-hdd", size="100Gi")],
            [
                storage_class("wait-hdd", provisioner="kubernetes.io/no-provisioner"),
                pv("pv-a-0", cls="wait", size="200Gi", affinity=on(HOST, "node-a")),
                pv("pv-a-1", cls="wait", size="200Gi", affinity=on(HOST, "node-a")),
                pv("pv-a-2", cls="wait-hdd", size="200Gi", affinity=on(HOST, "node-a")),
                pv("pv-a-3", cls="wait-hdd", size="200Gi", affinity=on(HOST, "node-a")),
                pv("pv-b-0", cls="wait", size="100Gi", affinity=on(HOST, "node-b")),
                pv("pv-b-1", cls="wait", size="100Gi", affinity=on(HOST, "node-b")),
                pv("pv-b-2", cls="wait-hdd", size="100Gi", affinity=on(HOST, "node-b")),
                pv("pv-b-3", cls="wait-hdd", size="100Gi", affinity=on(HOST, "node-b")),
            ],
            None,
            {"node-a": 63, "node-b": 25},
        ),
        (
            "[derived] custom shape: the fuller the better",
            [pvc("pvc-a", cls="wait", size="50Gi")],
            [
                pv("pv-a", cls="wait", size="200Gi", affinity=on(HOST, "node-a")),
                pv("pv-b", cls="wait", size="100Gi", affinity=on(HOST, "node-b")),
            ],
            {"shape": [{"utilization": 0, "score": 0}, {"utilization": 100, "score": 10}]},
            {"node-a": 25, "node-b": 50},
        ),
        ("pod has no pvcs", [], [], None, {"node-a": 0, "node-b": 0}),
    ],
)
def test_volume_binding_score(
    name: str,
    claims: list[dict[str, Any]],
    pvs: list[dict[str, Any]],
    args: dict[str, Any] | None,
    want: dict[str, int],
) -> None:
    h, _ = harness("VolumeBinding", NODES[:2], [*CLASSES, *claims, *pvs], args=args)
    names = [c["metadata"]["name"] for c in claims if c["kind"] == "PersistentVolumeClaim"]
    p = parse_pod(pod_with_claims(*names))
    cycle = CycleState()
    nodes = h._nodes()
    h.plugin.pre_filter(cycle, p)  # type: ignore[attr-defined]
    assert h.plugin.pre_score(cycle, p, nodes).ok  # type: ignore[attr-defined]
    scores = h.plugin.score(cycle, p, nodes)  # type: ignore[attr-defined]
    assert {h.state.names[i]: int(s) for i, s in zip(nodes, scores, strict=True)} == want, name
