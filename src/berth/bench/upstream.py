"""`berth bench --cluster upstream`: one workload on the real control plane (etcd,
kube-apiserver, kube-controller-manager from `upstream/`, fake nodes, no kubelet), once with
Berth and once with kube-scheduler, each on a fresh control plane, measured the same way.

For each scheduler: the nodes and all pods are created first, then the scheduler starts and syncs
its caches while held (Berth's benchmark child waits for `go`; kube-scheduler waits for the
leader Lease the benchmark holds, as a standby replica would). The clock starts when the hold is
released (Berth: the child's `go`; kube-scheduler: the Lease's acquireTime) and stops at the
watch event of the last binding. Both schedulers' CPU time and peak RSS come from /proc, the p99
of `scheduler_pod_scheduling_sli_duration_seconds` from their own /metrics, and their placements
are checked by `berth.bench.verify`. After Berth's run the same API server's bare binding ceiling
is measured (`berth.bench.child ceiling`, over TLS).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import ssl
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import urllib3

from berth.bench.errors import BenchError
from berth.bench.kube_scheduler import LEASE_NAME, LEASE_NAMESPACE, kube_scheduler_configuration
from berth.bench.live import BindTracker, Child
from berth.bench.measure import (
    SLI_METRIC,
    cpu_seconds,
    histogram,
    peak_rss_mb,
    tree_cpu_seconds,
    tree_peak_rss_mb,
)
from berth.bench.verify import Verification, verify_placements
from berth.bench.workload import CEILING_NAMESPACE, NAMESPACE
from berth.upstream import ControlPlane, Options, UpstreamError

JSON = dict[str, Any]
Progress = Callable[[str], None]
CREATE_CONCURRENCY = 32  # creates in flight while setting up (untimed)
SCHEDULERS = ("berth", "kube-scheduler")
LEASES = f"/apis/coordination.k8s.io/v1/namespaces/{LEASE_NAMESPACE}/leases"
EVENTS_TIMEOUT = 60.0  # seconds after the last binding for the last `Scheduled` events


@dataclass
class SchedulerRun:
    """One scheduler's run on its own control plane."""

    scheduler: str
    throughput: float  # pods/s, release to the last binding
    seconds: float
    bound: int
    cpu_seconds: float  # the scheduler process's, release to the last binding
    rss_mb: float  # its peak (VmHWM)
    sli_p99_s: float | None  # from its /metrics
    sli_count: int
    verification: Verification
    ceiling: float | None = None  # the API server's bare bindings/s (after Berth's run)
    ceiling_seconds: float | None = None
    ceiling_cpu_ms_per_bind: float | None = None
    load_average: float = 0.0  # 1-minute, when the run started
    plane_cpu_seconds: dict[str, float] = field(default_factory=dict)  # per component
    scheduled_events: int = 0  # `Scheduled` events stored after the run
    watch_reconnects: int = 0  # times the benchmark's own pod watch went on from its last RV


# ----- the API, from the benchmark process -------------------------------------------------------
def _ssl_context(plane: ControlPlane) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=str(plane.ca_path))
    pair = plane.admin_pair
    context.load_cert_chain(str(pair.cert), str(pair.key))
    return context


async def _create_all(plane: ControlPlane, batches: list[tuple[str, list[JSON]]]) -> None:
    """POST every object (path, bodies per batch, batches in order), CREATE_CONCURRENCY at once."""
    connector = aiohttp.TCPConnector(limit=CREATE_CONCURRENCY, ssl=_ssl_context(plane))
    headers = {"Content-Type": "application/json", "Accept": "application/json"}
    async with aiohttp.ClientSession(plane.url, connector=connector, headers=headers) as http:
        for path_of, bodies in batches:
            work = iter(bodies)

            async def worker(path_of: str = path_of, work: Any = work) -> None:
                for body in work:
                    ns = body["metadata"].get("namespace", "")
                    path = path_of.format(namespace=ns)
                    async with http.post(path, data=orjson.dumps(body)) as resp:
                        text = await resp.read()
                        if resp.status != 201:
                            raise BenchError(
                                f"creating {path}/{body['metadata']['name']}: {resp.status} "
                                f"{text[:300].decode(errors='replace')}"
                            )

            await asyncio.gather(*(worker() for _ in range(CREATE_CONCURRENCY)))


def _call(plane: ControlPlane, method: str, path: str, body: Any = None) -> Any:
    code, answer = plane.request(method, path, body, timeout=120)
    if code not in (200, 201):
        raise BenchError(f"{method} {path}: {code} {str(answer)[:300]}")
    return answer


class PodWatch:
    """A watch on every pod from a resourceVersion, on a thread, feeding a BindTracker with the
    spec.nodeName changes it sees; `received` is when each event arrived (time.monotonic)."""

    def __init__(self, plane: ControlPlane, tracker: BindTracker) -> None:
        self._plane = plane
        self._tracker = tracker
        self._nodes: dict[tuple[str, str], str | None] = {}
        self.error: str | None = None
        self.reconnects = 0
        self._stop = threading.Event()
        self._response: Any = None
        pair = plane.admin_pair
        self._http = urllib3.PoolManager(
            cert_file=str(pair.cert), key_file=str(pair.key), ca_certs=str(plane.ca_path)
        )
        listing = _call(plane, "GET", "/api/v1/pods?limit=1")
        self._rv = listing["metadata"]["resourceVersion"]
        self._thread = threading.Thread(target=self._run, name="bench-pod-watch", daemon=True)

    def _open(self) -> Any:
        response = self._http.request(
            "GET",
            f"{self._plane.url}/api/v1/pods?watch=true&resourceVersion={self._rv}"
            "&allowWatchBookmarks=true&timeoutSeconds=3600",
            preload_content=False,
            timeout=urllib3.Timeout(connect=10, read=None),
            retries=False,
        )
        if response.status != 200:
            raise BenchError(f"watching pods from {self._rv}: {response.status}")
        return response

    def start(self) -> None:
        self._response = self._open()
        self._thread.start()

    def _run(self) -> None:
        # kube-apiserver closes a watch whose reader falls behind (its watch cache will not
        # buffer without bound), which happens when this process is short of CPU on a busy
        # machine: go on from the last resourceVersion seen, as an informer does.
        while True:
            buffer = b""
            try:
                for chunk in self._response.stream(1 << 16):
                    buffer += chunk
                    *lines, buffer = buffer.split(b"\n")
                    for line in lines:
                        if line.strip():
                            self._event(orjson.loads(line))
            except Exception as exc:
                if not self._stop.is_set():
                    self.error = f"the pod watch failed: {exc}"
                return
            if self._stop.is_set():
                return
            self.reconnects += 1
            try:
                self._response.release_conn()
                self._response = self._open()
            except Exception as exc:
                self.error = f"the pod watch could not go on: {exc}"
                return

    def _event(self, event: JSON) -> None:
        kind = event.get("type")
        obj = event.get("object") or {}
        if kind == "ERROR":
            self.error = f"the pod watch failed: {obj.get('message')}"
            return
        meta = obj.get("metadata") or {}
        self._rv = meta.get("resourceVersion") or self._rv
        if kind not in ("ADDED", "MODIFIED", "DELETED"):
            return
        ns, name = meta.get("namespace", ""), meta.get("name", "")
        if ns not in self._tracker.expected:
            return
        if kind == "DELETED":
            self._tracker.deleted.append((ns, name))
            return
        node = (obj.get("spec") or {}).get("nodeName")
        before = self._nodes.get((ns, name))
        self._nodes[(ns, name)] = node
        self._tracker.changed(ns, name, node=node, before=before)

    def wait(self, namespace: str, *, timeout: float, progress: Progress) -> None:
        deadline = time.monotonic() + timeout
        done = self._tracker.done[namespace]
        while not done.wait(timeout=2.0):
            if self.error:
                raise BenchError(self.error)
            progress(f"bound {self._tracker.bound[namespace]}/{self._tracker.expected[namespace]}")
            if time.monotonic() > deadline:
                raise BenchError(
                    f"only {self._tracker.bound[namespace]}/{self._tracker.expected[namespace]} "
                    f"pods bound within {timeout:.0f}s"
                )

    def stop(self) -> None:
        self._stop.set()
        if self._response is not None:
            with contextlib.suppress(Exception):
                self._response.shutdown()
            self._response.release_conn()
        self._thread.join(timeout=10)
        self._http.clear()


def _scrape(url: str, *, ca: Path | None, expect: int) -> tuple[float | None, int]:
    """The SLI histogram's p99 and count from `url` (/metrics), once it counts `expect` pods:
    a binding's watch event can arrive a moment before the scheduler records the pod."""
    http = urllib3.PoolManager(ca_certs=str(ca) if ca else None)
    deadline = time.monotonic() + 10
    while True:
        response = http.request("GET", url, timeout=30, retries=False)
        if response.status != 200:
            raise BenchError(f"{url}: {response.status}")
        found = histogram(response.data.decode(), SLI_METRIC)
        count = int(found.count) if found else 0
        if count >= expect or time.monotonic() > deadline:
            return (found.quantile(0.99) if found else None), count
        time.sleep(0.2)


EVENTS = f"/apis/events.k8s.io/v1/namespaces/{NAMESPACE}/events"


def _events_written(plane: ControlPlane) -> int:
    """How many events the namespace holds, cheaply: a list of one, plus the count of the rest
    kube-apiserver reports (`remainingItemCount`)."""
    answer = _call(plane, "GET", f"{EVENTS}?limit=1")
    return len(answer["items"]) + int(answer["metadata"].get("remainingItemCount") or 0)


def _drain_events(plane: ControlPlane, *, expect: int, timeout: float, say: Progress) -> None:
    """Wait until `expect` events are stored (or `timeout`): both schedulers write a `Scheduled`
    event per pod off their binding path, so some can still be on their way at the last
    binding. The CPU per pod is read after this, so it covers all the work of every pod."""
    deadline = time.monotonic() + timeout
    while (written := _events_written(plane)) < expect:
        if time.monotonic() > deadline:
            say(f"{written}/{expect} events written within {timeout:.0f}s of the last binding")
            return
        time.sleep(0.25)


def _load_average() -> float:
    with open("/proc/loadavg") as f:
        return float(f.read().split()[0])


# ----- one scheduler on one fresh control plane ---------------------------------------------------
def run_scheduler(
    *,
    scheduler: str,
    workload: str,
    config: JSON,
    nodes: list[JSON],
    running: list[JSON],
    pending: list[JSON],
    ceiling_pods: list[JSON] | None,
    ceiling_concurrency: int,
    timeout: float,
    progress: Progress,
    binary: Path | None = None,
    api_dispatcher: str = "process",
) -> SchedulerRun:
    """Run `scheduler` ("berth" or "kube-scheduler") on a fresh control plane; with
    `ceiling_pods`, measure the API server's bare binding ceiling after it."""

    def say(message: str) -> None:
        progress(f"{scheduler}: {message}")

    load = _load_average()
    say(f"starting etcd, kube-apiserver and kube-controller-manager (load average {load:.2f})")
    try:
        plane = ControlPlane(Options(), binary=binary).start()
    except UpstreamError as exc:
        raise BenchError(f"the real control plane did not start: {exc}") from None
    try:
        say(f"creating {len(nodes)} nodes, {len(running)} running pods, {len(pending)} to schedule")
        started = time.monotonic()
        namespaces = [{"metadata": {"name": n}} for n in (NAMESPACE, CEILING_NAMESPACE)]
        asyncio.run(
            _create_all(
                plane,
                [
                    ("/api/v1/namespaces", namespaces),
                    ("/api/v1/nodes", nodes),
                    ("/api/v1/namespaces/{namespace}/pods", running + pending),
                ],
            )
        )
        say(f"created in {time.monotonic() - started:.1f}s")
        tracker = BindTracker()
        tracker.expect(NAMESPACE, len(pending))
        tracker.expect(CEILING_NAMESPACE, len(ceiling_pods or ()))
        watch = PodWatch(plane, tracker)
        watch.start()
        try:
            if scheduler == "berth":
                measured = _run_berth(
                    plane, config, pending, watch, tracker, timeout, say, api_dispatcher
                )
            else:
                measured = _run_kube_scheduler(plane, config, pending, watch, tracker, timeout, say)
            say(f"verifying the placements of {len(pending)} pods")
            pods = _call(plane, "GET", "/api/v1/pods")["items"]
            verification = verify_placements(
                workload=workload,
                nodes=_call(plane, "GET", "/api/v1/nodes")["items"],
                pods=pods,
                namespaces=_call(plane, "GET", "/api/v1/namespaces")["items"],
                expected=[(NAMESPACE, p["metadata"]["name"]) for p in pending],
                bindings=dict(tracker.bindings),
                deleted=list(tracker.deleted),
            )
            say(f"verified: {verification.checks} checks passed in {verification.seconds:.2f}s")
            # Both write a `Scheduled` event per pod, asynchronously (kube-scheduler's event
            # broadcaster drops events when 1,000 are queued): how many got written.
            events = _call(plane, "GET", EVENTS)
            scheduled_events = sum(1 for e in events["items"] if e.get("reason") == "Scheduled")
            run = SchedulerRun(
                scheduler=scheduler,
                throughput=len(pending) / measured.seconds,
                seconds=measured.seconds,
                bound=tracker.bound[NAMESPACE],
                cpu_seconds=measured.cpu,
                rss_mb=measured.rss_mb,
                sli_p99_s=measured.sli_p99_s,
                sli_count=measured.sli_count,
                plane_cpu_seconds=measured.plane_cpu,
                scheduled_events=scheduled_events,
                verification=verification,
                load_average=load,
            )
            if ceiling_pods:
                started, cpu_per_bind = _ceiling(
                    plane, nodes, ceiling_pods, ceiling_concurrency, watch, timeout, say
                )
                run.ceiling_seconds = tracker.last[CEILING_NAMESPACE] - started
                run.ceiling = len(ceiling_pods) / run.ceiling_seconds
                run.ceiling_cpu_ms_per_bind = cpu_per_bind
                say(f"ceiling {run.ceiling:.0f} bindings/s")
            run.watch_reconnects = watch.reconnects
        finally:
            watch.stop()
    finally:
        plane.stop()
    return run


@dataclass(frozen=True)
class Measured:
    seconds: float  # release to the last binding
    cpu: float  # the scheduler's CPU seconds meanwhile
    rss_mb: float
    sli_p99_s: float | None
    sli_count: int
    plane_cpu: dict[str, float]  # each component's CPU seconds meanwhile


def _since(before: dict[str, float], after: dict[str, float]) -> dict[str, float]:
    return {name: round(after[name] - before[name], 3) for name in after}


COMPONENTS = ("kube-apiserver", "etcd", "kube-controller-manager")


def _components_cpu(plane: ControlPlane) -> dict[str, float]:
    """CPU seconds so far of each control-plane component: what a scheduler's requests and
    watches cost the API server and etcd shows here."""
    return {name: cpu_seconds(plane.pid(name)) for name in COMPONENTS}


def _run_berth(
    plane: ControlPlane,
    config: JSON,
    pending: list[JSON],
    watch: PodWatch,
    tracker: BindTracker,
    timeout: float,
    say: Progress,
    api_dispatcher: str,
) -> Measured:
    say(f"starting Berth (held until its caches are synced; API calls: {api_dispatcher})")
    plan = {
        "config": config,
        "kubeconfig": str(plane.kubeconfig_path),
        "expect": len(pending),
        "metrics": True,
        "api_dispatcher": api_dispatcher,
    }
    child = Child("scheduler", plan)
    try:
        ready = child.expect("ready")
        if ready["queued"] != len(pending):
            raise BenchError(f"Berth queued {ready['queued']} of {len(pending)} pods")
        say(
            f"synced ({ready['rss_mb']:.0f} MB, API dispatcher "
            f"{float(ready.get('dispatcher_rss_mb') or 0):.0f} MB); scheduling {len(pending)} pods"
        )
        pid = child.proc.pid
        spy = child.profile("scheduler")
        # Berth's CPU and memory are its scheduler process's and its API dispatcher's
        cpu_before, plane_before = tree_cpu_seconds(pid), _components_cpu(plane)
        child.send("go")
        started = float(child.expect("started")["t"])
        watch.wait(NAMESPACE, timeout=timeout, progress=say)
        _drain_events(plane, expect=len(pending), timeout=EVENTS_TIMEOUT, say=say)
        cpu = tree_cpu_seconds(pid) - cpu_before
        plane_cpu = _since(plane_before, _components_cpu(plane))
        Child.stop_profile(spy)
        rss = tree_peak_rss_mb(pid)
        own_rss = peak_rss_mb(pid)
        url = f"http://127.0.0.1:{ready['metrics_port']}/metrics"
        p99, count = _scrape(url, ca=None, expect=len(pending))
        child.send("stop")
        done = child.expect("done")
    finally:
        child.close()
    seconds = tracker.last[NAMESPACE] - started
    say(
        f"{len(pending) / seconds:.0f} pods/s, {1000 * cpu / len(pending):.2f} ms CPU per pod "
        f"({1000 * float(done['dispatcher_cpu_seconds']) / len(pending):.2f} of it the API "
        f"dispatcher's), RSS {own_rss:.0f} + {rss - own_rss:.0f} MB"
    )
    return Measured(seconds, cpu, rss, p99, count, plane_cpu)


def _run_kube_scheduler(
    plane: ControlPlane,
    config: JSON,
    pending: list[JSON],
    watch: PodWatch,
    tracker: BindTracker,
    timeout: float,
    say: Progress,
) -> Measured:
    # Hold the leader Lease, so that kube-scheduler syncs its caches and queues every pod but
    # schedules nothing until the benchmark deletes it.
    now = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    hold = {
        "apiVersion": "coordination.k8s.io/v1",
        "kind": "Lease",
        "metadata": {"name": LEASE_NAME, "namespace": LEASE_NAMESPACE},
        "spec": {
            "holderIdentity": "berth-bench",
            "leaseDurationSeconds": 3600,
            "acquireTime": now,
            "renewTime": now,
        },
    }
    _call(plane, "POST", LEASES, hold)
    say("starting kube-scheduler (a standby until the benchmark releases the leader Lease)")
    try:
        port = plane.start_scheduler(kube_scheduler_configuration(config))
    except UpstreamError as exc:
        raise BenchError(f"kube-scheduler did not start: {exc}") from None
    pid = plane.pid("kube-scheduler")
    say(f"synced ({peak_rss_mb(pid):.0f} MB); releasing the Lease")
    cpu_before, plane_before = cpu_seconds(pid), _components_cpu(plane)
    offset = time.time() - time.monotonic()
    _call(plane, "DELETE", f"{LEASES}/{LEASE_NAME}")
    watch.wait(NAMESPACE, timeout=timeout, progress=say)
    _drain_events(plane, expect=len(pending), timeout=EVENTS_TIMEOUT, say=say)
    cpu = cpu_seconds(pid) - cpu_before
    plane_cpu = _since(plane_before, _components_cpu(plane))
    rss = peak_rss_mb(pid)
    lease = _call(plane, "GET", f"{LEASES}/{LEASE_NAME}")
    acquired = datetime.datetime.strptime(lease["spec"]["acquireTime"], "%Y-%m-%dT%H:%M:%S.%f%z")
    started = acquired.timestamp() - offset
    p99, count = _scrape(f"https://127.0.0.1:{port}/metrics", ca=plane.ca_path, expect=len(pending))
    seconds = tracker.last[NAMESPACE] - started
    say(f"{len(pending) / seconds:.0f} pods/s, {1000 * cpu / len(pending):.2f} ms CPU per pod")
    return Measured(seconds, cpu, rss, p99, count, plane_cpu)


def _ceiling(
    plane: ControlPlane,
    nodes: list[JSON],
    pods: list[JSON],
    concurrency: int,
    watch: PodWatch,
    timeout: float,
    say: Progress,
) -> tuple[float, float]:
    """Bind `pods` with the bare client; returns when it started and its CPU ms per binding."""
    say(f"ceiling: creating {len(pods)} pods, then binding them, {concurrency} in flight")
    asyncio.run(_create_all(plane, [("/api/v1/namespaces/{namespace}/pods", pods)]))
    pair = plane.admin_pair
    plan = {
        "url": plane.url,
        "tls": {"ca": str(plane.ca_path), "cert": str(pair.cert), "key": str(pair.key)},
        "namespace": CEILING_NAMESPACE,
        "pods": [p["metadata"]["name"] for p in pods],
        "nodes": [n["metadata"]["name"] for n in nodes if not n["spec"].get("taints")],
        "concurrency": concurrency,
    }
    child = Child("ceiling", plan)
    try:
        child.expect("ready")
        child.send("go")
        started = float(child.expect("started")["t"])
        watch.wait(CEILING_NAMESPACE, timeout=timeout, progress=say)
        child.send("stop")
        report = child.expect("done")
    finally:
        child.close()
    if report["bind_failures"]:
        raise BenchError(f"the ceiling client's bindings failed {report['bind_failures']} times")
    return started, round(1000 * report["cpu_seconds"] / len(pods), 3)


__all__ = ["SCHEDULERS", "SchedulerRun", "run_scheduler"]
