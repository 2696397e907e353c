"""The embedded API server answers malformed objects as the real one does: a 4xx `Status`,
never a 500 or a dropped connection. Mutated real-shaped pods, nodes and storage objects are
POSTed and merge-patched; whatever the server accepts must read back as JSON."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from berth.cluster import EmbeddedCluster
from tests.fuzzing import JUNK, STORAGE, mutated, rich_node, rich_pod

OBJECTS = {
    "/api/v1/namespaces/default/pods": rich_pod(),
    "/api/v1/nodes": rich_node(),
    "/api/v1/persistentvolumes": STORAGE["PersistentVolume"],
    "/api/v1/namespaces/d/persistentvolumeclaims": STORAGE["PersistentVolumeClaim"],
    "/apis/storage.k8s.io/v1/storageclasses": STORAGE["StorageClass"],
}


@pytest.fixture(scope="module")
def server() -> Iterator[EmbeddedCluster]:
    with EmbeddedCluster(nodes=1, kubelet=False) as c:
        _call(c, "POST", "/api/v1/namespaces", {"metadata": {"name": "d"}})
        yield c


def _call(
    c: EmbeddedCluster, method: str, path: str, body: Any, ctype: str = ""
) -> tuple[int, Any]:
    request = urllib.request.Request(
        c.url + path,
        data=json.dumps(body).encode(),
        method=method,
        headers={"Content-Type": ctype or "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())


_seq = iter(range(10**9))


@settings(
    max_examples=250,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(st.sampled_from(sorted(OBJECTS)), st.data())
def test_a_mutated_object_gets_a_status_never_a_500(
    server: EmbeddedCluster, collection: str, data: st.DataObject
) -> None:
    raw = OBJECTS[collection]
    name = f"f{next(_seq)}"
    raw = {**raw, "metadata": {**raw["metadata"], "name": name}}
    # a unique name keeps the cases independent
    raw = mutated(data, raw, skip=lambda path: path[:2] == ("metadata", "name"))
    code, answer = _call(server, "POST", collection, raw)
    assert code < 500, answer
    if code >= 400:
        assert answer.get("kind") == "Status" and answer.get("status") == "Failure", answer
        assert answer.get("code") == code and answer.get("message")
        return
    assert code == 201
    created = answer["metadata"]["name"]
    patch = data.draw(
        st.dictionaries(st.sampled_from(["metadata", "spec", "status"]), JUNK, max_size=2)
    )
    code, answer = _call(
        server, "PATCH", f"{collection}/{created}", patch, "application/merge-patch+json"
    )
    assert code < 500, answer
    if code >= 400:
        assert answer.get("kind") == "Status" and answer.get("message"), answer
