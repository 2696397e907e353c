"""State across restarts with a data directory, and TLS with bearer-token authentication."""

from __future__ import annotations

import json
import ssl
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from kubernetes import client

from berth.cluster import EmbeddedCluster

from .conftest import api_client, pod_body


def test_state_survives_restart(tmp_path: Path) -> None:
    with EmbeddedCluster(nodes=2, data_dir=tmp_path) as c:
        v1 = client.CoreV1Api(api_client(c))
        v1.create_namespaced_pod("default", pod_body("keep"))
        v1.create_namespaced_config_map("default", {"metadata": {"name": "gone"}})
        v1.delete_namespaced_config_map("gone", "default")
        v1.patch_node("node-002", {"spec": {"unschedulable": True}})
        last_rv = int(v1.list_namespaced_pod("default").metadata.resource_version)
    with EmbeddedCluster(nodes=5, data_dir=tmp_path) as c:
        v1 = client.CoreV1Api(api_client(c))
        assert [p.metadata.name for p in v1.list_namespaced_pod("default").items] == ["keep"]
        assert v1.list_namespaced_config_map("default").items == []
        nodes = v1.list_node().items
        assert [n.metadata.name for n in nodes] == ["node-001", "node-002"]  # not regenerated
        assert nodes[1].spec.unschedulable is True
        created = v1.create_namespaced_config_map("default", {"metadata": {"name": "new"}})
        assert int(created.metadata.resource_version) > last_rv


def test_in_memory_without_data_dir() -> None:
    with EmbeddedCluster(nodes=1) as c:
        client.CoreV1Api(api_client(c)).create_namespaced_pod("default", pod_body("tmp"))
    with EmbeddedCluster(nodes=1) as c:
        assert client.CoreV1Api(api_client(c)).list_namespaced_pod("default").items == []


def test_tls_and_bearer_token() -> None:
    with EmbeddedCluster(nodes=1, tls=True, token="s3cret", admin=True) as c:
        assert c.url.startswith("https://127.0.0.1:")
        v1 = client.CoreV1Api(api_client(c))
        assert [n.metadata.name for n in v1.list_node().items] == ["node-001"]
        assert c.ca_path is not None
        ctx = ssl.create_default_context(cafile=str(c.ca_path))
        with pytest.raises(urllib.error.HTTPError) as exc:
            urllib.request.urlopen(c.url + "/api/v1/nodes", context=ctx, timeout=5)
        assert exc.value.code == 401
        assert json.loads(exc.value.read())["reason"] == "Unauthorized"
        req = urllib.request.Request(
            c.url + "/api/v1/nodes", headers={"Authorization": "Bearer s3cret"}
        )
        with urllib.request.urlopen(req, context=ctx, timeout=5) as resp:
            assert json.loads(resp.read())["kind"] == "NodeList"
        with pytest.raises(urllib.error.HTTPError) as exc:
            urllib.request.urlopen(c.url + "/berth-admin/faults", context=ctx, timeout=5)
        assert exc.value.code == 401
        with pytest.raises(urllib.error.URLError):  # untrusted without the CA
            urllib.request.urlopen(
                c.url + "/api/v1/nodes", context=ssl.create_default_context(), timeout=5
            )


def test_a_token_without_tls_is_warned_about() -> None:
    """kubectl does not send bearer tokens over plain HTTP (it gets 401): the CLI warns."""
    from berth.cluster.command import plain_http_token_warning

    assert plain_http_token_warning(tls=False, tokens=True) is not None
    assert "--tls" in (plain_http_token_warning(tls=False, tokens=True) or "")
    assert plain_http_token_warning(tls=True, tokens=True) is None
    assert plain_http_token_warning(tls=False, tokens=False) is None
