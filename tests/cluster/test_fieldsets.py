"""Field sets, merge and server-side apply over the served schemas, in structured-merge-diff's
terms: table rows named for what they show (the same rows hold on kube-apiserver, checked by
tests/fidelity/test_api_fidelity.py)."""

from __future__ import annotations

from typing import Any

import pytest

from berth.cluster import fieldsets, managedfields
from berth.cluster.errors import ApiError

DEPLOYMENT = fieldsets.root("apps/v1", "Deployment")
POD = fieldsets.root("v1", "Pod")
assert DEPLOYMENT is not None and POD is not None


def dep(**spec: Any) -> dict[str, Any]:
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d"}, "spec": spec}


@pytest.mark.parametrize(
    ("name", "value", "want"),
    [
        ("scalar leaf", {"spec": {"replicas": 1}}, {("f:spec", "f:replicas")}),
        (
            "atomic map (LabelSelector) is one leaf",
            {"spec": {"selector": {"matchLabels": {"a": "b"}}}},
            {("f:spec", "f:selector")},
        ),
        (
            "map entries are members, the map is not",
            {"metadata": {"labels": {"a": "b"}}},
            {("f:metadata", "f:labels", "f:a")},
        ),
        (
            "list-map items by key, member with their fields",
            {"spec": {"template": {"spec": {"containers": [{"name": "c", "image": "i"}]}}}},
            {
                ("f:spec", "f:template", "f:spec", "f:containers", 'k:{"name":"c"}'),
                ("f:spec", "f:template", "f:spec", "f:containers", 'k:{"name":"c"}', "f:name"),
                ("f:spec", "f:template", "f:spec", "f:containers", 'k:{"name":"c"}', "f:image"),
            },
        ),
        ("empty struct is a member", {"spec": {"strategy": {}}}, {("f:spec", "f:strategy")}),
    ],
)
def test_fieldset(name: str, value: dict[str, Any], want: set[tuple[str, ...]]) -> None:
    assert fieldsets.fieldset(DEPLOYMENT, value) == want


def test_list_map_keys_take_schema_defaults() -> None:
    """a container port without protocol is keyed with protocol TCP (the schema's default)"""
    assert POD is not None
    t = POD.field("spec")
    assert t is not None
    containers = t.field("containers")
    assert containers is not None and containers.elem is not None
    ports = containers.elem.field("ports")
    assert ports is not None
    assert fieldsets.item_element(ports, {"containerPort": 80}, 0) == (
        'k:{"containerPort":80,"protocol":"TCP"}'
    )


def test_merge_keeps_live_order_and_replaces_atomics() -> None:
    live = {
        "spec": {
            "selector": {"matchLabels": {"a": "1", "b": "2"}},
            "template": {"spec": {"containers": [{"name": "x", "image": "1"}, {"name": "y"}]}},
        }
    }
    config = {
        "spec": {
            "selector": {"matchLabels": {"a": "1"}},
            "template": {"spec": {"containers": [{"name": "z"}, {"name": "x", "image": "2"}]}},
        }
    }
    merged = fieldsets.merge(DEPLOYMENT, live, config)
    assert merged["spec"]["selector"] == {"matchLabels": {"a": "1"}}
    assert merged["spec"]["template"]["spec"]["containers"] == [
        {"name": "x", "image": "2"},
        {"name": "y"},
        {"name": "z"},
    ]


def test_apply_conflict_force_and_prune() -> None:
    """two appliers: a change to another's field is a conflict naming it; forced, the field
    changes hands; a field its only owner stops applying is removed"""
    assert DEPLOYMENT is not None
    one = managedfields.apply(
        DEPLOYMENT,
        live=None,
        config=dep(replicas=1, paused=True),
        manager="one",
        api_version="apps/v1",
        stamp="t",
        force=False,
    )
    live = {**one, "metadata": {**one["metadata"], "uid": "u", "resourceVersion": "1"}}
    with pytest.raises(ApiError) as err:
        managedfields.apply(
            DEPLOYMENT,
            live=live,
            config=dep(replicas=3),
            manager="two",
            api_version="apps/v1",
            stamp="t",
            force=False,
        )
    assert err.value.code == 409
    assert err.value.message == 'Apply failed with 1 conflict: conflict with "one": .spec.replicas'
    forced = managedfields.apply(
        DEPLOYMENT,
        live=live,
        config=dep(replicas=3),
        manager="two",
        api_version="apps/v1",
        stamp="t",
        force=True,
    )
    owners = {e["manager"]: e["fieldsV1"] for e in forced["metadata"]["managedFields"]}
    assert owners["one"] == {"f:spec": {"f:paused": {}}}
    assert owners["two"] == {"f:spec": {"f:replicas": {}}}
    pruned = managedfields.apply(
        DEPLOYMENT,
        live=forced,
        config=dep(),
        manager="one",
        api_version="apps/v1",
        stamp="t",
        force=False,
    )
    assert pruned["spec"] == {"replicas": 3}  # paused went with its only owner's apply


def test_update_entry_of_a_create_matches_compare() -> None:
    """the one-walk create path and compare-from-nothing give the same field set"""
    assert DEPLOYMENT is not None
    body = {
        "metadata": {"labels": {"a": "b"}},
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": {"a": "b"}},
            "template": {"spec": {"containers": [{"name": "c", "image": "i", "resources": {}}]}},
        },
    }
    added, modified, removed = fieldsets.compare(DEPLOYMENT, fieldsets._MISSING, body)
    assert not modified and not removed
    assert fieldsets.encode(added - {()}) == fieldsets._sorted(fieldsets.created(DEPLOYMENT, body))
