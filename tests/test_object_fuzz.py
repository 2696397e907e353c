"""Malformed objects are reported, never crash: parse_pod / parse_node on mutated real-shaped
objects either parse or raise ObjectError (what `berth run` turns into a FailedScheduling event
and `berth simulate` into an error line) — never TypeError, KeyError, AttributeError..."""

from __future__ import annotations

import copy
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from berth.objects import ObjectError, parse_node, parse_pod
from tests.builders import node, pod

JUNK = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=8),
    st.sampled_from(["", "1", "-1", "1e400", "100m", "1.5Gi", "Exists", "In", "NoSchedule", "x/y"]),
    st.lists(st.none(), max_size=2),
    st.dictionaries(st.text(max_size=3), st.none(), max_size=2),
)


def _rich_pod() -> dict[str, Any]:
    raw = pod("p", cpu="500m", memory="1Gi", labels={"app": "web"})
    raw["spec"].update(
        {
            "nodeSelector": {"zone": "a"},
            "tolerations": [
                {"key": "k", "operator": "Equal", "value": "v", "effect": "NoSchedule"}
            ],
            "priority": 10,
            "overhead": {"cpu": "10m"},
            "initContainers": [
                {"name": "i", "image": "x", "resources": {"requests": {"cpu": "1"}}}
            ],
            "affinity": {
                "nodeAffinity": {
                    "requiredDuringSchedulingIgnoredDuringExecution": {
                        "nodeSelectorTerms": [
                            {
                                "matchExpressions": [
                                    {"key": "zone", "operator": "In", "values": ["a"]}
                                ]
                            }
                        ]
                    },
                    "preferredDuringSchedulingIgnoredDuringExecution": [
                        {
                            "weight": 5,
                            "preference": {
                                "matchExpressions": [{"key": "d", "operator": "Exists"}]
                            },
                        }
                    ],
                },
                "podAntiAffinity": {
                    "requiredDuringSchedulingIgnoredDuringExecution": [
                        {
                            "labelSelector": {"matchLabels": {"app": "web"}},
                            "topologyKey": "kubernetes.io/hostname",
                            "namespaceSelector": {},
                        }
                    ]
                },
            },
            "topologySpreadConstraints": [
                {
                    "maxSkew": 1,
                    "topologyKey": "zone",
                    "whenUnsatisfiable": "DoNotSchedule",
                    "labelSelector": {"matchExpressions": [{"key": "app", "operator": "Exists"}]},
                    "matchLabelKeys": ["app"],
                }
            ],
            "schedulingGates": [{"name": "g"}],
            "volumes": [{"name": "v", "persistentVolumeClaim": {"claimName": "c"}}],
        }
    )
    raw["spec"]["containers"][0]["ports"] = [{"containerPort": 80, "hostPort": 8080}]
    raw["status"] = {"phase": "Pending", "nominatedNodeName": "n", "conditions": []}
    return raw


def _rich_node() -> dict[str, Any]:
    raw = node(
        "n",
        labels={"zone": "a"},
        taints=[{"key": "k", "value": "v", "effect": "NoSchedule"}],
        images=[(["busybox:1"], 1000)],
        extra={"example.com/gpu": "2"},
    )
    return raw


def _paths(obj: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix]
    if isinstance(obj, dict):
        for k, v in obj.items():
            out.extend(_paths(v, (*prefix, k)))
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            out.extend(_paths(v, (*prefix, i)))
    return out


def _mutate(raw: dict[str, Any], path: tuple[Any, ...], value: Any) -> dict[str, Any]:
    out = copy.deepcopy(raw)
    if not path:
        return value if isinstance(value, dict) else out
    target = out
    for step in path[:-1]:
        target = target[step]
    target[path[-1]] = value
    return out


POD, NODE = _rich_pod(), _rich_node()
POD_PATHS, NODE_PATHS = _paths(POD), _paths(NODE)


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_a_mutated_pod_parses_or_raises_object_error(data: st.DataObject) -> None:
    raw = POD
    for _ in range(data.draw(st.integers(1, 3))):
        path = data.draw(st.sampled_from(POD_PATHS))
        try:
            raw = _mutate(raw, path, data.draw(JUNK))
        except (KeyError, IndexError, TypeError):
            break  # the path no longer exists after an earlier mutation
    try:
        parse_pod(raw)
    except ObjectError as exc:
        assert exc.field is not None and exc.reason


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_a_mutated_node_parses_or_raises_object_error(data: st.DataObject) -> None:
    raw = NODE
    for _ in range(data.draw(st.integers(1, 3))):
        path = data.draw(st.sampled_from(NODE_PATHS))
        try:
            raw = _mutate(raw, path, data.draw(JUNK))
        except (KeyError, IndexError, TypeError):
            break
    try:
        parse_node(raw)
    except ObjectError as exc:
        assert exc.field is not None and exc.reason


STORAGE = {
    "PersistentVolume": {
        "apiVersion": "v1",
        "kind": "PersistentVolume",
        "metadata": {"name": "pv", "labels": {"a": "b"}, "annotations": {"x": "y"}},
        "spec": {
            "capacity": {"storage": "10Gi"},
            "accessModes": ["ReadWriteOnce"],
            "storageClassName": "local",
            "claimRef": {"namespace": "d", "name": "c", "uid": "u"},
            "csi": {"driver": "ebs.csi.aws.com", "volumeHandle": "vol-1"},
            "nodeAffinity": {
                "required": {
                    "nodeSelectorTerms": [
                        {"matchExpressions": [{"key": "h", "operator": "In", "values": ["n"]}]}
                    ]
                }
            },
        },
        "status": {"phase": "Bound"},
    },
    "PersistentVolumeClaim": {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": {
            "name": "c",
            "namespace": "d",
            "annotations": {"a": "b"},
            "ownerReferences": [{"controller": True, "uid": "u"}],
        },
        "spec": {
            "accessModes": ["ReadWriteOnce"],
            "resources": {"requests": {"storage": "1Gi"}},
            "storageClassName": "local",
            "selector": {"matchLabels": {"a": "b"}},
            "volumeName": "pv",
        },
        "status": {"phase": "Bound"},
    },
    "StorageClass": {
        "apiVersion": "storage.k8s.io/v1",
        "kind": "StorageClass",
        "metadata": {"name": "local"},
        "provisioner": "ebs.csi.aws.com",
        "volumeBindingMode": "WaitForFirstConsumer",
        "allowedTopologies": [{"matchLabelExpressions": [{"key": "zone", "values": ["a", "b"]}]}],
    },
    "CSINode": {
        "apiVersion": "storage.k8s.io/v1",
        "kind": "CSINode",
        "metadata": {"name": "n"},
        "spec": {"drivers": [{"name": "ebs.csi.aws.com", "allocatable": {"count": 25}}]},
    },
}


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(sorted(STORAGE)), st.data())
def test_a_mutated_storage_object_is_ignored_with_a_warning_not_a_crash(
    kind: str, data: st.DataObject
) -> None:
    """The informers and `berth simulate` feed storage objects to VolumeIndex.upsert, which
    logs and drops what it cannot parse; a malformed object must never raise out of it."""
    from berth.state.volumes import VolumeIndex

    raw = STORAGE[kind]
    paths = _paths(raw)
    for _ in range(data.draw(st.integers(1, 3))):
        try:
            raw = _mutate(raw, data.draw(st.sampled_from(paths)), data.draw(JUNK))
        except (KeyError, IndexError, TypeError):
            break
    if isinstance(raw, dict):
        raw = {**raw, "kind": kind}  # the kind is how upsert picks the parser
    VolumeIndex().upsert(raw)
