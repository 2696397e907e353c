"""Watches and selectors, the same on both servers: a watch from a resourceVersion the server
no longer keeps, bookmarks (and the initial-events-end bookmark), label and field selectors on
lists and watches."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.fidelity.conftest import Api, eventually
from tests.fidelity.test_objects import CM, PODS, configmap, pod
from tests.upstream import SERVERS, UpstreamCluster, clusters

LEASES = "/apis/coordination.k8s.io/v1/namespaces/default/leases"


def labelled(name: str, **labels: str) -> dict[str, Any]:
    """A ConfigMap with `labels` and set=test (what this module's selectors look among: the
    real controller-manager adds kube-root-ca.crt to every namespace)."""
    body = configmap(name)
    body["metadata"]["labels"] = {"set": "test", **labels}
    return body


@pytest.fixture(params=SERVERS)
def forgetful(request: pytest.FixtureRequest) -> Iterator[Any]:
    """A server that forgets its history soon: the embedded one keeps 3 watch events; on the
    real one the test compacts etcd (what its compactor does every 5 minutes) under Leases,
    which the test session serves without a watch cache."""
    yield from clusters(request, nodes=0, watch_window=3)


def lease(name: str) -> dict[str, Any]:
    return {
        "apiVersion": "coordination.k8s.io/v1",
        "kind": "Lease",
        "metadata": {"name": name},
        "spec": {"holderIdentity": "x"},
    }


def test_watch_from_an_expired_resource_version(forgetful: Any) -> None:
    """a watch from a resourceVersion older than the server keeps: an ERROR event carrying
    410 Expired (HTTP 200), so a client relists"""
    api = Api(forgetful.kubeconfig_path)
    first = api.post(LEASES, lease("l0")).body["metadata"]["resourceVersion"]
    for i in range(1, 9):  # well past the window, whatever the seed objects were
        api.post(LEASES, lease(f"l{i}"))
    if isinstance(forgetful, UpstreamCluster):  # leases are not watch-cached there
        forgetful.plane.compact_etcd()
    status, events = api.watch(
        LEASES, resourceVersion=first, until=lambda evs: bool(evs), timeout=10
    )
    assert status == 200
    assert events[0]["type"] == "ERROR", events[:2]
    error = events[0]["object"]
    assert error["kind"] == "Status" and error["code"] == 410 and error["reason"] == "Expired"


def test_watch_bookmarks_end_initial_events(api: Api) -> None:
    """sendInitialEvents=true: ADDED for what exists, then a BOOKMARK annotated
    k8s.io/initial-events-end, with the resourceVersion to resume from"""
    api.post(CM, labelled("a"))
    api.post(CM, labelled("b"))

    def ended(evs: list[dict[str, Any]]) -> bool:
        return any(e["type"] == "BOOKMARK" for e in evs)

    status, events = api.watch(
        CM,
        labelSelector="set=test",
        sendInitialEvents="true",
        resourceVersionMatch="NotOlderThan",
        allowWatchBookmarks="true",
        until=ended,
    )
    assert status == 200
    types = [e["type"] for e in events]
    assert types == ["ADDED", "ADDED", "BOOKMARK"], types
    assert sorted(e["object"]["metadata"]["name"] for e in events[:2]) == ["a", "b"]
    bookmark = events[2]["object"]
    assert bookmark["kind"] == "ConfigMap"
    assert bookmark["metadata"]["annotations"] == {"k8s.io/initial-events-end": "true"}
    assert int(bookmark["metadata"]["resourceVersion"]) >= max(
        int(e["object"]["metadata"]["resourceVersion"]) for e in events[:2]
    )


def test_label_selectors(api: Api) -> None:
    """label selectors: equality, set-based and existence operators"""
    api.post(CM, labelled("a", app="web", tier="front"))
    api.post(CM, labelled("b", app="web", tier="db"))
    api.post(CM, labelled("c", app="batch"))

    def names(selector: str) -> list[str]:
        answer = api.get(CM, labelSelector=f"set=test,{selector}")
        assert answer.status == 200, answer.body
        return sorted(i["metadata"]["name"] for i in answer.body["items"])

    assert names("app=web") == ["a", "b"]
    assert names("app=web,tier!=db") == ["a"]
    assert names("app in (web,batch),!tier") == ["c"]
    assert names("tier") == ["a", "b"]
    assert names("app notin (web)") == ["c"]


def test_invalid_label_selector_is_400(api: Api) -> None:
    """an unparseable label selector: 400 BadRequest"""
    answer = api.get(CM, labelSelector="app in (web")
    assert answer.status == 400 and answer.reason == "BadRequest"


def test_field_selectors(api: Api) -> None:
    """field selectors on pods: spec.nodeName, metadata.name, status.phase; an unsupported
    field is 400 with upstream's message"""
    api.post(PODS, pod("a", nodeName="node-001"))
    api.post(PODS, pod("b"))
    eventually(lambda: api.get(f"{PODS}/a").body["status"].get("phase") == "Running")

    def names(selector: str) -> list[str]:
        answer = api.get(PODS, fieldSelector=selector)
        assert answer.status == 200, answer.body
        return sorted(i["metadata"]["name"] for i in answer.body["items"])

    assert names("spec.nodeName=node-001") == ["a"]
    assert names("spec.nodeName=") == ["b"]
    assert names("metadata.name!=a") == ["b"]
    assert names("status.phase=Pending") == ["b"]  # a runs: a kubelet (simulated) started it
    answer = api.get(PODS, fieldSelector="spec.bogus=x")
    assert answer.status == 400 and answer.reason == "BadRequest"
    assert answer.message == "field label not supported: spec.bogus"


def test_watch_with_a_label_selector(api: Api) -> None:
    """a watch with a label selector: an object that starts matching is ADDED, one that stops
    matching is DELETED"""
    api.post(CM, labelled("a", app="x"))
    version = api.get(CM).body["metadata"]["resourceVersion"]
    api.request(
        "PATCH",
        f"{CM}/a",
        {"metadata": {"labels": {"app": "y"}}},
        content_type="application/merge-patch+json",
    )
    api.post(CM, labelled("b", app="x"))
    status, events = api.watch(
        CM, resourceVersion=version, labelSelector="app=x", until=lambda evs: len(evs) >= 2
    )
    assert status == 200
    assert [(e["type"], e["object"]["metadata"]["name"]) for e in events] == [
        ("DELETED", "a"),
        ("ADDED", "b"),
    ]
