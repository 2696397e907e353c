"""Watch semantics: replay from a resourceVersion, 410 Gone after the retained window, bookmarks,
timeoutSeconds, sendInitialEvents, selector transitions, and the watch faults."""

from __future__ import annotations

import json
import threading
import time
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest
from kubernetes import client, watch
from kubernetes.client.rest import ApiException

from berth.cluster import EmbeddedCluster

from .conftest import api_client, pod_body


@pytest.fixture(scope="module")
def small() -> Iterator[EmbeddedCluster]:
    with EmbeddedCluster(nodes=2, watch_window=10, bookmark_interval=0.2) as c:
        yield c


def _lines(cluster: EmbeddedCluster, path: str) -> list[dict[str, Any]]:
    with urllib.request.urlopen(cluster.url + path, timeout=10) as resp:
        assert resp.status == 200
        return [json.loads(line) for line in resp if line.strip()]


def test_watch_older_than_window_is_gone(small: EmbeddedCluster) -> None:
    v1 = client.CoreV1Api(api_client(small))
    start = v1.list_namespaced_config_map("default").metadata.resource_version
    for i in range(30):
        v1.create_namespaced_config_map("default", {"metadata": {"name": f"gone-{i}"}})
    events = _lines(small, f"/api/v1/namespaces/default/configmaps?watch=1&resourceVersion={start}")
    assert len(events) == 1 and events[0]["type"] == "ERROR"
    status = events[0]["object"]
    assert status["code"] == 410 and status["reason"] == "Expired"
    with pytest.raises(ApiException) as exc:
        for _ in watch.Watch().stream(
            v1.list_namespaced_config_map, "default", resource_version=start, timeout_seconds=1
        ):
            pass
    assert exc.value.status == 410
    # A recent resourceVersion inside the window still replays.
    recent = v1.read_namespaced_config_map("gone-25", "default").metadata.resource_version
    replay = _lines(
        small,
        f"/api/v1/namespaces/default/configmaps?watch=true&resourceVersion={recent}"
        "&timeoutSeconds=1",
    )
    assert [e["object"]["metadata"]["name"] for e in replay] == [
        f"gone-{i}" for i in (26, 27, 28, 29)
    ]


def test_bookmarks_and_timeout(small: EmbeddedCluster) -> None:
    v1 = client.CoreV1Api(api_client(small))
    rv = v1.list_namespaced_pod("default").metadata.resource_version
    started = time.monotonic()
    events = _lines(
        small,
        f"/api/v1/namespaces/default/pods?watch=true&resourceVersion={rv}"
        "&allowWatchBookmarks=true&timeoutSeconds=1",
    )
    elapsed = time.monotonic() - started
    assert 0.9 <= elapsed < 3
    bookmarks = [e for e in events if e["type"] == "BOOKMARK"]
    assert bookmarks and all(e["object"]["kind"] == "Pod" for e in bookmarks)
    assert int(bookmarks[-1]["object"]["metadata"]["resourceVersion"]) >= int(rv)


def test_send_initial_events_ends_with_marked_bookmark(small: EmbeddedCluster) -> None:
    events = _lines(
        small,
        "/api/v1/nodes?watch=true&sendInitialEvents=true&resourceVersionMatch=NotOlderThan"
        "&allowWatchBookmarks=true&timeoutSeconds=1",
    )
    assert [e["type"] for e in events[:2]] == ["ADDED", "ADDED"]
    marked = next(e for e in events if e["type"] == "BOOKMARK")
    annotations = marked["object"]["metadata"]["annotations"]
    assert annotations == {"k8s.io/initial-events-end": "true"}


def test_field_selector_watch_sees_pods_enter_and_leave(small: EmbeddedCluster) -> None:
    v1 = client.CoreV1Api(api_client(small))
    v1.create_namespaced_pod("default", pod_body("mover"))
    rv = v1.list_namespaced_pod("default").metadata.resource_version
    v1.create_namespaced_pod_binding(
        "mover", "default", {"target": {"name": "node-001"}}, _preload_content=False
    )
    events = _lines(
        small,
        f"/api/v1/namespaces/default/pods?watch=true&resourceVersion={rv}"
        "&fieldSelector=spec.nodeName%3D&timeoutSeconds=1",
    )
    # The pod stops matching spec.nodeName= when bound: the watcher sees it as DELETED.
    assert [(e["type"], e["object"]["metadata"]["name"]) for e in events] == [("DELETED", "mover")]
    v1.delete_namespaced_pod("mover", "default")


def test_forced_410_and_dropped_watches() -> None:
    with EmbeddedCluster(nodes=1, admin=True) as c:
        c.faults.expire_next_watch()
        first = _lines(c, "/api/v1/pods?watch=true&timeoutSeconds=1")
        assert first[0]["type"] == "ERROR" and first[0]["object"]["code"] == 410
        second = _lines(c, "/api/v1/nodes?watch=true&timeoutSeconds=1")
        assert [e["type"] for e in second] == ["ADDED"]

        got: list[dict[str, Any]] = []
        ended = threading.Event()

        def consume() -> None:
            got.extend(_lines(c, "/api/v1/nodes?watch=true&timeoutSeconds=30"))
            ended.set()

        t = threading.Thread(target=consume, daemon=True)
        t.start()
        deadline = time.monotonic() + 5
        while c.call(lambda core: len(core.store.watchers())) == 0:
            assert time.monotonic() < deadline
            time.sleep(0.01)
        assert c.drop_watches() == 1
        assert ended.wait(5), "a dropped watch must end its stream"
        assert [e["type"] for e in got] == ["ADDED"]
        # The admin endpoint does the same over HTTP.
        req = urllib.request.Request(c.url + "/berth-admin/faults/expire-next-watch", method="POST")
        with urllib.request.urlopen(req, timeout=5) as resp:
            assert json.loads(resp.read())["expireNextWatches"] == 1
        assert _lines(c, "/api/v1/pods?watch=true")[0]["object"]["reason"] == "Expired"
