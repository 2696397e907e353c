"""Requests that poisoned or bloated the embedded cluster: a body nested past what can be
encoded (stored anyway, then every read of the resource failed), a small JSON patch that copies
itself into hundreds of MiB, objects over the stored-object limit. Each is refused whole: no
object, no event, no resourceVersion used, and the resource stays readable."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from berth.cluster import EmbeddedCluster

from .conftest import call, kubectl, needs_kubectl, pod

pytestmark = pytest.mark.timeout(120)


def nested(depth: int) -> Any:
    value: Any = "leaf"
    for _ in range(depth - 1):
        value = {"n": value}
    return value


def list_rv(c: EmbeddedCluster, path: str) -> str:
    code, body = call(c.url + path)
    assert code == 200, body
    return str(body["metadata"]["resourceVersion"])


@needs_kubectl
def test_a_too_deep_create_is_refused_whole_and_the_resource_stays_readable(
    tmp_path: Path,
) -> None:
    with EmbeddedCluster(nodes=1) as c:
        path = "/api/v1/namespaces/default/configmaps"
        before = list_rv(c, path)
        for depth in (260, 900):  # past orjson's 255 levels; past Python's recursion limit
            body = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": f"d{depth}"}}
            body["extra"] = nested(depth)
            code, status = call(c.url + path, method="POST", body=body)
            assert code == 400, status
            assert "nests deeper than 100 levels" in status["message"]
        # Nothing was stored and no resourceVersion was used.
        assert list_rv(c, path) == before
        assert call(c.url + path + "/d260")[0] == 404
        # kubectl, as a user would: the refusal is one clear line, and reads still work.
        manifest = tmp_path / "deep.json"
        doc = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "k"}}
        doc["extra"] = nested(150)
        manifest.write_text(json.dumps(doc))
        created = kubectl(c.kubeconfig_path, "create", "-f", str(manifest), "--validate=false")
        assert created.returncode != 0 and "nests deeper than" in created.stderr
        listed = kubectl(c.kubeconfig_path, "get", "configmaps", "-o", "name")
        assert listed.returncode == 0, listed.stderr
        watched = call(c.url + path + "?watch=true&timeoutSeconds=1")
        assert watched[0] == 200


def test_a_poisoned_row_in_the_data_directory_is_skipped_not_fatal(tmp_path: Path) -> None:
    """A store written by an older version may hold such an object: the cluster starts, skips
    it (naming it in the log) and serves the rest."""
    with EmbeddedCluster(nodes=1, data_dir=tmp_path) as c:
        code, _ = call(
            c.url + "/api/v1/namespaces/default/configmaps",
            method="POST",
            body={"metadata": {"name": "good"}, "data": {"a": "b"}},
        )
        assert code == 201
    import sqlite3

    db = sqlite3.connect(tmp_path / "berth-cluster.sqlite3")
    bad = {"apiVersion": "v1", "kind": "ConfigMap", "extra": nested(300)}
    bad["metadata"] = {"name": "bad", "namespace": "default", "resourceVersion": "5"}
    with db:
        db.execute(
            "INSERT INTO objects VALUES ('configmaps', 'default', 'bad', ?)",
            (json.dumps(bad).encode(),),
        )
    db.close()
    with EmbeddedCluster(nodes=1, data_dir=tmp_path) as c:
        code, body = call(c.url + "/api/v1/namespaces/default/configmaps")
        assert code == 200, body
        assert [i["metadata"]["name"] for i in body["items"]] == ["good"]


def _with_args(body: dict[str, Any], args: list[str]) -> dict[str, Any]:
    """A pod whose container has `args` (a declared list field: an undeclared one is dropped)."""
    spec = body["spec"]
    containers = [{**spec["containers"][0], "args": args}, *spec["containers"][1:]]
    return {**body, "spec": {**spec, "containers": containers}}


def _annotated(body: dict[str, Any], size: int) -> dict[str, Any]:
    """A pod carrying `size` bytes in an annotation (a declared field, so it is stored)."""
    meta = {**body["metadata"], "annotations": {"payload": "y" * size}}
    return {**body, "metadata": meta}


def _pod_with_payload(c: EmbeddedCluster, name: str) -> str:
    code, body = call(
        c.url + "/api/v1/namespaces/default/pods",
        method="POST",
        body=_with_args(pod(name), ["x" * 1024]),
    )
    assert code == 201, body
    return c.url + f"/api/v1/namespaces/default/pods/{name}"


def test_a_self_copying_json_patch_cannot_build_a_huge_object() -> None:
    with EmbeddedCluster(nodes=1) as c:
        url = _pod_with_payload(c, "bomb")
        before = call(url)[1]["metadata"]["resourceVersion"]
        # 16 copies of the array into itself: 1 KiB doubles to 64 MiB from a 1.4 KB patch.
        args = "/spec/containers/0/args"
        ops = [{"op": "copy", "from": args, "path": f"{args}/-"} for _ in range(16)]
        assert len(json.dumps(ops)) < 1500
        code, status = call(
            url, method="PATCH", body=ops, content_type="application/json-patch+json"
        )
        assert code == 422, str(status)[:300]
        assert "accumulated size increase of copy" in status["message"]
        after = call(url)[1]
        assert after["metadata"]["resourceVersion"] == before
        assert len(after["spec"]["containers"][0]["args"]) == 1
        # More operations than upstream allows in one patch: 413.
        many = [{"op": "test", "path": "/kind", "value": "Pod"}] * 10_001
        code, status = call(
            url, method="PATCH", body=many, content_type="application/json-patch+json"
        )
        assert code == 413 and "maximum operations in a JSON patch is 10000" in status["message"]


def test_an_object_over_the_stored_object_limit_is_refused_and_nothing_changes() -> None:
    with EmbeddedCluster(nodes=1) as c:
        url = _pod_with_payload(c, "fat")
        before = call(url)[1]
        # 2 MiB in one merge patch: within the 3 MiB body limit, over the 1.5 MiB object limit.
        code, status = call(
            url,
            method="PATCH",
            body={"metadata": {"annotations": {"payload": "y" * (2 << 20)}}},
            content_type="application/merge-patch+json",
        )
        assert code == 500 and status["message"].startswith("etcdserver: request is too large")
        assert call(url)[1] == before
        # The same through create: refused, and no resourceVersion used.
        rv = list_rv(c, "/api/v1/namespaces/default/pods")
        code, status = call(
            c.url + "/api/v1/namespaces/default/pods",
            method="POST",
            body=_annotated(pod("fat2"), 2 << 20),
        )
        assert code == 500 and "request is too large" in status["message"]
        assert list_rv(c, "/api/v1/namespaces/default/pods") == rv
        assert call(c.url + "/api/v1/namespaces/default/pods/fat2")[0] == 404


def test_the_object_limit_is_settable() -> None:
    with EmbeddedCluster(nodes=1, max_object_bytes=4 << 20, max_body_bytes=4 << 20) as c:
        code, _ = call(
            c.url + "/api/v1/namespaces/default/pods",
            method="POST",
            body=_annotated(pod("big"), 2 << 20),
        )
        assert code == 201
