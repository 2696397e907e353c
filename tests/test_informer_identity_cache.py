"""Informers that keep only identities (Nodes, ResourceSlices): the feed still sees every field
it reads, updates and deletions still reach the state, and the raw JSON is not held."""

from __future__ import annotations

import asyncio
import copy
import json
from collections.abc import AsyncIterator
from typing import Any
from unittest.mock import MagicMock

from berth.bench.dra import DRASpec, cluster_objects
from berth.config import parse_config
from berth.engine import Engine
from berth.feed import Feed
from berth.kube.informer import Informer
from berth.kube.listers import LISTERS
from tests.builders import node

JSON = dict[str, Any]


class _Response:
    def __init__(self, body: bytes, *, lines: bool = False) -> None:
        self.status = 200
        self._body = body
        self._lines = lines

    async def read(self) -> bytes:
        return self._body

    @property
    def content(self) -> _Response:
        return self

    async def iter_any(self) -> AsyncIterator[bytes]:
        yield self._body

    def release(self) -> None:
        pass


def _informer(kind: str, listed: list[JSON], events: list[JSON], handler: Any) -> Informer:
    """An informer of `kind` built as `berth run` builds it, on a list and one watch stream."""

    async def call(**kwargs: Any) -> _Response:
        if kwargs.get("watch"):
            return _Response(b"".join(json.dumps(e).encode() + b"\n" for e in events))
        body = {"kind": f"{kind}List", "metadata": {"resourceVersion": "10"}, "items": listed}
        return _Response(json.dumps(body).encode())

    return Informer(
        name=LISTERS[kind].name, call=call, handler=handler, cache_raw=LISTERS[kind].cache_raw
    )


def _run(informer: Informer) -> None:
    async def main() -> None:
        await informer._list()
        await informer._watch()

    asyncio.run(main())


def _with_rv(obj: JSON, rv: int) -> JSON:
    out = copy.deepcopy(obj)
    out["metadata"]["resourceVersion"] = str(rv)
    out["metadata"].setdefault("uid", f"uid-{out['metadata']['name']}")
    return out


def test_the_run_fronts_node_and_slice_informers_keep_identities_only() -> None:
    assert not LISTERS["Node"].cache_raw
    assert not LISTERS["ResourceSlice"].cache_raw
    # kinds whose queueing hints or writers read the old raw object keep it
    for kind in ("Pod", "ResourceClaim", "PersistentVolumeClaim", "PersistentVolume"):
        assert LISTERS[kind].cache_raw, kind


def test_node_updates_and_deletions_reach_the_state_from_an_identity_cache() -> None:
    engine = Engine(config=parse_config({}), seed=1)
    feed = Feed(state=engine.state, ports=engine.ports, responsible=lambda _: True)
    a, b = _with_rv(node("a", cpu="4"), 1), _with_rv(node("b", cpu="4"), 2)
    grown = _with_rv(node("a", cpu="8", labels={"zone": "z1"}), 11)
    events = [
        {"type": "MODIFIED", "object": grown},
        {"type": "DELETED", "object": _with_rv(b, 12)},
    ]
    informer = _informer("Node", [a, b], events, feed.handler("Node"))
    _run(informer)
    state = engine.state
    assert state.num_nodes == 1
    info = state.nodes[state.index["a"]]
    assert info.labels["zone"] == "z1"  # the update was parsed whole, from the new object
    assert informer.cache == {
        "a": {
            "kind": "Node",
            "apiVersion": "v1",
            "metadata": {"name": "a", "uid": "uid-a", "resourceVersion": "11"},
        }
    }


def test_slices_through_an_identity_cache_keep_every_field_the_allocator_reads() -> None:
    engine = Engine(config=parse_config({}), seed=1)
    feed = Feed(state=engine.state, ports=engine.ports, responsible=lambda _: True)
    nodes = [node(f"n{i}") for i in range(3)]
    objs = cluster_objects(DRASpec(devices_per_node=2), nodes, init_claims=0, namespace="ns")
    slices = [_with_rv(o, 1 + i) for i, o in enumerate(objs) if o["kind"] == "ResourceSlice"]
    for o in slices:
        del o["kind"]  # a list's items name no kind: the informer fills it in
    tainted = _with_rv(slices[0], 20)
    tainted["kind"] = "ResourceSlice"
    device = tainted["spec"]["devices"][0]
    device["taints"] = [{"key": "k", "value": "v", "effect": "NoSchedule"}]
    device["capacity"]["memory"] = {"value": "1Gi"}
    events = [
        {"type": "MODIFIED", "object": tainted},
        {"type": "DELETED", "object": {**_with_rv(slices[2], 21), "kind": "ResourceSlice"}},
    ]
    informer = _informer("ResourceSlice", slices, events, feed.handler("ResourceSlice"))
    _run(informer)
    index = engine.ports.dra
    assert sorted(index.slices) == ["n0-test-driver.cdi.k8s.io", "n1-test-driver.cdi.k8s.io"]
    assert sorted(index.slices_on_node) == ["n0", "n1"]
    first = index.slices["n0-test-driver.cdi.k8s.io"]
    assert (first.driver, first.pool, first.node_name, first.generation, first.slice_count) == (
        "test-driver.cdi.k8s.io",
        "n0",
        "n0",
        1,
        1,
    )
    d0, d1 = first.devices
    assert [t.key for t in d0.taints] == ["k"]
    assert d0.capacity["memory"] == 1 << 30 and d1.capacity["memory"] == 24480 << 20
    raw1 = slices[1]["spec"]["devices"][1]
    assert first.devices[1].attributes == {
        k: next((kind, v) for kind, v in value.items()) for k, value in raw1["attributes"].items()
    }
    assert all(set(o) == {"kind", "apiVersion", "metadata"} for o in informer.cache.values())
    assert set(informer.cache) == {"n0-test-driver.cdi.k8s.io", "n1-test-driver.cdi.k8s.io"}


def test_a_relist_deletes_what_vanished_from_an_identity_cache() -> None:
    engine = Engine(config=parse_config({}), seed=1)
    feed = Feed(state=engine.state, ports=engine.ports, responsible=lambda _: True)
    a, b = _with_rv(node("a"), 1), _with_rv(node("b"), 2)
    informer = _informer("Node", [a, b], [], feed.handler("Node"))
    _run(informer)
    assert engine.state.num_nodes == 2
    relisted = _informer("Node", [_with_rv(node("a", labels={"x": "y"}), 5)], [], None)
    informer._call = relisted._call  # the same informer lists again: b is gone, a changed
    asyncio.run(informer._list())
    assert engine.state.num_nodes == 1
    assert engine.state.nodes[engine.state.index["a"]].labels["x"] == "y"
    assert list(informer.cache) == ["a"] and informer.resource_version == "10"


class _Seen:
    def __init__(self) -> None:
        self.objects: list[JSON] = []

    def on_add(self, obj: JSON) -> None:
        self.objects.append(obj)

    def on_update(self, old: JSON, new: JSON) -> None:
        self.objects.append(new)

    def on_delete(self, obj: JSON) -> None:
        self.objects.append(obj)


def test_the_fronts_informers_drop_managed_fields_and_keep_the_rest() -> None:
    from berth.kube.listers import build_informers

    managed = [{"manager": "kubectl", "operation": "Update", "fieldsV1": {"f:spec": {}}}]
    pod = {
        "metadata": {"name": "p", "namespace": "ns", "resourceVersion": "1"},
        "spec": {"containers": [{"name": "c", "image": "i"}]},
    }
    listed = copy.deepcopy(pod)
    listed["metadata"]["managedFields"] = managed
    bound = copy.deepcopy(listed)
    bound["metadata"]["resourceVersion"] = "11"
    bound["spec"]["nodeName"] = "n"
    for kind in ("Pod", "ResourceSlice"):  # one keeping raw objects, one keeping identities
        (informer,) = build_informers(MagicMock(request_timeout=1.0), [kind], lambda _: _Seen())
        seen = informer._handler
        assert isinstance(seen, _Seen)
        events = [{"type": "MODIFIED", "object": bound}]
        informer._call = _informer(kind, [listed], events, None)._call  # the fake server
        _run(informer)
        assert [o["metadata"] for o in seen.objects] == [
            {"name": "p", "namespace": "ns", "resourceVersion": "1"},
            {"name": "p", "namespace": "ns", "resourceVersion": "11"},
        ]
        assert seen.objects[1]["spec"] == {**pod["spec"], "nodeName": "n"}
