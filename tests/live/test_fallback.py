"""The fallback to the default scheduler, end to end on both control planes: `berth webhook`
registered with the API server (a MutatingWebhookConfiguration over HTTPS with its caBundle,
failurePolicy Ignore), two `berth run` replicas with leader election, and a default scheduler
(upstream: the real kube-scheduler; embedded: a second `berth run` whose one profile is named
default-scheduler, since the embedded cluster has no kube-scheduler).

One scenario, every failure mode in turn: Berth up, its leader hung (SIGSTOP), every replica
killed, Berth back, the webhook killed, both down. Each pod must end bound by the scheduler its
schedulerName names, and none may be left pending. With BERTH_FALLBACK_FIGURES=FILE the measured
figures are written there as JSON (docs/running.md quotes them).
"""

from __future__ import annotations

import json
import os
import signal
import socket
import ssl
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client, config

from berth.webhook.registration import webhook_configuration
from tests.upstream import SERVERS, clusters

LEASE = {"leaseDuration": "4s", "renewDeadline": "3s", "retryPeriod": "1s"}
LABELS = {"app": "fallback"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(params=SERVERS)
def cluster(request: pytest.FixtureRequest) -> Iterator[Any]:
    yield from clusters(request, nodes=3, zones=2, cpu="8", memory="32Gi")


class Scenario:
    """The processes of one run and what was seen of the pods."""

    def __init__(self, cluster: Any, tmp: Path) -> None:
        self.cluster = cluster
        self.tmp = tmp
        self.core = client.CoreV1Api(config.new_client_from_config(str(cluster.kubeconfig_path)))
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self.created: dict[str, float] = {}
        self.bound: dict[str, float] = {}
        self.pods: dict[str, Any] = {}
        self.max_pending = 0
        self._stop = threading.Event()
        self._watcher = threading.Thread(target=self._watch, daemon=True)
        self.berth_cfg = tmp / "berth.yaml"
        self.berth_cfg.write_text(
            yaml.safe_dump(
                {
                    "apiVersion": "berth.io/v1alpha1",
                    "kind": "BerthConfiguration",
                    "leaderElection": LEASE,
                    "podInitialBackoffSeconds": 1,
                    "podMaxBackoffSeconds": 2,
                    "webhook": {
                        "rules": [
                            {"namespaces": ["default"], "podSelector": {"matchLabels": LABELS}}
                        ]
                    },
                }
            )
        )

    # -- processes -----------------------------------------------------------------------------

    def spawn(self, name: str, args: list[str]) -> subprocess.Popen[bytes]:
        proc = subprocess.Popen(
            [sys.executable, "-m", "berth", *args, "--log-format", "json"],
            stdout=subprocess.DEVNULL,
            stderr=(self.tmp / f"{name}.log").open("ab"),
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        self.procs[name] = proc
        return proc

    def berth(self, name: str) -> str:
        """A `berth run` replica whose identity is the address of its endpoints."""
        address = f"127.0.0.1:{free_port()}"
        self.spawn(
            name,
            [
                "run",
                "--config",
                str(self.berth_cfg),
                "--kubeconfig",
                str(self.cluster.kubeconfig_path),
                "--bind-address",
                address,
                "--identity",
                address,
            ],
        )
        return address

    def webhook(self) -> None:
        port = free_port()
        certs = self.tmp / "webhook-tls"
        common = ["--config", str(self.berth_cfg), "--bind-address", f"127.0.0.1:{port}"]
        common += ["--cert-dir", str(certs)]
        printed = subprocess.run(
            [sys.executable, "-m", "berth", "webhook", *common, "--print-webhook-configuration"],
            check=True,
            capture_output=True,
            timeout=60,
        )
        registration = yaml.safe_load(printed.stdout)
        expected = webhook_configuration(
            url=f"https://127.0.0.1:{port}/mutate", ca_bundle=(certs / "ca.crt").read_bytes()
        )
        assert registration == expected
        self.spawn(
            "webhook", ["webhook", *common, "--kubeconfig", str(self.cluster.kubeconfig_path)]
        )
        self.webhook_url = f"https://127.0.0.1:{port}"
        self.webhook_ca = certs / "ca.crt"
        wait(lambda: self._webhook_get("/readyz") == "ok", 30, "the webhook to be ready")
        api = client.AdmissionregistrationV1Api(self.core.api_client)
        api.create_mutating_webhook_configuration(registration)

    def _webhook_get(self, path: str) -> str | None:
        context = ssl.create_default_context(cafile=str(self.webhook_ca))
        try:
            with urllib.request.urlopen(self.webhook_url + path, context=context, timeout=5) as r:
                return str(r.read().decode())
        except OSError:
            return None

    def default_scheduler(self) -> None:
        if getattr(self.cluster, "kind", "embedded") == "upstream":
            self.cluster.plane.start_scheduler()
            return
        cfg = self.tmp / "default-scheduler.yaml"
        cfg.write_text(
            yaml.safe_dump(
                {
                    "apiVersion": "berth.io/v1alpha1",
                    "kind": "BerthConfiguration",
                    "leaderElection": {"leaderElect": False},
                    "profiles": [{"schedulerName": "default-scheduler"}],
                }
            )
        )
        self.spawn(
            "default-scheduler",
            [
                "run",
                "--config",
                str(cfg),
                "--kubeconfig",
                str(self.cluster.kubeconfig_path),
                "--bind-address",
                "127.0.0.1:0",
            ],
        )

    def kill(self, name: str, sig: int = signal.SIGKILL) -> float:
        proc = self.procs[name]
        proc.send_signal(sig)
        if sig == signal.SIGKILL:
            proc.wait(10)
        return time.monotonic()

    def stop_all(self) -> None:
        self._stop.set()
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.kill()
                proc.wait(10)
        if getattr(self.cluster, "kind", "embedded") == "upstream":
            self.cluster.plane.stop_scheduler()

    # -- pods ----------------------------------------------------------------------------------

    def _watch(self) -> None:
        while not self._stop.is_set():
            try:
                items = self.core.list_namespaced_pod(
                    "default", label_selector="app=fallback"
                ).items
            except Exception:  # a poll that fails is retried at the next tick
                time.sleep(0.1)
                continue
            now = time.monotonic()
            pending = 0
            for p in items:
                self.pods[p.metadata.name] = p
                if p.spec.node_name:
                    self.bound.setdefault(p.metadata.name, now)
                else:
                    pending += 1
            self.max_pending = max(self.max_pending, pending)
            time.sleep(0.1)

    def create(self, name: str) -> Any:
        body = {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": name, "labels": LABELS},
            "spec": {
                "containers": [
                    {
                        "name": "c",
                        "image": "busybox:1.36",
                        "resources": {"requests": {"cpu": "50m"}},
                    }
                ]
            },
        }
        started = time.monotonic()
        pod = self.core.create_namespaced_pod("default", body)
        self.created[name] = started
        return pod

    def batch(self, prefix: str, n: int) -> list[Any]:
        return [self.create(f"{prefix}-{i}") for i in range(n)]

    def until_routed(self, prefix: str, to: str, timeout: float) -> tuple[float, list[Any]]:
        """Create a pod every 0.2 s until one is routed `to`; (seconds, the pods created)."""
        start = time.monotonic()
        made = []
        while time.monotonic() - start < timeout:
            pod = self.create(f"{prefix}-{len(made)}")
            made.append(pod)
            if pod.spec.scheduler_name == to:
                return self.created[pod.metadata.name] - start, made
            time.sleep(0.2)
        raise AssertionError(f"no pod routed to {to} within {timeout}s")

    def wait_bound(self, names: list[str], timeout: float = 60) -> None:
        wait(lambda: all(n in self.bound for n in names), timeout, f"{len(names)} pods bound")

    def settle(self, timeout: float = 60) -> None:
        """Every pod so far bound and its Scheduled event written: events are sent after the
        binding, so a scheduler killed right after binding may never write its own."""
        made = list(self.created)
        self.wait_bound(made, timeout)
        wait(lambda: set(made) <= set(binders(self.core)), timeout, "the Scheduled events")


def wait(predicate: Callable[[], bool], timeout: float, what: str) -> float:
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        if predicate():
            return time.monotonic() - start
        time.sleep(0.1)
    raise AssertionError(f"{what}: not within {timeout}s")


def holder(core: client.CoreV1Api) -> str | None:
    api = client.CoordinationV1Api(core.api_client)
    try:
        return api.read_namespaced_lease("berth", "kube-system").spec.holder_identity
    except client.ApiException:
        return None


def names(pods: list[Any]) -> list[str]:
    return [p.metadata.name for p in pods]


def routed(pod: Any) -> str | None:
    return (pod.metadata.annotations or {}).get("berth.io/routed-to")


def binders(core: client.CoreV1Api) -> dict[str, set[str]]:
    """Pod name -> the reportingController of every Scheduled event about it."""
    api = client.EventsV1Api(core.api_client)
    out: dict[str, set[str]] = {}
    for e in api.list_namespaced_event("default").items:
        if e.reason == "Scheduled":
            out.setdefault(e.regarding.name, set()).add(e.reporting_controller)
    return out


def test_no_pod_is_orphaned_when_berth_or_the_webhook_is_down(cluster: Any, tmp_path: Path) -> None:
    s = Scenario(cluster, tmp_path)
    figures: dict[str, Any] = {"server": getattr(cluster, "kind", "embedded")}
    try:
        s.default_scheduler()
        s.webhook()
        a, b = s.berth("berth-a"), s.berth("berth-b")
        s._watcher.start()
        wait(lambda: holder(s.core) in (a, b), 30, "a Berth leader")
        # The webhook sees the leader within one check interval.
        s.until_routed("warmup", "berth", 20)

        # 1. Berth up: selected pods go to Berth and are bound by it.
        up = s.batch("up", 4)
        assert {p.spec.scheduler_name for p in up} == {"berth"}
        assert {routed(p) for p in up} == {"berth"}

        # 2. The leader hangs (SIGSTOP): its /readyz stops answering at once, its Lease expires
        # within leaseDuration and the standby takes over; meanwhile pods go to default-scheduler.
        s.settle()
        leader = holder(s.core)
        hung = "berth-a" if leader == a else "berth-b"
        t0 = s.kill(hung, signal.SIGSTOP)
        figures["hung_leader_to_fallback_s"], gap1 = s.until_routed("hung", "default-scheduler", 20)
        figures["hung_leader_pods_routed_to_berth_before_fallback"] = sum(
            1 for p in gap1 if p.spec.scheduler_name == "berth"
        )
        s.until_routed("takeover", "berth", 30)
        figures["hung_leader_to_standby_routing_s"] = round(time.monotonic() - t0, 2)
        assert holder(s.core) != leader
        s.kill(hung)

        # 3. Every replica killed: within the lease duration new pods go to default-scheduler.
        survivor = "berth-b" if hung == "berth-a" else "berth-a"
        s.settle()
        t0 = s.kill(survivor)
        figures["killed_to_fallback_s"], gap3 = s.until_routed("down", "default-scheduler", 20)
        assert figures["killed_to_fallback_s"] <= 4 + 3, figures
        figures["killed_pods_routed_to_berth_before_fallback"] = sum(
            1 for p in gap3 if p.spec.scheduler_name == "berth"
        )
        down = s.batch("down-batch", 4)
        assert {p.spec.scheduler_name for p in down} == {"default-scheduler"}
        reasons = {(p.metadata.annotations or {}).get("berth.io/routing-reason", "") for p in down}
        assert all(r.startswith("Berth unavailable: ") for r in reasons), reasons
        s.wait_bound(names(down))

        # 4. Berth back: new pods go to Berth again; the pods routed to it while it was down are
        # bound now.
        t0 = time.monotonic()
        c = s.berth("berth-c")
        wait(lambda: holder(s.core) == c, 30, "berth-c leading")
        s.until_routed("back", "berth", 20)
        figures["restart_to_berth_routing_s"] = round(time.monotonic() - t0, 2)
        back = s.batch("back-batch", 4)
        assert {p.spec.scheduler_name for p in back} == {"berth"}
        s.wait_bound(names(back + gap3))

        # 5. The webhook killed, Berth up: pods are still created (failurePolicy Ignore) and the
        # default scheduler places them.
        s.kill("webhook")
        started = time.monotonic()
        no_webhook = s.batch("nowebhook", 4)
        figures["create_with_webhook_down_s"] = round((time.monotonic() - started) / 4, 3)
        assert {p.spec.scheduler_name for p in no_webhook} == {"default-scheduler"}
        assert {routed(p) for p in no_webhook} == {None}

        # 6. Both down.
        s.settle()
        s.kill("berth-c")
        both = s.batch("bothdown", 4)
        assert {p.spec.scheduler_name for p in both} == {"default-scheduler"}

        everything = list(s.created)
        s.wait_bound(everything)
        time.sleep(1.0)  # the last Scheduled events
        who = binders(s.core)
        for name in everything:
            pod = s.pods[name]
            assert who.get(name) == {pod.spec.scheduler_name}, (name, who.get(name))
        waits = {n: s.bound[n] - s.created[n] for n in everything}
        figures.update(
            pods=len(everything),
            pending_at_end=sum(1 for n in everything if not s.pods[n].spec.node_name),
            max_pending_seen=s.max_pending,
            max_wait_routed_to_default_s=round(
                max(w for n, w in waits.items() if s.pods[n].spec.scheduler_name != "berth"), 2
            ),
            max_wait_outage_pods_s=round(max(waits[n] for n in names(gap3)), 2),
            max_wait_hung_leader_pods_s=round(max(waits[n] for n in names(gap1)), 2),
        )
        assert figures["pending_at_end"] == 0
        print(json.dumps(figures))
        out = os.environ.get("BERTH_FALLBACK_FIGURES")
        if out:
            with open(out, "a") as f:
                f.write(json.dumps(figures) + "\n")
    finally:
        s.stop_all()
