"""VolumeRestrictions and VolumeZone, rows transcribed from upstream's volume_restrictions_test.go
and volume_zone_test.go (TestSingleZone, TestMultiZone, TestWithBinding)."""

from __future__ import annotations

from typing import Any

import pytest

from berth.framework.status import Code
from tests.builders import node
from tests.plugins.volume_builders import (
    harness,
    pod_with_claims,
    pod_with_volumes,
    pv,
    pvc,
    storage_class,
)

DISK = "node(s) had no available disk"
RWOP = (
    "node(s) unavailable due to PersistentVolumeClaim with ReadWriteOncePod access mode "
    "already in-use by another pod"
)
ZONE = "node(s) had no available volume zone"
BETA_ZONE = "failure-domain.beta.kubernetes.io/zone"
BETA_REGION = "failure-domain.beta.kubernetes.io/region"
GA_ZONE = "topology.kubernetes.io/zone"
GA_REGION = "topology.kubernetes.io/region"


def gce(pd: str, read_only: bool = False) -> dict[str, Any]:
    return {"name": "v", "gcePersistentDisk": {"pdName": pd, "readOnly": read_only}}


def aws(vol: str) -> dict[str, Any]:
    return {"name": "v", "awsElasticBlockStore": {"volumeID": vol}}


def rbd(monitors: list[str], image: str, read_only: bool = False) -> dict[str, Any]:
    src = {"monitors": monitors, "pool": "foo", "image": image, "readOnly": read_only}
    return {"name": "v", "rbd": src}


def iscsi(iqn: str, read_only: bool = False) -> dict[str, Any]:
    src = {"targetPortal": "127.0.0.1:3260", "iqn": iqn, "lun": 0, "readOnly": read_only}
    return {"name": "v", "iscsi": src}


# --- VolumeRestrictions: TestGCEDiskConflicts, TestAWSDiskConflicts, TestRBDDiskConflicts,
# TestISCSIDiskConflicts --------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("name", "existing", "wanted", "fits"),
    [
        ("gce: nothing", None, gce("foo"), True),
        ("gce: one state", gce("foo"), gce("foo"), False),
        ("gce: other disk", gce("foo"), gce("bar"), True),
        ("gce: both read-only", gce("foo", True), gce("foo", True), True),
        ("gce: one read-write", gce("foo", True), gce("foo"), False),
        ("aws: same volume", aws("foo"), aws("foo"), False),
        ("aws: other volume", aws("foo"), aws("bar"), True),
        ("rbd: same image, monitors overlap", rbd(["a", "b"], "i"), rbd(["b", "c"], "i"), False),
        ("rbd: disjoint monitors", rbd(["a", "b"], "i"), rbd(["c", "d"], "i"), True),
        ("rbd: other image", rbd(["a"], "i"), rbd(["a"], "j"), True),
        ("rbd: both read-only", rbd(["a"], "i", True), rbd(["a"], "i", True), True),
        ("iscsi: same iqn", iscsi("iqn.2016-12.server:storage.target01"),
         iscsi("iqn.2016-12.server:storage.target01"), False),
        ("iscsi: other iqn", iscsi("iqn.2016-12.server:storage.target01"),
         iscsi("iqn.2017-12.server:storage.target01"), True),
        ("iscsi: both read-only", iscsi("iqn.a", True), iscsi("iqn.a", True), True),
    ],
)  # fmt: skip
def test_disk_conflicts(
    name: str, existing: dict[str, Any] | None, wanted: dict[str, Any], fits: bool
) -> None:
    pods = [pod_with_volumes(existing, node_name="n1")] if existing else []
    h, _ = harness("VolumeRestrictions", [node("n1"), node("n2")], pods=pods)
    status = h.filter(pod_with_volumes(wanted))
    assert status["n2"].ok, name
    assert status["n1"].ok is fits, name
    if not fits:
        assert status["n1"].code == Code.UNSCHEDULABLE
        assert status["n1"].reasons == (DISK,)


# --- VolumeRestrictions: TestAccessModeConflicts -------------------------------------------------
RWOP_OBJECTS = [
    pvc("claim-with-rwop-1", modes=("ReadWriteOncePod",), volume="v1"),
    pvc("claim-with-rwop-2", modes=("ReadWriteOncePod",), volume="v2"),
    pvc("claim-rwo", volume="v3"),
]


@pytest.mark.parametrize(
    ("name", "existing", "wanted", "code", "reason"),
    [
        ("nothing uses the claim", [], ["claim-with-rwop-1"], None, ""),
        (
            "another pod uses the RWOP claim",
            ["claim-with-rwop-1"],
            ["claim-with-rwop-1"],
            Code.UNSCHEDULABLE,
            RWOP,
        ),
        ("another RWOP claim in use", ["claim-with-rwop-2"], ["claim-with-rwop-1"], None, ""),
        ("RWO claims may be shared", ["claim-rwo"], ["claim-rwo"], None, ""),
        (
            "claim does not exist",
            [],
            ["claim-missing"],
            Code.UNSCHEDULABLE_AND_UNRESOLVABLE,
            'persistentvolumeclaim "claim-missing" not found',
        ),
    ],
)
def test_read_write_once_pod(
    name: str, existing: list[str], wanted: list[str], code: Code | None, reason: str
) -> None:
    pods = [pod_with_claims(*existing, node_name="n1")] if existing else []
    h, _ = harness("VolumeRestrictions", [node("n1"), node("n2")], RWOP_OBJECTS, pods)
    statuses = h.filter(pod_with_claims(*wanted))
    for n in ("n1", "n2"):  # not a property of a node: every node says the same
        if code is None:
            assert statuses[n].ok, name
        else:
            assert (statuses[n].code, statuses[n].reasons) == (code, (reason,)), name


def test_restrictions_skip_pods_without_volumes() -> None:
    from berth.framework.plugin import CycleState
    from tests.builders import parsed, pod

    h, _ = harness("VolumeRestrictions", [node("n1")], RWOP_OBJECTS)
    plugin: Any = h.plugin
    assert plugin.pre_filter(CycleState(), parsed(pod()))[1].is_skip
    # a RWO claim nobody else uses: nothing to check either
    assert plugin.pre_filter(CycleState(), parsed(pod_with_claims("claim-rwo")))[1].is_skip


# --- VolumeZone: TestSingleZone / TestMultiZone --------------------------------------------------
ZONE_OBJECTS = [
    pv("Vol_1", labels={BETA_ZONE: "us-west1-a"}),
    pv("Vol_2", labels={BETA_REGION: "us-west1", "uselessLabel": "none"}),
    pv("Vol_3", labels={BETA_ZONE: "us-west1-c__us-west1-a"}),
    pv("Vol_Stable_1", labels={GA_ZONE: "us-west1-a"}),
    pv("Vol_Stable_2", labels={GA_REGION: "us-west1", "uselessLabel": "none"}),
    pv("Vol_Stable_3", labels={GA_ZONE: "us-west1-a", GA_REGION: "us-west1-a"}),
    pv("Vol_Stable_4", labels={GA_ZONE: "us-west1-c__us-west1-a"}),
    pvc("PVC_1", volume="Vol_1"),
    pvc("PVC_2", volume="Vol_2"),
    pvc("PVC_3", volume="Vol_3"),
    pvc("PVC_4", volume="Vol_not_exist"),
    pvc("PVC_Stable_1", volume="Vol_Stable_1"),
    pvc("PVC_Stable_2", volume="Vol_Stable_2"),
    pvc("PVC_Stable_3", volume="Vol_Stable_3"),
    pvc("PVC_Stable_4", volume="Vol_Stable_4"),
    pvc("PVC_EmptySC"),
    pvc("PVC_NoSC", cls="Class_0"),
    pvc("PVC_WaitSC", cls="Class_Wait"),
    pvc("PVC_ImmediateSC", cls="Class_Immediate"),
    pvc("PVC_UnsetSC", cls="Class_Unset"),
    storage_class("Class_Wait"),
    storage_class("Class_Immediate", mode="Immediate"),
    storage_class("Class_Unset", mode=None),
]


@pytest.mark.parametrize(
    ("name", "claim", "labels", "fits"),
    [
        ("node without labels", "PVC_1", {}, True),
        ("beta zone label matched", "PVC_1", {BETA_ZONE: "us-west1-a", "useless": "none"}, True),
        ("beta region label matched", "PVC_2", {BETA_REGION: "us-west1"}, True),
        ("beta region label doesn't match", "PVC_2", {BETA_REGION: "no_us-west1"}, False),
        ("beta zone label doesn't match", "PVC_1", {BETA_ZONE: "no_us-west1-a"}, False),
        ("zone label matched", "PVC_Stable_1", {GA_ZONE: "us-west1-a"}, True),
        ("region label matched", "PVC_Stable_2", {GA_REGION: "us-west1"}, True),
        ("region label doesn't match", "PVC_Stable_2", {GA_REGION: "no_us-west1"}, False),
        ("zone label doesn't match", "PVC_Stable_1", {GA_ZONE: "no_us-west1-a"}, False),
        ("pv with zone and region, node with only zone", "PVC_Stable_3",
         {GA_ZONE: "us-west1-a"}, False),
        ("pv with zone, node with beta zone", "PVC_Stable_1", {BETA_ZONE: "us-west1-a"}, False),
        ("pv with beta label, node with ga label, matched", "PVC_1", {GA_ZONE: "us-west1-a"}, True),
        ("pv with beta label, node with ga label, don't match", "PVC_1",
         {GA_ZONE: "us-west1-b"}, False),
        ("multi zone: beta zone label matched", "PVC_3", {BETA_ZONE: "us-west1-a"}, True),
        ("multi zone: zone label matched", "PVC_Stable_4", {GA_ZONE: "us-west1-a"}, True),
        ("multi zone: zone label doesn't match", "PVC_Stable_4", {GA_ZONE: "us-west1-b"}, False),
        ("label zone failure domain matched (WFFC class left to VolumeBinding)", "PVC_WaitSC",
         {BETA_ZONE: "us-west1-a"}, True),
    ],
)  # fmt: skip
def test_volume_zone(name: str, claim: str, labels: dict[str, str], fits: bool) -> None:
    h, _ = harness("VolumeZone", [node("host1", labels=labels), node("other")], ZONE_OBJECTS)
    statuses = h.filter(pod_with_claims(claim))
    assert statuses["other"].ok  # no topology labels: anything goes
    assert statuses["host1"].ok is fits, name
    if not fits:
        assert statuses["host1"].code == Code.UNSCHEDULABLE_AND_UNRESOLVABLE
        assert statuses["host1"].reasons == (ZONE,)


@pytest.mark.parametrize(
    ("claim", "reason"),
    [
        ("PVC_EmptySC", "PersistentVolumeClaim had no pv name and storageClass name"),
        ("PVC_NoSC", 'storageclass.storage.k8s.io "Class_0" not found'),
        ("PVC_ImmediateSC", "PersistentVolume had no name"),
        ("PVC_UnsetSC", 'VolumeBindingMode not set for StorageClass "Class_Unset"'),
        ("PVC_4", 'persistentvolume "Vol_not_exist" not found'),
        ("PVC_missing", 'persistentvolumeclaim "PVC_missing" not found'),
    ],
)
def test_volume_zone_prefilter_errors(claim: str, reason: str) -> None:
    h, _ = harness("VolumeZone", [node("host1", labels={BETA_ZONE: "us-west1-a"})], ZONE_OBJECTS)
    status = h.filter(pod_with_claims(claim))["host1"]
    assert (status.code, status.reasons) == (Code.UNSCHEDULABLE_AND_UNRESOLVABLE, (reason,))
