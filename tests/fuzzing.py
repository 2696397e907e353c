"""Shared pieces of the fuzz tests: junk values, real-shaped objects, and their mutation."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

from hypothesis import strategies as st

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


def rich_pod() -> dict[str, Any]:
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


def rich_node() -> dict[str, Any]:
    raw = node(
        "n",
        labels={"zone": "a"},
        taints=[{"key": "k", "value": "v", "effect": "NoSchedule"}],
        images=[(["busybox:1"], 1000)],
        extra={"example.com/gpu": "2"},
    )
    return raw


def paths(obj: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix]
    if isinstance(obj, dict):
        for k, v in obj.items():
            out.extend(paths(v, (*prefix, k)))
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            out.extend(paths(v, (*prefix, i)))
    return out


def mutate(raw: dict[str, Any], path: tuple[Any, ...], value: Any) -> dict[str, Any]:
    out = copy.deepcopy(raw)
    if not path:
        return value if isinstance(value, dict) else out
    target = out
    for step in path[:-1]:
        target = target[step]
    target[path[-1]] = value
    return out


def mutated(
    data: st.DataObject,
    base: Any,
    *,
    skip: Callable[[tuple[Any, ...]], bool] | None = None,
) -> Any:
    """`base` with one to three values, at paths drawn from its own, replaced by junk; a path
    that an earlier replacement removed ends the mutation, a path `skip` names is left alone."""
    raw = base
    where = paths(base)
    for _ in range(data.draw(st.integers(1, 3))):
        path = data.draw(st.sampled_from(where))
        if skip is not None and skip(path):
            continue
        try:
            raw = mutate(raw, path, data.draw(JUNK))
        except (KeyError, IndexError, TypeError):
            break  # the path no longer exists after an earlier mutation
    return raw


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
