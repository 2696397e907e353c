"""The embedded cluster driven by the official `kubernetes` Python client: CRUD, defaults,
optimistic concurrency, selectors, binding, the simulated kubelet, patches and validation."""

from __future__ import annotations

import json

import pytest
from kubernetes import client, watch
from kubernetes.client.rest import ApiException

from berth.cluster import EmbeddedCluster

from .conftest import api_client, pod_body, wait_for


def _status(exc: pytest.ExceptionInfo[ApiException]) -> dict[str, object]:
    body = json.loads(exc.value.body)
    assert body["kind"] == "Status"
    return dict(body)


def test_initial_state(v1: client.CoreV1Api, cluster: EmbeddedCluster) -> None:
    names = {ns.metadata.name for ns in v1.list_namespace().items}
    assert {"default", "kube-system", "kube-public", "kube-node-lease"} <= names
    nodes = v1.list_node().items
    assert [n.metadata.name for n in nodes] == ["node-001", "node-002", "node-003"]
    labels = nodes[1].metadata.labels
    assert labels["topology.kubernetes.io/zone"] == "zone-b"
    assert labels["kubernetes.io/hostname"] == "node-002"
    assert labels["kubernetes.io/os"] == "linux" and labels["kubernetes.io/arch"] == "amd64"
    assert nodes[0].status.allocatable == {
        "cpu": "32",
        "memory": "128Gi",
        "pods": "110",
        "ephemeral-storage": "100Gi",
        "hugepages-1Gi": "0",
        "hugepages-2Mi": "0",
    }
    ready = [c for c in nodes[0].status.conditions if c.type == "Ready"]
    assert ready[0].status == "True"
    sched = client.SchedulingV1Api(api_client(cluster))
    values = {pc.metadata.name: pc.value for pc in sched.list_priority_class().items}
    assert values == {"system-cluster-critical": 2000000000, "system-node-critical": 2000001000}


def test_create_sets_metadata_and_pod_defaults(v1: client.CoreV1Api, namespace: str) -> None:
    pod = v1.create_namespaced_pod(namespace, pod_body("defaults"))
    meta, spec = pod.metadata, pod.spec
    assert meta.uid and meta.creation_timestamp and meta.generation == 1
    assert int(meta.resource_version) > 0
    assert spec.scheduler_name == "default-scheduler"
    assert spec.restart_policy == "Always" and spec.dns_policy == "ClusterFirst"
    assert spec.termination_grace_period_seconds == 30 and spec.enable_service_links is True
    assert spec.priority == 0 and spec.preemption_policy == "PreemptLowerPriority"
    assert pod.status.phase == "Pending" and pod.status.qos_class == "Burstable"
    assert spec.containers[0].image_pull_policy == "IfNotPresent"


def test_generate_name(v1: client.CoreV1Api, namespace: str) -> None:
    a = v1.create_namespaced_pod(namespace, pod_body(generate="worker-"))
    b = v1.create_namespaced_pod(namespace, pod_body(generate="worker-"))
    assert a.metadata.name.startswith("worker-") and len(a.metadata.name) == len("worker-") + 5
    assert a.metadata.name != b.metadata.name


def test_resource_versions_are_monotonic_and_lists_carry_one(
    v1: client.CoreV1Api, namespace: str
) -> None:
    first = v1.create_namespaced_config_map(namespace, {"metadata": {"name": "a"}})
    second = v1.create_namespaced_config_map(namespace, {"metadata": {"name": "b"}})
    assert int(second.metadata.resource_version) > int(first.metadata.resource_version)
    listed = v1.list_namespaced_config_map(namespace)
    assert int(listed.metadata.resource_version) >= int(second.metadata.resource_version)
    assert [c.metadata.name for c in listed.items] == ["a", "b"]
    # limit/continue are accepted and ignored: everything comes back, no continue token.
    limited = v1.list_namespaced_config_map(namespace, limit=1)
    assert len(limited.items) == 2 and not limited.metadata._continue


def test_already_exists_and_stale_update_conflict(v1: client.CoreV1Api, namespace: str) -> None:
    cm = v1.create_namespaced_config_map(namespace, {"metadata": {"name": "c"}, "data": {"k": "1"}})
    with pytest.raises(ApiException) as exc:
        v1.create_namespaced_config_map(namespace, {"metadata": {"name": "c"}})
    assert exc.value.status == 409 and _status(exc)["reason"] == "AlreadyExists"
    cm.data = {"k": "2"}
    updated = v1.replace_namespaced_config_map("c", namespace, cm)
    assert updated.data == {"k": "2"}
    cm.data = {"k": "3"}  # still carries the old resourceVersion
    with pytest.raises(ApiException) as exc:
        v1.replace_namespaced_config_map("c", namespace, cm)
    assert exc.value.status == 409 and _status(exc)["reason"] == "Conflict"


def test_watch_from_resource_version(v1: client.CoreV1Api, namespace: str) -> None:
    start = v1.list_namespaced_pod(namespace).metadata.resource_version
    v1.create_namespaced_pod(namespace, pod_body("w1"))
    v1.patch_namespaced_pod("w1", namespace, {"metadata": {"labels": {"x": "y"}}})
    v1.delete_namespaced_pod("w1", namespace)
    events = []
    for ev in watch.Watch().stream(
        v1.list_namespaced_pod, namespace, resource_version=start, timeout_seconds=1
    ):
        events.append((ev["type"], ev["object"].metadata.name))
        if len(events) == 3:
            break
    assert events == [("ADDED", "w1"), ("MODIFIED", "w1"), ("DELETED", "w1")]


def test_label_and_field_selectors(v1: client.CoreV1Api, namespace: str) -> None:
    for name, labels in [
        ("a", {"app": "web", "tier": "fe"}),
        ("b", {"app": "web"}),
        ("c", {"app": "db", "tier": "be"}),
    ]:
        v1.create_namespaced_pod(namespace, pod_body(name, labels=labels))

    def names(**kw: str) -> list[str]:
        return [p.metadata.name for p in v1.list_namespaced_pod(namespace, **kw).items]

    assert names(label_selector="app=web") == ["a", "b"]
    assert names(label_selector="app==web,tier") == ["a"]
    assert names(label_selector="app!=web") == ["c"]
    assert names(label_selector="tier in (fe,be)") == ["a", "c"]
    assert names(label_selector="tier notin (fe)") == ["b", "c"]
    assert names(label_selector="!tier") == ["b"]
    assert names(field_selector="metadata.name=b") == ["b"]
    assert names(field_selector="spec.schedulerName=default-scheduler,status.phase=Pending") == [
        "a",
        "b",
        "c",
    ]
    v1.create_namespaced_pod_binding(
        "a", namespace, {"target": {"name": "node-001"}}, _preload_content=False
    )
    assert names(field_selector="spec.nodeName=node-001") == ["a"]
    assert names(field_selector="spec.nodeName=") == ["b", "c"]
    assert names(field_selector=f"metadata.namespace={namespace},metadata.name!=a") == ["b", "c"]
    cordoned = [
        n.metadata.name for n in v1.list_node(field_selector="spec.unschedulable=false").items
    ]
    assert len(cordoned) == 3
    with pytest.raises(ApiException) as exc:
        v1.list_namespaced_pod(namespace, field_selector="spec.bogus=1")
    assert exc.value.status == 400


def test_binding_runs_pod_and_double_bind_conflicts(v1: client.CoreV1Api, namespace: str) -> None:
    v1.create_namespaced_pod(namespace, pod_body("bound"))
    body = {
        "apiVersion": "v1",
        "kind": "Binding",
        "metadata": {"name": "bound"},
        "target": {"apiVersion": "v1", "kind": "Node", "name": "node-002"},
    }
    resp = v1.create_namespaced_binding(namespace, body, _preload_content=False)
    assert resp.status == 201
    pod = v1.read_namespaced_pod("bound", namespace)
    assert pod.spec.node_name == "node-002"
    assert any(c.type == "PodScheduled" and c.status == "True" for c in pod.status.conditions)
    with pytest.raises(ApiException) as exc:
        v1.create_namespaced_pod_binding("bound", namespace, body, _preload_content=False)
    assert exc.value.status == 409
    assert 'already assigned to node "node-002"' in _status(exc)["message"]  # type: ignore[operator]

    def running() -> bool:
        return v1.read_namespaced_pod("bound", namespace).status.phase == "Running"

    wait_for(running)
    pod = v1.read_namespaced_pod("bound", namespace)
    types = {c.type: c.status for c in pod.status.conditions}
    assert {"Initialized", "Ready", "ContainersReady", "PodScheduled"} <= set(types)
    assert set(types.values()) == {"True"}
    assert pod.status.pod_ip and pod.status.host_ip == "10.0.0.3" and pod.status.start_time
    assert pod.status.container_statuses[0].ready is True
    with pytest.raises(ApiException) as exc:
        v1.create_namespaced_pod_binding("missing", namespace, body, _preload_content=False)
    assert exc.value.status == 404


def test_patches(v1: client.CoreV1Api, namespace: str, cluster: EmbeddedCluster) -> None:
    v1.create_namespaced_pod(namespace, pod_body("p", labels={"a": "1", "b": "2"}))
    # JSON merge patch: null deletes a key.
    v1.patch_namespaced_pod(
        "p",
        namespace,
        {"metadata": {"labels": {"a": None, "c": "3"}}},
        _content_type="application/merge-patch+json",
    )
    assert v1.read_namespaced_pod("p", namespace).metadata.labels == {"b": "2", "c": "3"}
    # Strategic merge patch (the client's default for dicts): containers merge by name.
    patched = v1.patch_namespaced_pod(
        "p", namespace, {"spec": {"containers": [{"name": "c", "image": "busybox:1.37"}]}}
    )
    assert patched.spec.containers[0].image == "busybox:1.37"
    assert patched.spec.containers[0].resources.requests == {"cpu": "100m", "memory": "64Mi"}
    # JSON patch.
    patched = v1.patch_namespaced_pod(
        "p", namespace, [{"op": "add", "path": "/metadata/annotations", "value": {"k": "v"}}]
    )
    assert patched.metadata.annotations == {"k": "v"}
    # Node taints: a strategic patch replaces the list.
    v1.patch_node("node-003", {"spec": {"taints": [{"key": "a", "effect": "NoSchedule"}]}})
    node = v1.patch_node("node-003", {"spec": {"taints": [{"key": "b", "effect": "NoExecute"}]}})
    assert [t.key for t in node.spec.taints] == ["b"]
    node = v1.patch_node("node-003", {"spec": {"taints": None}})
    assert node.spec.taints is None
    # Status subresource: main-resource writes cannot change status, /status can.
    v1.patch_namespaced_pod_status("p", namespace, {"status": {"nominatedNodeName": "node-001"}})
    assert v1.read_namespaced_pod("p", namespace).status.nominated_node_name == "node-001"
    v1.patch_namespaced_pod("p", namespace, {"status": {"nominatedNodeName": "node-002"}})
    assert v1.read_namespaced_pod("p", namespace).status.nominated_node_name == "node-001"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (pod_body("Bad_Name"), "metadata.name"),
        (pod_body("nocontainers", containers=[]), "spec.containers"),
        (
            pod_body(
                "badqty",
                containers=[
                    {"name": "c", "image": "x", "resources": {"requests": {"cpu": "lots"}}}
                ],
            ),
            "spec.containers[0].resources.requests[cpu]",
        ),
    ],
)
def test_invalid_objects_get_422(
    v1: client.CoreV1Api, namespace: str, body: dict[str, object], field: str
) -> None:
    with pytest.raises(ApiException) as exc:
        v1.create_namespaced_pod(namespace, body)
    status = _status(exc)
    assert exc.value.status == 422 and status["reason"] == "Invalid"
    causes = status["details"]["causes"]  # type: ignore[index]
    assert field in [c["field"] for c in causes]  # type: ignore[union-attr]


def test_annotation_keys_are_qualified_names(v1: client.CoreV1Api) -> None:
    """upstream ValidateAnnotations: a key is a qualified name (case does not matter)."""
    with pytest.raises(ApiException) as exc:
        v1.patch_node("node-003", {"metadata": {"annotations": {"bad key!": "1"}}})
    status = _status(exc)
    assert exc.value.status == 422 and status["reason"] == "Invalid"
    cause = status["details"]["causes"][0]  # type: ignore[index]
    assert cause["field"] == "metadata.annotations"  # type: ignore[index]
    assert cause["message"].startswith('Invalid value: "bad key!": name part must')  # type: ignore[index]
    node = v1.patch_node("node-003", {"metadata": {"annotations": {"Example.COM/Price": "1"}}})
    assert node.metadata.annotations["Example.COM/Price"] == "1"
    v1.patch_node("node-003", {"metadata": {"annotations": {"Example.COM/Price": None}}})


def test_priority_classes(v1: client.CoreV1Api, namespace: str, cluster: EmbeddedCluster) -> None:
    sched = client.SchedulingV1Api(api_client(cluster))
    sched.create_priority_class(
        {"metadata": {"name": "batch-high"}, "value": 1000, "preemptionPolicy": "Never"}
    )
    pod = v1.create_namespaced_pod(namespace, pod_body("hi", priorityClassName="batch-high"))
    assert pod.spec.priority == 1000 and pod.spec.preemption_policy == "Never"
    crit = v1.create_namespaced_pod(
        namespace, pod_body("crit", priorityClassName="system-node-critical")
    )
    assert crit.spec.priority == 2000001000
    with pytest.raises(ApiException) as exc:
        v1.create_namespaced_pod(namespace, pod_body("nope", priorityClassName="missing"))
    assert exc.value.status == 403
    assert "no PriorityClass with name missing was found" in exc.value.body
    sched.delete_priority_class("batch-high")


def test_pod_delete_is_immediate_and_namespace_delete_cascades(v1: client.CoreV1Api) -> None:
    v1.create_namespace({"metadata": {"name": "doomed"}})
    v1.create_namespaced_pod("doomed", pod_body("x", nodeName="node-001"))
    deleted = v1.delete_namespaced_pod("x", "doomed")
    assert deleted.metadata.deletion_timestamp is not None
    assert v1.list_namespaced_pod("doomed").items == []
    v1.create_namespaced_pod("doomed", pod_body("y"))
    v1.delete_namespace("doomed")
    assert v1.list_pod_for_all_namespaces(field_selector="metadata.namespace=doomed").items == []
    with pytest.raises(ApiException) as exc:
        v1.create_namespaced_pod("doomed", pod_body("z"))
    assert exc.value.status == 404
    with pytest.raises(ApiException) as exc:
        v1.delete_namespace("default")
    assert exc.value.status == 403


def test_pod_spec_is_mostly_immutable(v1: client.CoreV1Api, namespace: str) -> None:
    v1.create_namespaced_pod(namespace, pod_body("imm"))
    with pytest.raises(ApiException) as exc:
        v1.patch_namespaced_pod("imm", namespace, {"spec": {"schedulerName": "other"}})
    assert exc.value.status == 422


def test_other_resources_round_trip(cluster: EmbeddedCluster, namespace: str) -> None:
    api = api_client(cluster)
    coord = client.CoordinationV1Api(api)
    lease = coord.create_namespaced_lease(
        namespace, {"metadata": {"name": "leader"}, "spec": {"holderIdentity": "me"}}
    )
    assert lease.spec.holder_identity == "me"
    node_lease = coord.read_namespaced_lease("node-001", "kube-node-lease")
    assert node_lease.spec.holder_identity == "node-001"
    events = client.EventsV1Api(api)
    ev = events.create_namespaced_event(
        namespace,
        {
            "metadata": {"name": "e1"},
            # not a whole second: the client would send it without the six digits a
            # MicroTime needs, which kube-apiserver refuses
            "eventTime": "2026-01-01T00:00:00.123456Z",
            "reportingController": "berth",
            "reportingInstance": "berth-1",
            "action": "Binding",
            "reason": "Scheduled",
            "type": "Normal",
            "note": "placed",
            "regarding": {"kind": "Pod", "name": "p", "namespace": namespace},
        },
    )
    assert ev.reason == "Scheduled"
    core_ev = client.CoreV1Api(api).create_namespaced_event(
        namespace,
        {
            "metadata": {"name": "e2"},
            "involvedObject": {"kind": "Pod", "name": "p", "namespace": namespace},
            "reason": "Scheduled",
            "message": "placed",
            "type": "Normal",
        },
    )
    assert core_ev.involved_object.name == "p"
    # One storage, two APIs: each event is visible through both, converted field by field.
    core_view = client.CoreV1Api(api).read_namespaced_event("e1", namespace)
    assert core_view.involved_object.name == "p" and core_view.message == "placed"
    assert core_view.reporting_component == "berth"
    new_view = events.read_namespaced_event("e2", namespace)
    assert new_view.regarding.name == "p" and new_view.note == "placed"
    assert new_view.event_time is not None
    selected = events.list_namespaced_event(namespace, field_selector="regarding.name=p")
    assert sorted(e.metadata.name for e in selected.items) == ["e1", "e2"]
    # an events.k8s.io/v1 update may not change the note (as upstream); a core/v1 one may
    patched = client.CoreV1Api(api).patch_namespaced_event(
        "e1", namespace, {"message": "moved"}, _content_type="application/merge-patch+json"
    )
    assert patched.message == "moved"
    assert events.read_namespaced_event("e1", namespace).note == "moved"
    custom = client.CustomObjectsApi(api)
    pg = custom.create_namespaced_custom_object(
        "scheduling.x-k8s.io",
        "v1alpha1",
        namespace,
        "podgroups",
        {
            "apiVersion": "scheduling.x-k8s.io/v1alpha1",
            "kind": "PodGroup",
            "metadata": {"name": "gang"},
            "spec": {"minMember": 3},
        },
    )
    assert pg["metadata"]["generation"] == 1
    listed = custom.list_namespaced_custom_object(
        "scheduling.x-k8s.io", "v1alpha1", namespace, "podgroups"
    )
    assert [i["spec"]["minMember"] for i in listed["items"]] == [3]
