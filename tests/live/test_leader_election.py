"""Two `berth run` processes with leader election: one schedules; kill it, the other takes over
within the lease duration, and no pod is ever bound twice. SIGTERM releases the lease."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client, config

from berth.cluster import EmbeddedCluster
from tests.upstream import SERVERS, clusters

LEASE = {
    "leaseDuration": "4s",
    "renewDeadline": "3s",
    "retryPeriod": "1s",
    "resourceName": "berth",
    "resourceNamespace": "kube-system",
}


def start(cluster: EmbeddedCluster, cfg: Path, identity: str, log: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "berth",
            "run",
            "--config",
            str(cfg),
            "--kubeconfig",
            str(cluster.kubeconfig_path),
            "--bind-address",
            "127.0.0.1:0",
            "--identity",
            identity,
            "--log-format",
            "json",
        ],
        stdout=subprocess.DEVNULL,
        stderr=log.open("wb"),
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )


@pytest.fixture(params=SERVERS)
def api(
    request: pytest.FixtureRequest, tmp_path: Path
) -> Iterator[tuple[EmbeddedCluster, client.CoreV1Api, Path]]:
    for c in clusters(request, nodes=3, zones=2, cpu="32", memory="128Gi"):
        cfg = tmp_path / "berth.yaml"
        import yaml

        cfg.write_text(
            yaml.safe_dump(
                {
                    "apiVersion": "berth.io/v1alpha1",
                    "kind": "BerthConfiguration",
                    "leaderElection": LEASE,
                }
            )
        )
        yield c, client.CoreV1Api(config.new_client_from_config(str(c.kubeconfig_path))), cfg


def holder(cluster: EmbeddedCluster) -> str | None:
    api = client.CoordinationV1Api(config.new_client_from_config(str(cluster.kubeconfig_path)))
    try:
        lease = api.read_namespaced_lease("berth", "kube-system")
    except client.ApiException:
        return None
    return lease.spec.holder_identity if lease.spec else None


def wait(predicate: Any, timeout: float) -> float:
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        if predicate():
            return time.monotonic() - start
        time.sleep(0.1)
    raise AssertionError(f"not within {timeout}s")


def make_pods(core: client.CoreV1Api, prefix: str, n: int) -> None:
    for i in range(n):
        core.create_namespaced_pod(
            "default",
            {
                "apiVersion": "v1",
                "kind": "Pod",
                "metadata": {"name": f"{prefix}-{i}"},
                "spec": {
                    "schedulerName": "berth",
                    "containers": [{"name": "c", "image": "busybox"}],
                },
            },
        )


def scheduled_by(core: client.CoreV1Api) -> tuple[Counter[str], dict[str, str]]:
    counts: Counter[str] = Counter()
    who: dict[str, str] = {}
    for e in core.list_namespaced_event("default").items:
        if e.reason == "Scheduled":
            counts[e.involved_object.name] += 1
            who[e.involved_object.name] = e.reporting_instance
    return counts, who


def test_one_leader_binds_and_the_other_takes_over(
    api: tuple[EmbeddedCluster, client.CoreV1Api, Path], tmp_path: Path
) -> None:
    cluster, core, cfg = api
    a = start(cluster, cfg, "replica-a", tmp_path / "a.log")
    b = start(cluster, cfg, "replica-b", tmp_path / "b.log")
    procs = {"replica-a": a, "replica-b": b}
    try:
        # Two interpreters and their API dispatcher workers start at once: on a loaded machine
        # the imports alone can take tens of seconds before anyone campaigns.
        wait(lambda: holder(cluster) in procs, 90)
        leader = holder(cluster)
        assert leader is not None
        follower = next(i for i in procs if i != leader)
        make_pods(core, "first", 10)
        wait(lambda: all(p.spec.node_name for p in core.list_namespaced_pod("default").items), 20)
        counts, who = scheduled_by(core)
        # reportingInstance is upstream's `<schedulerName>-<hostname>`: both replicas run on
        # this host, so the events cannot tell them apart; the second batch is created after
        # the leader is dead, so only the follower can have bound it.
        assert set(who.values()) == {f"berth-{socket.gethostname()}"}, who
        procs[leader].send_signal(signal.SIGKILL)  # no chance to release the lease
        procs[leader].wait(10)
        make_pods(core, "second", 10)
        took = wait(lambda: holder(cluster) == follower, 15)
        assert took <= 4 + 4, f"took over after {took:.1f}s"
        wait(lambda: all(p.spec.node_name for p in core.list_namespaced_pod("default").items), 20)
        time.sleep(0.5)
        counts, who = scheduled_by(core)
        assert len(counts) == 20 and set(counts.values()) == {1}, counts
        assert procs[leader].poll() is not None and procs[follower].poll() is None
    finally:
        for p in procs.values():
            if p.poll() is None:
                p.kill()
                p.wait(10)


def test_sigterm_releases_the_lease_and_exits_zero(
    api: tuple[EmbeddedCluster, client.CoreV1Api, Path], tmp_path: Path
) -> None:
    cluster, core, cfg = api
    a = start(cluster, cfg, "replica-a", tmp_path / "a.log")
    try:
        wait(lambda: holder(cluster) == "replica-a", 90)  # a cold start on a loaded machine
        make_pods(core, "p", 3)
        wait(lambda: all(p.spec.node_name for p in core.list_namespaced_pod("default").items), 20)
        a.send_signal(signal.SIGTERM)
        assert a.wait(20) == 0, (tmp_path / "a.log").read_text()[-2000:]
        assert holder(cluster) in (None, "")
    finally:
        if a.poll() is None:
            a.kill()
            a.wait(10)
