"""Objects through the API, the same on both servers: create, get, list and watch; every patch
type including server-side apply; resourceVersion conflicts; strict field validation;
server-side dry run; 422 for invalid values."""

from __future__ import annotations

from typing import Any

from tests.fidelity.conftest import Api

CM = "/api/v1/namespaces/default/configmaps"
PODS = "/api/v1/namespaces/default/pods"


def configmap(name: str, **data: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": data}


def pod(name: str, **spec: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"containers": [{"name": "c", "image": "busybox:1.36"}], **spec}
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name}, "spec": body}


def test_create_get_list_watch(api: Api) -> None:
    """create 201 with server-set metadata; get 200; list with its resourceVersion; a watch
    from that version sees the next change"""
    created = api.post(CM, configmap("a", k="v"))
    assert created.status == 201
    meta = created.body["metadata"]
    assert meta["uid"] and meta["resourceVersion"] and meta["creationTimestamp"].endswith("Z")
    got = api.get(f"{CM}/a")
    assert got.status == 200 and got.body["data"] == {"k": "v"}
    assert got.body["metadata"]["resourceVersion"] == meta["resourceVersion"]
    listed = api.get(CM, labelSelector="")
    assert listed.status == 200 and listed.body["kind"] == "ConfigMapList"
    assert listed.body["apiVersion"] == "v1"
    assert "a" in [i["metadata"]["name"] for i in listed.body["items"]]
    version = listed.body["metadata"]["resourceVersion"]
    assert api.post(CM, configmap("b")).status == 201
    status, events = api.watch(
        CM,
        resourceVersion=version,
        until=lambda evs: any(e["object"]["metadata"]["name"] == "b" for e in evs),
    )
    assert status == 200
    assert [(e["type"], e["object"]["metadata"]["name"]) for e in events] == [("ADDED", "b")]
    assert events[0]["object"]["kind"] == "ConfigMap"


def test_get_missing_is_404(api: Api) -> None:
    """get of a missing object: 404 NotFound with details"""
    answer = api.get(f"{CM}/nope")
    assert answer.status == 404 and answer.reason == "NotFound"
    assert answer.message == 'configmaps "nope" not found'
    assert answer.body["details"] == {"name": "nope", "kind": "configmaps"}


def test_create_existing_is_409(api: Api) -> None:
    """create of an existing name: 409 AlreadyExists"""
    assert api.post(CM, configmap("a")).status == 201
    answer = api.post(CM, configmap("a"))
    assert answer.status == 409 and answer.reason == "AlreadyExists"
    assert answer.message == 'configmaps "a" already exists'


def test_merge_patch(api: Api) -> None:
    """JSON merge patch: keys merged, null deletes"""
    api.post(CM, configmap("a", x="1", y="2"))
    answer = api.request(
        "PATCH",
        f"{CM}/a",
        {"data": {"x": None, "z": "3"}},
        content_type="application/merge-patch+json",
    )
    assert answer.status == 200 and answer.body["data"] == {"y": "2", "z": "3"}


def test_strategic_merge_patch(api: Api) -> None:
    """strategic merge patch: containers merged by name"""
    body = pod("p")
    body["spec"]["containers"].append({"name": "d", "image": "busybox:1.36"})
    assert api.post(PODS, body).status == 201
    patch = {"spec": {"containers": [{"name": "d", "image": "busybox:1.37"}]}}
    answer = api.request(
        "PATCH", f"{PODS}/p", patch, content_type="application/strategic-merge-patch+json"
    )
    assert answer.status == 200
    images = {c["name"]: c["image"] for c in answer.body["spec"]["containers"]}
    assert images == {"c": "busybox:1.36", "d": "busybox:1.37"}


def test_json_patch(api: Api) -> None:
    """JSON patch: add and remove apply, a failing test op is 422"""
    api.post(CM, configmap("a", x="1"))
    ops = [{"op": "add", "path": "/data/y", "value": "2"}, {"op": "remove", "path": "/data/x"}]
    answer = api.request("PATCH", f"{CM}/a", ops, content_type="application/json-patch+json")
    assert answer.status == 200 and answer.body["data"] == {"y": "2"}
    failing = [{"op": "test", "path": "/data/y", "value": "nope"}]
    answer = api.request("PATCH", f"{CM}/a", failing, content_type="application/json-patch+json")
    assert answer.status == 422 and answer.reason == "Invalid"


def test_server_side_apply(api: Api) -> None:
    """server-side apply creates, records its field manager, and a second manager's conflicting
    apply is 409 Conflict unless forced"""
    doc = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\ndata:\n  k: one\n"
    answer = api.request(
        "PATCH",
        f"{CM}/a",
        doc,
        query={"fieldManager": "first"},
        content_type="application/apply-patch+yaml",
    )
    assert answer.status == 201, answer.body
    managers = [m["manager"] for m in answer.body["metadata"]["managedFields"]]
    assert managers == ["first"]
    other = doc.replace("one", "two")
    answer = api.request(
        "PATCH",
        f"{CM}/a",
        other,
        query={"fieldManager": "second"},
        content_type="application/apply-patch+yaml",
    )
    assert answer.status == 409 and answer.reason == "Conflict"
    assert 'conflict with "first"' in answer.message
    answer = api.request(
        "PATCH",
        f"{CM}/a",
        other,
        query={"fieldManager": "second", "force": "true"},
        content_type="application/apply-patch+yaml",
    )
    assert answer.status == 200 and answer.body["data"] == {"k": "two"}


def test_stale_resource_version_is_409(api: Api) -> None:
    """update with a stale resourceVersion: 409 Conflict with upstream's message"""
    first = api.post(CM, configmap("a", k="1")).body
    assert api.request("PUT", f"{CM}/a", {**first, "data": {"k": "2"}}).status == 200
    answer = api.request("PUT", f"{CM}/a", {**first, "data": {"k": "3"}})
    assert answer.status == 409 and answer.reason == "Conflict"
    assert answer.message == (
        'Operation cannot be fulfilled on configmaps "a": the object has been modified; '
        "please apply your changes to the latest version and try again"
    )


def test_strict_field_validation(api: Api) -> None:
    """fieldValidation=Strict refuses an unknown field: 400 BadRequest naming it"""
    body = {**configmap("a"), "bogus": 1}
    answer = api.post(CM, body, fieldValidation="Strict")
    assert answer.status == 400 and answer.reason == "BadRequest"
    assert 'strict decoding error: unknown field "bogus"' in answer.message
    assert api.get(f"{CM}/a").status == 404


def test_server_side_dry_run(api: Api) -> None:
    """dryRun=All answers the object as it would be stored and stores nothing"""
    answer = api.post(CM, configmap("a", k="v"), dryRun="All")
    assert answer.status == 201 and answer.body["data"] == {"k": "v"}
    assert api.get(f"{CM}/a").status == 404


def test_invalid_name_is_422(api: Api) -> None:
    """an invalid name: 422 Invalid with the field's cause"""
    answer = api.post(CM, configmap("Not_Valid"))
    assert answer.status == 422 and answer.reason == "Invalid"
    causes = answer.body["details"]["causes"]
    assert [(c["reason"], c["field"]) for c in causes] == [("FieldValueInvalid", "metadata.name")]


def test_pod_without_image_is_422(api: Api) -> None:
    """a container without an image: 422 with spec.containers[0].image Required"""
    body = pod("p")
    del body["spec"]["containers"][0]["image"]
    answer = api.post(PODS, body)
    assert answer.status == 422 and answer.reason == "Invalid"
    fields = {(c["reason"], c["field"]) for c in answer.body["details"]["causes"]}
    assert ("FieldValueRequired", "spec.containers[0].image") in fields


def test_invalid_match_fields_operator_is_422(api: Api) -> None:
    """a nodeAffinity matchFields term with operator Exists: 422 (only In/NotIn on
    metadata.name)"""
    term = {"matchFields": [{"key": "metadata.name", "operator": "Exists"}]}
    affinity = {
        "nodeAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [term]}
        }
    }
    answer = api.post(PODS, pod("p", affinity=affinity))
    assert answer.status == 422 and answer.reason == "Invalid"


def test_pv_csi_driver_must_be_a_dns_name(api: Api) -> None:
    """a PersistentVolume whose csi.driver is not a DNS subdomain: 422"""
    pv = {
        "apiVersion": "v1",
        "kind": "PersistentVolume",
        "metadata": {"name": "pv"},
        "spec": {
            "capacity": {"storage": "1Gi"},
            "accessModes": ["ReadWriteOnce"],
            "csi": {"driver": "example.com/csi", "volumeHandle": "h"},
        },
    }
    answer = api.post("/api/v1/persistentvolumes", pv)
    assert answer.status == 422 and answer.reason == "Invalid"
    fields = {c["field"] for c in answer.body["details"]["causes"]}
    assert fields == {"spec.csi.driver"}


def test_delete_with_a_wrong_uid_precondition_is_409(api: Api) -> None:
    """delete with a uid precondition that is not the object's: 409 Conflict, the object stays"""
    uid = api.post(CM, configmap("a")).body["metadata"]["uid"]
    wrong = "00000000-0000-0000-0000-000000000000"
    answer = api.request("DELETE", f"{CM}/a", {"preconditions": {"uid": wrong}})
    assert answer.status == 409 and answer.reason == "Conflict"
    assert answer.message == (
        f'Operation cannot be fulfilled on ConfigMap "a": the UID in the precondition ({wrong}) '
        f"does not match the UID in record ({uid}). The object might have been deleted and then "
        "recreated"
    )
    assert api.get(f"{CM}/a").status == 200


def test_zero_values_go_omits_are_not_stored(api: Api) -> None:
    """kube-apiserver decodes a write into its Go type and encodes it again: an omitempty field
    holding its zero value (an empty list or map, "", 0, false, a null pointer) is gone from the
    answer, the stored object and a patch's result; a pointer to a zero value stays."""
    body = pod(
        "zeros",
        nodeSelector={},
        tolerations=[],
        priorityClassName="",
        hostNetwork=False,
        activeDeadlineSeconds=None,
        terminationGracePeriodSeconds=0,
    )
    body["metadata"].update(labels={}, annotations={}, finalizers=[], generateName="")
    body["spec"]["containers"][0].update(
        ports=[{"containerPort": 80, "hostPort": 0, "hostIP": ""}],
        resources={"requests": {}},
        args=[],
    )
    created = api.post(PODS, body)
    assert created.status == 201, created.body
    for answer in (created, api.get(f"{PODS}/zeros")):
        meta, spec = answer.body["metadata"], answer.body["spec"]
        assert not {"labels", "annotations", "finalizers", "generateName"} & set(meta)
        assert not {"nodeSelector", "priorityClassName", "hostNetwork"} & set(spec), spec
        assert "activeDeadlineSeconds" not in spec
        assert spec["terminationGracePeriodSeconds"] == 0  # a pointer: its zero is shown
        (container,) = spec["containers"]
        assert container["ports"] == [{"containerPort": 80, "protocol": "TCP"}]
        assert "args" not in container and container["resources"] == {}
    patched = api.request(
        "PATCH",
        f"{PODS}/zeros",
        {"metadata": {"labels": {"a": "b"}, "annotations": {}}},
        content_type="application/merge-patch+json",
    )
    assert patched.status == 200, patched.body
    assert patched.body["metadata"]["labels"] == {"a": "b"}
    assert "annotations" not in patched.body["metadata"]
