"""Parsed devices share equal attributes and capacities, and never what only looks equal."""

from __future__ import annotations

from typing import Any

from berth.objects.dra import parse_resource_slice


def _slice(devices: list[dict[str, Any]], name: str = "s") -> dict[str, Any]:
    return {
        "kind": "ResourceSlice",
        "metadata": {"name": name, "uid": name, "resourceVersion": "1"},
        "spec": {
            "driver": "d.example.com",
            "nodeName": "n",
            "pool": {"name": "p", "generation": 1, "resourceSliceCount": 1},
            "devices": devices,
        },
    }


def _device(name: str, memory: str, **attrs: Any) -> dict[str, Any]:
    return {
        "name": name,
        "attributes": {k: {"string": v} for k, v in attrs.items()},
        "capacity": {"memory": {"value": memory}},
    }


def test_equal_devices_share_and_keep_every_field() -> None:
    raw = [_device("a", "1Gi", model="x", uuid="1"), _device("b", "1Gi", model="x", uuid="1")]
    a, b = parse_resource_slice(_slice(raw)).devices
    other = parse_resource_slice(_slice([_device("c", "1Gi", model="x", uuid="1")], "t"))
    c = other.devices[0]
    assert a.attributes is b.attributes is c.attributes  # one copy across slices too
    assert a.capacities is b.capacities and a.shape is b.shape
    assert a.attributes == {"model": ("string", "x"), "uuid": ("string", "1")}
    assert a.capacity == {"memory": 1 << 30}
    assert (a.name, b.name, c.name) == ("a", "b", "c")


def test_attributes_keep_their_published_order_and_differ_when_a_value_differs() -> None:
    a, b = parse_resource_slice(
        _slice([_device("a", "1", z="1", a="2"), _device("b", "1", z="1", a="3")])
    ).devices
    assert list(a.attributes) == ["z", "a"]
    assert a.attributes["a"] == ("string", "2") and b.attributes["a"] == ("string", "3")
    assert a.shape != b.shape
    assert a.shape[1] == (("a", ("string", "2")), ("z", ("string", "1")))  # the CEL key sorts


def test_equal_amounts_written_differently_keep_their_own_format() -> None:
    raw = [_device("a", "1Gi"), _device("b", "1073741824")]
    a, b = parse_resource_slice(_slice(raw)).devices
    assert a.capacity == b.capacity  # the same amount...
    assert str(a.capacities["memory"].value) == "1Gi"  # ...written back as each was published
    assert str(b.capacities["memory"].value) == "1073741824"
