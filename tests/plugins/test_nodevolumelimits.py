"""NodeVolumeLimits, rows transcribed from upstream's nodevolumelimits/csi_test.go (TestCSILimits).

The fixtures are upstream's: for each driver, PVs and bound claims `csi-<driver>-0..3` (CSI
sources; an AWS EBS source for the in-tree `kubernetes.io/aws-ebs`, hostPath for
`kubernetes.io/hostpath`), claim `csi-4` unbound with class `csi-sc`, `csi-5` without a class,
`csi-6` bound to a missing PV, class `csi-sc` provisioned by the first driver, and one node whose
CSINode lists the drivers with `maxVols` (limitSource "csinode"), without limits
("csinode-with-no-limit") or is absent (""). Rows that count VolumeAttachments (vaCount) are left
out: Berth does not watch VolumeAttachments.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from berth.framework.plugin import CycleState
from berth.framework.status import Code
from berth.objects.pod import parse_pod
from tests.builders import node
from tests.plugins.volume_builders import harness, pod_with_claims, pod_with_volumes, pvc

EBS = "ebs.csi.aws.com"
GCE = "pd.csi.storage.gke.io"
EBS_IN_TREE = "kubernetes.io/aws-ebs"
HOSTPATH = "kubernetes.io/hostpath"
SC = "csi-sc"
NODE = "node-for-max-pd-test-1"
EXCEEDED = "node(s) exceed max volume count"


def csi_pv(driver: str, j: int) -> dict[str, Any]:
    name = f"csi-{driver}-{j}"
    if driver == EBS_IN_TREE:
        source: dict[str, Any] = {"awsElasticBlockStore": {"volumeID": name}}
    elif driver == HOSTPATH:
        source = {"hostPath": {"path": "/tmp"}}
    else:
        source = {"csi": {"driver": driver, "volumeHandle": name}}
    return {
        "apiVersion": "v1",
        "kind": "PersistentVolume",
        "metadata": {"name": name, "resourceVersion": "1"},
        "spec": {"capacity": {"storage": "1Gi"}, "accessModes": ["ReadWriteOnce"], **source},
        "status": {"phase": "Bound"},
    }


def csinode(drivers: list[str], limit: int | None) -> dict[str, Any]:
    entries = []
    for d in drivers:
        entry: dict[str, Any] = {"name": d, "nodeID": NODE}
        if limit is not None:
            entry["allocatable"] = {"count": limit}
        entries.append(entry)
    return {
        "apiVersion": "storage.k8s.io/v1",
        "kind": "CSINode",
        "metadata": {"name": NODE},
        "spec": {"drivers": entries},
    }


def storage_objects(drivers: list[str]) -> list[dict[str, Any]]:
    objs: list[dict[str, Any]] = []
    for d in drivers:
        for j in range(4):
            objs.append(csi_pv(d, j))
            objs.append(pvc(f"csi-{d}-{j}", volume=f"csi-{d}-{j}"))
    objs.append(pvc("csi-4", cls=SC))
    objs.append(pvc("csi-5"))
    objs.append(pvc("csi-6", cls=SC, volume="missing-in-action"))
    objs.append(
        {
            "apiVersion": "storage.k8s.io/v1",
            "kind": "StorageClass",
            "metadata": {"name": SC},
            "provisioner": drivers[0],
            "volumeBindingMode": "WaitForFirstConsumer",
        }
    )
    return objs


def with_uid(p: dict[str, Any], uid: str) -> dict[str, Any]:
    p["metadata"]["uid"] = uid
    return p


def claims(*names: str) -> dict[str, Any]:
    return pod_with_claims(*names)


def ephemeral_pod(uid: str, *volumes: str) -> dict[str, Any]:
    vols = [{"name": v, "ephemeral": {"volumeClaimTemplate": {"spec": {}}}} for v in volumes]
    return with_uid(pod_with_volumes(*vols, name="abc", namespace="test"), uid)


def ephemeral_claim(name: str, owner: str | None) -> dict[str, Any]:
    return pvc(name, cls=SC, namespace="test", owner_uid=owner or "")


def running() -> dict[str, Any]:
    return claims(f"csi-{EBS}-3")


def pending() -> dict[str, Any]:
    return claims("csi-4")


def ebs_one() -> dict[str, Any]:
    return claims(f"csi-{EBS}-0")


def ebs_two() -> dict[str, Any]:
    return claims(f"csi-{EBS}-1", f"csi-{EBS}-2")


def gce_two() -> dict[str, Any]:
    return claims(f"csi-{GCE}-1", f"csi-{GCE}-2")


def in_tree_one() -> dict[str, Any]:
    return claims(f"csi-{EBS_IN_TREE}-0")


def in_tree_two() -> dict[str, Any]:
    return claims(f"csi-{EBS_IN_TREE}-1", f"csi-{EBS_IN_TREE}-2")


def inline_ebs(volume_id: str) -> dict[str, Any]:
    return pod_with_volumes({"name": "v", "awsElasticBlockStore": {"volumeID": volume_id}})


def claim_volume(name: str) -> dict[str, Any]:
    return {"name": "p", "persistentVolumeClaim": {"claimName": name}}


CONFIGMAP_SECRET = [{"name": "cm", "configMap": {"name": "c"}}, {"name": "s", "secret": {}}]

# (test, new pod, existing pods, extra claims, maxVols, drivers, limitSource, want)
# want: None fits; EXCEEDED; "skip" (PreFilter Skip); or (code, message)
ROWS: list[tuple[str, Any, list[Any], list[Any], int, list[str], str, Any]] = [
    ("fits when node volume limit >= new pods CSI volume",
     ebs_one, [running, ebs_two], [], 4, [EBS], "csinode", None),
    ("doesn't when node volume limit <= pods CSI volume",
     ebs_one, [running, ebs_two], [], 2, [EBS], "csinode", EXCEEDED),
    # csi.go:344-349: only drivers with a new attachment are checked; found by the
    # differential oracle (Berth refused a node already over its limit).
    ("fits a node over its limit when the pod's volumes are all attached there",
     ebs_one, [ebs_one, running, ebs_two], [], 1, [EBS], "csinode", None),
    ("fits an unbound claim a pod on the node already uses, with limit 0",
     pending, [pending], [], 0, [EBS], "csinode", None),
    ("should when driver does not support volume limits",
     ebs_one, [running, ebs_two], [], 2, [EBS], "csinode-with-no-limit", None),
    ("count pending PVCs towards volume limit <= pods CSI volume",
     ebs_one, [pending, ebs_two], [], 2, [EBS], "csinode", EXCEEDED),
    ("count multiple pending pvcs towards volume limit >= pods CSI volume",
     ebs_one, [pending, pending, ebs_two], [], 4, [EBS], "csinode", None),
    ("should count PVCs with invalid PV name but valid SC",
     ebs_one, [lambda: claims("csi-6"), ebs_two], [], 2, [EBS], "csinode", EXCEEDED),
    ("don't count pvcs with missing SC towards volume limit",
     ebs_one, [running, lambda: claims("csi-5")], [], 2, [EBS], "csinode", None),
    ("count pvcs with the same type towards volume limit",
     ebs_one, [gce_two, ebs_two], [], 2, [EBS, GCE], "csinode", EXCEEDED),
    ("don't count pvcs with different type towards volume limit",
     gce_two, [ebs_two, running], [], 2, [EBS, GCE], "csinode", None),
    # in-tree volume migration
    ("should count in-tree volumes if migration is enabled",
     in_tree_one, [in_tree_two], [], 2, [EBS_IN_TREE, EBS], "csinode", EXCEEDED),
    ("nil csi node",
     lambda: inline_ebs("aws-inline1"), [in_tree_two], [], 0, [EBS_IN_TREE, EBS], "", None),
    ("should count unbound in-tree volumes if migration is enabled",
     pending, [in_tree_two], [], 2, [EBS_IN_TREE, EBS], "csinode", EXCEEDED),
    ("should not limit pod if volume used does not report limits",
     in_tree_one, [in_tree_two], [], 2, [EBS_IN_TREE, EBS], "csinode-with-no-limit", None),
    ("should not count non-migratable in-tree volumes",
     lambda: claims(f"csi-{HOSTPATH}-0"), [ebs_two], [], 2, [HOSTPATH, EBS], "csinode", None),
    ("should count in-tree inline volumes if migration is enabled",
     lambda: inline_ebs("aws-inline1"), [in_tree_two], [], 2, [EBS_IN_TREE, EBS], "csinode",
     EXCEEDED),
    # mixed volumes
    ("should count in-tree and csi volumes if migration is enabled (when scheduling in-tree "
     "volumes)", in_tree_one, [ebs_two], [], 2, [EBS_IN_TREE, EBS], "csinode", EXCEEDED),
    ("should count in-tree, inline and csi volumes if migration is enabled (when scheduling "
     "in-tree volumes)", lambda: inline_ebs("aws-inline1"), [ebs_two, in_tree_one], [], 3,
     [EBS_IN_TREE, EBS], "csinode", EXCEEDED),
    ("should not count in-tree, inline and csi volumes if migration is enabled (when scheduling "
     "in-tree volumes)", lambda: inline_ebs(f"csi-{EBS}-1"), [ebs_two, in_tree_one], [], 3,
     [EBS_IN_TREE, EBS], "csinode", None),
    ("should count in-tree and csi volumes if migration is enabled (when scheduling csi volumes)",
     ebs_one, [in_tree_two], [], 2, [EBS_IN_TREE, EBS], "csinode", EXCEEDED),
    # ephemeral volumes
    ("ephemeral volume missing",
     lambda: ephemeral_pod("12345", "xyz"), [], [], 0, [EBS], "csinode-with-no-limit",
     (Code.UNSCHEDULABLE_AND_UNRESOLVABLE,
      'looking up PVC test/abc-xyz: persistentvolumeclaim "abc-xyz" not found')),
    ("ephemeral volume not owned",
     lambda: ephemeral_pod("12345", "xyz"), [], [lambda: ephemeral_claim("abc-xyz", None)], 0,
     [EBS], "csinode-with-no-limit",
     (Code.ERROR, "PVC test/abc-xyz was not created for pod test/abc (pod is not owner)")),
    ("ephemeral volume unbound",
     lambda: ephemeral_pod("12345", "xyz"), [], [lambda: ephemeral_claim("abc-xyz", "12345")], 0,
     [EBS], "csinode-with-no-limit", None),
    ("ephemeral doesn't when node volume limit <= pods CSI volume",
     lambda: ephemeral_pod("12345", "xyz"), [running, ebs_two],
     [lambda: ephemeral_claim("abc-xyz", "12345")], 2, [EBS], "csinode", EXCEEDED),
    ("ephemeral doesn't when node volume limit <= pods ephemeral CSI volume",
     ebs_one, [running, lambda: ephemeral_pod("12345II", "x", "y")],
     [lambda: ephemeral_claim("abc-x", "12345II"), lambda: ephemeral_claim("abc-y", "12345II")],
     2, [EBS], "csinode", EXCEEDED),
    ("persistent doesn't when node volume limit <= pods ephemeral CSI volume + persistent volume",
     ebs_one, [running, lambda: ephemeral_pod("12345", "xyz"), ebs_two],
     [lambda: ephemeral_claim("abc-xyz", "12345")], 3, [EBS], "csinode", EXCEEDED),
    ("persistent okay when node volume limit > pods ephemeral CSI volume + persistent volume",
     ebs_one, [running, lambda: ephemeral_pod("12345", "xyz"), ebs_two],
     [lambda: ephemeral_claim("abc-xyz", "12345")], 5, [EBS], "csinode", None),
    ("skip Filter when the pod only uses secrets and configmaps",
     lambda: pod_with_volumes(*CONFIGMAP_SECRET), [], [], 2, [EBS], "csinode", "skip"),
    ("don't skip Filter when the pod has pvcs",
     lambda: pod_with_volumes(*CONFIGMAP_SECRET, claim_volume(f"csi-{EBS}-0")),
     [], [], 2, [EBS], "csinode", None),
    ("don't skip Filter when the pod has ephemeral volumes",
     lambda: with_uid(pod_with_volumes(*CONFIGMAP_SECRET, {"name": "xyz", "ephemeral": {}},
                                       name="abc", namespace="test"), "12345"),
     [], [], 0, [EBS], "csinode-with-no-limit",
     (Code.UNSCHEDULABLE_AND_UNRESOLVABLE,
      'looking up PVC test/abc-xyz: persistentvolumeclaim "abc-xyz" not found')),
    ("don't skip Filter when the pod has inline migratable volumes",
     lambda: pod_with_volumes(*CONFIGMAP_SECRET,
                              {"name": "v", "awsElasticBlockStore": {"volumeID": "aws-inline1"}}),
     [in_tree_two], [], 2, [EBS_IN_TREE, EBS], "csinode", EXCEEDED),
]  # fmt: skip


def build(
    existing: list[Any], extra: list[Any], max_vols: int, drivers: list[str], source: str
) -> Any:
    objects = storage_objects(drivers) + [c() for c in extra]
    if source == "csinode":
        objects.append(csinode(drivers, max_vols))
    elif source == "csinode-with-no-limit":
        objects.append(csinode(drivers, None))
    pods = []
    for make in existing:
        p = make()
        p["spec"]["nodeName"] = NODE
        pods.append(p)
    h, index = harness("NodeVolumeLimits", [node(NODE)], objects, pods)
    return h, index


@pytest.mark.parametrize("row", ROWS, ids=[r[0] for r in ROWS])
def test_csi_limits(row: tuple[str, Any, list[Any], list[Any], int, list[str], str, Any]) -> None:
    _, new, existing, extra, max_vols, drivers, source, want = row
    h, _ = build(existing, extra, max_vols, drivers, source)
    raw = new()
    if want == "skip":
        _, status = h.plugin.pre_filter(CycleState(), parse_pod(raw))
        assert status.is_skip
        return
    got = h.filter(raw)[NODE]
    if want is None:
        assert got.ok, got
    elif want == EXCEEDED:
        assert got.code == Code.UNSCHEDULABLE and got.reasons == (EXCEEDED,), got
    else:
        assert (got.code, got.message) == want


def test_pod_without_volumes_skips() -> None:
    h, _ = build([], [], 2, [EBS], "csinode")
    _, status = h.plugin.pre_filter(CycleState(), parse_pod(pod_with_volumes()))
    assert status.is_skip


def test_follows_pods_and_claims_between_decisions() -> None:
    """The attached volumes are kept, not recounted: placing, removing pods and binding a
    pending claim are seen by the next decision."""
    h, index = build([running], [], 2, [EBS], "csinode")
    state = h.state
    assert h.filter(ebs_one())[NODE].ok  # 1 attached + 1
    second = parse_pod(with_node(claims(f"csi-{EBS}-1")))
    state.add_pod(second)
    assert not h.filter(ebs_one())[NODE].ok  # 2 + 1 > 2
    assert h.filter(claims(f"csi-{EBS}-1"))[NODE].ok  # already attached: counts once
    state.remove_pod(second.key)
    assert h.filter(ebs_one())[NODE].ok
    # A pending claim counts as its own volume; once bound to an attached PV, it is that one.
    state.add_pod(parse_pod(with_node(pending())))
    assert not h.filter(ebs_one())[NODE].ok
    index.upsert(pvc("csi-4", cls=SC, volume=f"csi-{EBS}-3"))
    assert h.filter(ebs_one())[NODE].ok
    # The CSINode raising the limit is seen too.
    index.upsert(csinode([EBS], 1))
    assert not h.filter(ebs_one())[NODE].ok


def with_node(p: dict[str, Any]) -> dict[str, Any]:
    p["spec"]["nodeName"] = NODE
    return p


def test_vectorised_matches_one_node_at_a_time() -> None:
    """Many nodes with different limits and attached volumes: the array answer equals asking
    about each node alone (a fresh plugin per node)."""
    rng = np.random.default_rng(7)
    names = [f"n{i}" for i in range(30)]
    objects: list[dict[str, Any]] = [
        o for o in storage_objects([EBS]) if o["kind"] != "StorageClass"
    ]
    objects += storage_objects([EBS])[-1:]
    for name in names:
        c = csinode([EBS], int(rng.integers(0, 4)))
        c["metadata"]["name"] = name
        objects.append(c)
    pods = []
    for _ in range(60):
        picks = rng.choice(4, size=int(rng.integers(1, 3)), replace=False)
        p = claims(*(f"csi-{EBS}-{j}" for j in picks))
        p["spec"]["nodeName"] = names[int(rng.integers(0, len(names)))]
        pods.append(p)
    h, _ = harness("NodeVolumeLimits", [node(n) for n in names], objects, pods)
    new = claims(f"csi-{EBS}-0", "csi-4")
    together = {n: s.ok for n, s in h.filter(new).items()}
    for name in names:
        alone, _ = harness(
            "NodeVolumeLimits",
            [node(name)],
            objects,
            [p for p in pods if p["spec"]["nodeName"] == name],
        )
        assert alone.filter(new)[name].ok == together[name], name


@pytest.mark.parametrize(
    ("row", "prepared", "recounts_in_decision"),
    [("prepared", True, False), ("not prepared", False, True)],
)
def test_prepare_counts_the_attached_volumes_ahead_of_the_decision(
    row: str, prepared: bool, recounts_in_decision: bool, monkeypatch: Any
) -> None:
    from berth.plugins.nodevolumelimits import _Attached

    h, _ = build([running], [], 2, [EBS], "csinode")
    if prepared:
        h.plugin.prepare()
    recounts: list[int] = []
    recount = _Attached._recount

    def counted(self: _Attached, state: Any, volumes: Any, slot: int) -> None:
        recounts.append(slot)
        recount(self, state, volumes, slot)

    monkeypatch.setattr(_Attached, "_recount", counted)
    assert h.filter(ebs_one())[NODE].ok  # 1 attached + 1, counted either way
    assert bool(recounts) == recounts_in_decision
