"""Workload controllers as a scheduler meets them, the same on both servers: a Deployment's
ReplicaSet and pods, scaled through /scale and rolled to a new template; a ReplicaSet replacing
a deleted pod; a StatefulSet's ordered pods; a DaemonSet's pod per node pinned by node
affinity; a Job whose pods the (simulated) kubelet completes; cascading deletion; a Service's
EndpointSlice. Nothing schedules here: the tests bind pods themselves, as a scheduler would."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest

from tests.fidelity.conftest import Api

NS = "/api/v1/namespaces/default"
APPS = "/apis/apps/v1/namespaces/default"
PODS = f"{NS}/pods"
JSON = dict[str, Any]


def template(app: str, image: str = "busybox:1.36", **spec: Any) -> JSON:
    return {
        "metadata": {"labels": {"app": app}},
        "spec": {"containers": [{"name": "c", "image": image}], **spec},
    }


def until(what: Callable[[], Any], *, timeout: float = 60, every: float = 0.2) -> Any:
    """Poll `what` until it returns something true (or fail after `timeout` seconds)."""
    deadline = time.monotonic() + timeout
    while True:
        value = what()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout} s: {what.__doc__ or what}")
        time.sleep(every)


def pods(api: Api, selector: str) -> list[JSON]:
    items: list[JSON] = api.get(PODS, labelSelector=selector).body["items"]
    return [p for p in items if not p["metadata"].get("deletionTimestamp")]


def bind_pending(api: Api, selector: str, nodes: list[str]) -> int:
    """Bind every unbound pod of `selector`, round-robin over `nodes` (what a scheduler does)."""
    bound = 0
    for i, p in enumerate(pods(api, selector)):
        if p["spec"].get("nodeName"):
            continue
        name = p["metadata"]["name"]
        body = {
            "apiVersion": "v1",
            "kind": "Binding",
            "metadata": {"name": name},
            "target": {"kind": "Node", "name": nodes[i % len(nodes)]},
        }
        if api.post(f"{PODS}/{name}/binding", body).status == 201:
            bound += 1
    return bound


def node_names(api: Api) -> list[str]:
    return sorted(n["metadata"]["name"] for n in api.get("/api/v1/nodes").body["items"])


def running(api: Api, selector: str, want: int) -> bool:
    """Bind what is pending and report whether `want` pods run and are ready."""
    bind_pending(api, selector, node_names(api))
    ready = [
        p
        for p in pods(api, selector)
        if p["status"].get("phase") == "Running"
        and any(
            c["type"] == "Ready" and c["status"] == "True"
            for c in p["status"].get("conditions", [])
        )
    ]
    return len(ready) == want


def deployment(name: str, replicas: int, image: str = "busybox:1.36") -> JSON:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "template": template(name, image),
        },
    }


def test_deployment_rolls_out(api: Api) -> None:
    """a Deployment: a ReplicaSet named by its pod-template-hash owning the pods, the status
    kubectl rollout status reads, Available and Progressing conditions once its pods run"""
    assert api.post(f"{APPS}/deployments", deployment("web", 2)).status == 201
    until(lambda: running(api, "app=web", 2))
    rs = until(lambda: api.get(f"{APPS}/replicasets", labelSelector="app=web").body["items"])
    (rs,) = rs
    h = rs["metadata"]["labels"]["pod-template-hash"]
    assert rs["metadata"]["name"] == f"web-{h}"
    assert rs["spec"]["selector"]["matchLabels"] == {"app": "web", "pod-template-hash": h}
    (ref,) = rs["metadata"]["ownerReferences"]
    assert (ref["kind"], ref["name"], ref["controller"], ref["blockOwnerDeletion"]) == (
        "Deployment",
        "web",
        True,
        True,
    )
    assert rs["metadata"]["annotations"]["deployment.kubernetes.io/revision"] == "1"
    for p in pods(api, "app=web"):
        assert p["metadata"]["name"].startswith(f"web-{h}-")
        assert p["metadata"]["ownerReferences"][0]["name"] == rs["metadata"]["name"]

    def settled() -> JSON | None:
        d: JSON = api.get(f"{APPS}/deployments/web").body
        s = d.get("status", {})
        reasons = {c["type"]: c["reason"] for c in s.get("conditions", [])}
        if (
            reasons.get("Progressing") == "NewReplicaSetAvailable"
            and s.get("availableReplicas") == 2
        ):
            return d
        return None

    d = until(settled)
    status = d["status"]
    assert (status["replicas"], status["updatedReplicas"], status["readyReplicas"]) == (2, 2, 2)
    assert status["observedGeneration"] == d["metadata"]["generation"]
    conditions = {c["type"]: c for c in status["conditions"]}
    assert conditions["Available"]["reason"] == "MinimumReplicasAvailable"
    assert conditions["Available"]["message"] == "Deployment has minimum availability."
    assert (
        conditions["Progressing"]["message"] == f'ReplicaSet "web-{h}" has successfully progressed.'
    )
    assert d["metadata"]["annotations"]["deployment.kubernetes.io/revision"] == "1"


def test_scale_subresource(api: Api) -> None:
    """/scale of a Deployment: an autoscaling/v1 Scale with the selector; a patch of its
    replicas scales the Deployment and its ReplicaSet"""
    assert api.post(f"{APPS}/deployments", deployment("sc", 1)).status == 201
    scale = api.get(f"{APPS}/deployments/sc/scale")
    assert scale.status == 200
    assert (scale.body["kind"], scale.body["apiVersion"]) == ("Scale", "autoscaling/v1")
    assert scale.body["spec"] == {"replicas": 1}
    assert scale.body["status"]["selector"] == "app=sc"
    patched = api.request(
        "PATCH",
        f"{APPS}/deployments/sc/scale",
        {"spec": {"replicas": 3}},
        content_type="application/merge-patch+json",
    )
    assert patched.status == 200 and patched.body["spec"] == {"replicas": 3}
    assert api.get(f"{APPS}/deployments/sc").body["spec"]["replicas"] == 3
    until(lambda: len(pods(api, "app=sc")) == 3)
    negative = api.request(
        "PATCH",
        f"{APPS}/deployments/sc/scale",
        {"spec": {"replicas": -1}},
        content_type="application/merge-patch+json",
    )
    assert negative.status == 422 and negative.reason == "Invalid"


def test_rolling_update_replaces_the_replicaset(api: Api) -> None:
    """a new pod template: a second ReplicaSet (revision 2) takes over, the old one is scaled
    to 0 and kept, every pod runs the new image"""
    assert api.post(f"{APPS}/deployments", deployment("roll", 2)).status == 201
    until(lambda: running(api, "app=roll", 2))
    patch = {
        "spec": {"template": {"spec": {"containers": [{"name": "c", "image": "busybox:1.37"}]}}}
    }
    answer = api.request(
        "PATCH",
        f"{APPS}/deployments/roll",
        patch,
        content_type="application/strategic-merge-patch+json",
    )
    assert answer.status == 200

    def rolled() -> bool:
        running(api, "app=roll", 2)
        live = pods(api, "app=roll")
        images = {p["spec"]["containers"][0]["image"] for p in live}
        return len(live) == 2 and images == {"busybox:1.37"}

    until(rolled, timeout=90)
    rses = api.get(f"{APPS}/replicasets", labelSelector="app=roll").body["items"]
    by_revision = {
        r["metadata"]["annotations"]["deployment.kubernetes.io/revision"]: r for r in rses
    }
    assert sorted(by_revision) == ["1", "2"]
    until(
        lambda: (
            api.get(f"{APPS}/replicasets/{by_revision['1']['metadata']['name']}").body["spec"][
                "replicas"
            ]
            == 0
        )
    )
    assert by_revision["2"]["spec"]["replicas"] == 2


def test_replicaset_replaces_a_deleted_pod(api: Api) -> None:
    """a ReplicaSet recreates a pod that was deleted, and reports fullyLabeled and ready
    counts"""
    body = {
        "apiVersion": "apps/v1",
        "kind": "ReplicaSet",
        "metadata": {"name": "rs"},
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": {"app": "rs"}},
            "template": template("rs"),
        },
    }
    assert api.post(f"{APPS}/replicasets", body).status == 201
    first = until(lambda: pods(api, "app=rs") if len(pods(api, "app=rs")) == 2 else None)
    victim = first[0]["metadata"]["name"]
    assert api.request("DELETE", f"{PODS}/{victim}", {"gracePeriodSeconds": 0}).status == 200

    def replaced() -> bool:
        names = {p["metadata"]["name"] for p in pods(api, "app=rs")}
        return len(names) == 2 and victim not in names

    until(replaced)
    until(lambda: running(api, "app=rs", 2))
    status = until(
        lambda: (
            (s := api.get(f"{APPS}/replicasets/rs").body.get("status", {})).get("readyReplicas")
            == 2
            and s
        )
    )
    assert (status["replicas"], status["fullyLabeledReplicas"], status["availableReplicas"]) == (
        2,
        2,
        2,
    )
    assert status["observedGeneration"] == 1


def test_statefulset_creates_pods_in_order(api: Api) -> None:
    """an OrderedReady StatefulSet: NAME-0 first, NAME-1 only once NAME-0 runs and is ready;
    each pod's hostname, subdomain and pod-name label"""
    svc = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "db"},
        "spec": {"clusterIP": "None", "selector": {"app": "db"}, "ports": [{"port": 5432}]},
    }
    assert api.post(f"{NS}/services", svc).status == 201
    sts = {
        "apiVersion": "apps/v1",
        "kind": "StatefulSet",
        "metadata": {"name": "db"},
        "spec": {
            "replicas": 2,
            "serviceName": "db",
            "selector": {"matchLabels": {"app": "db"}},
            "template": template("db"),
        },
    }
    assert api.post(f"{APPS}/statefulsets", sts).status == 201
    first = until(lambda: pods(api, "app=db"))
    assert [p["metadata"]["name"] for p in first] == ["db-0"]
    time.sleep(2)
    assert [p["metadata"]["name"] for p in pods(api, "app=db")] == ["db-0"]  # waits for db-0
    until(lambda: running(api, "app=db", 2), timeout=90)
    for i, p in enumerate(sorted(pods(api, "app=db"), key=lambda p: p["metadata"]["name"])):
        assert p["metadata"]["name"] == f"db-{i}"
        assert (p["spec"]["hostname"], p["spec"]["subdomain"]) == (f"db-{i}", "db")
        labels = p["metadata"]["labels"]
        assert labels["statefulset.kubernetes.io/pod-name"] == f"db-{i}"
        assert labels["apps.kubernetes.io/pod-index"] == str(i)
        assert labels["controller-revision-hash"].startswith("db-")
    status = until(
        lambda: (
            (s := api.get(f"{APPS}/statefulsets/db").body.get("status", {})).get("readyReplicas")
            == 2
            and s
        )
    )
    assert status["currentRevision"] == status["updateRevision"]
    assert status["currentRevision"].startswith("db-")


def test_daemonset_pins_a_pod_to_each_node(api: Api) -> None:
    """a DaemonSet: one pod per node, each with a required node affinity on metadata.name (the
    scheduler places it) and the DaemonSet tolerations"""
    ds = {
        "apiVersion": "apps/v1",
        "kind": "DaemonSet",
        "metadata": {"name": "agent"},
        "spec": {"selector": {"matchLabels": {"app": "agent"}}, "template": template("agent")},
    }
    assert api.post(f"{APPS}/daemonsets", ds).status == 201
    names = node_names(api)
    found = until(
        lambda: pods(api, "app=agent") if len(pods(api, "app=agent")) == len(names) else None
    )
    targets = []
    for p in found:
        assert not p["spec"].get("nodeName")
        terms = p["spec"]["affinity"]["nodeAffinity"][
            "requiredDuringSchedulingIgnoredDuringExecution"
        ]["nodeSelectorTerms"]
        (term,) = terms
        (field,) = term["matchFields"]
        assert (field["key"], field["operator"]) == ("metadata.name", "In")
        targets.extend(field["values"])
        keys = {(t["key"], t["effect"]) for t in p["spec"]["tolerations"]}
        assert ("node.kubernetes.io/unschedulable", "NoSchedule") in keys
        assert ("node.kubernetes.io/not-ready", "NoExecute") in keys
    assert sorted(targets) == names
    status = until(
        lambda: (
            (s := api.get(f"{APPS}/daemonsets/agent").body.get("status", {})).get(
                "desiredNumberScheduled"
            )
            == len(names)
            and s
        )
    )
    assert status["numberMisscheduled"] == 0


def test_job_completes(api: Api) -> None:
    """a Job with completions 2, parallelism 2: its pods (labelled with the Job's uid and name)
    succeed, and the Job is Complete with succeeded 2"""
    job = {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": "once"},
        "spec": {
            "completions": 2,
            "parallelism": 2,
            "template": template("once", restartPolicy="Never"),
        },
    }
    created = api.post("/apis/batch/v1/namespaces/default/jobs", job)
    assert created.status == 201
    uid = created.body["metadata"]["uid"]
    assert created.body["spec"]["selector"] == {
        "matchLabels": {"batch.kubernetes.io/controller-uid": uid}
    }
    found = until(
        lambda: pods(api, "job-name=once") if len(pods(api, "job-name=once")) == 2 else None
    )
    for p in found:
        labels = p["metadata"]["labels"]
        assert labels["batch.kubernetes.io/controller-uid"] == uid
        assert labels["batch.kubernetes.io/job-name"] == "once"
    bind_pending(api, "job-name=once", node_names(api))

    def complete() -> JSON | None:
        j: JSON = api.get("/apis/batch/v1/namespaces/default/jobs/once").body
        kinds = {
            c["type"] for c in j.get("status", {}).get("conditions", []) if c["status"] == "True"
        }
        return j if "Complete" in kinds else None

    j = until(complete, timeout=90)
    assert j["status"]["succeeded"] == 2 and not j["status"].get("active")
    assert j["status"]["completionTime"] and j["status"]["startTime"]
    kinds = [c["type"] for c in j["status"]["conditions"]]
    assert kinds == ["SuccessCriteriaMet", "Complete"]
    done = {
        p["status"]["phase"] for p in api.get(PODS, labelSelector="job-name=once").body["items"]
    }
    assert done == {"Succeeded"}


@pytest.mark.parametrize(
    ("policy", "pods_stay"), [("Background", False), ("Orphan", True), ("Foreground", False)]
)
def test_cascading_deletion(api: Api, policy: str, pods_stay: bool) -> None:
    """deleting a ReplicaSet with a propagation policy: Background and Foreground delete its
    pods (the garbage collector), Orphan keeps them without the owner reference"""
    body = {
        "apiVersion": "apps/v1",
        "kind": "ReplicaSet",
        "metadata": {"name": "gc"},
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": {"app": "gc"}},
            "template": template("gc"),
        },
    }
    assert api.post(f"{APPS}/replicasets", body).status == 201
    until(lambda: len(pods(api, "app=gc")) == 2)
    answer = api.request("DELETE", f"{APPS}/replicasets/gc", {"propagationPolicy": policy})
    assert answer.status in (200, 202)
    until(lambda: api.get(f"{APPS}/replicasets/gc").status == 404)
    if pods_stay:
        time.sleep(2)
        left = pods(api, "app=gc")
        assert len(left) == 2
        assert all(not p["metadata"].get("ownerReferences") for p in left)
    else:
        until(lambda: not api.get(PODS, labelSelector="app=gc").body["items"])


def test_service_endpointslice(api: Api) -> None:
    """a Service gets a cluster IP, and its EndpointSlice lists the ready pods it selects, by
    IP, node and target"""
    svc = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "front"},
        "spec": {"selector": {"app": "front"}, "ports": [{"port": 80, "targetPort": 8080}]},
    }
    created = api.post(f"{NS}/services", svc)
    assert created.status == 201
    spec = created.body["spec"]
    assert spec["clusterIP"] and spec["clusterIPs"] == [spec["clusterIP"]]
    assert (spec["type"], spec["sessionAffinity"], spec["ipFamilies"]) == (
        "ClusterIP",
        "None",
        ["IPv4"],
    )
    assert spec["ports"] == [{"port": 80, "protocol": "TCP", "targetPort": 8080}]
    rs = {
        "apiVersion": "apps/v1",
        "kind": "ReplicaSet",
        "metadata": {"name": "front"},
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": {"app": "front"}},
            "template": template("front"),
        },
    }
    assert api.post(f"{APPS}/replicasets", rs).status == 201
    until(lambda: running(api, "app=front", 2))

    def sliced() -> JSON | None:
        items = api.get(
            "/apis/discovery.k8s.io/v1/namespaces/default/endpointslices",
            labelSelector="kubernetes.io/service-name=front",
        ).body["items"]
        endpoints = items[0].get("endpoints") or [] if len(items) == 1 else []
        if len(endpoints) == 2 and all(e["conditions"].get("ready") for e in endpoints):
            return dict(items[0])
        return None

    eps = until(sliced)
    assert eps["addressType"] == "IPv4"
    assert (
        eps["metadata"]["labels"]["endpointslice.kubernetes.io/managed-by"]
        == "endpointslice-controller.k8s.io"
    )
    assert eps["metadata"]["generateName"] == "front-"
    assert eps["ports"] == [{"name": "", "port": 8080, "protocol": "TCP"}]
    ips = {p["status"]["podIP"] for p in pods(api, "app=front")}
    assert {e["addresses"][0] for e in eps["endpoints"]} == ips
    assert all(e["targetRef"]["kind"] == "Pod" and e["nodeName"] for e in eps["endpoints"])
