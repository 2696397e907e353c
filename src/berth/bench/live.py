"""End-to-end throughput and the cluster's binding ceiling, measured in one embedded cluster.

The cluster runs on a thread of this process; Berth's scheduler and the bare binding client
each run in a child process (`berth.bench.child`), so each has its own interpreter, CPU and RSS.
What is timed, for both: from the moment the child is told `go` (all pods already exist and the
scheduler's caches are synced) until the store commits the last of the N bindings. The end is
observed by a store listener in the cluster itself, so no watch or poll adds load or delay.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from berth.bench.errors import BenchError
from berth.bench.verify import Verification, verify_placements
from berth.bench.workload import CEILING_NAMESPACE, NAMESPACE
from berth.cluster import ClusterCore, EmbeddedCluster
from berth.cluster.resources import BY_PATH, NAMESPACES, NODES, PODS, ResourceType
from berth.cluster.store import Change

JSON = dict[str, Any]
Progress = Callable[[str], None]
CHUNK = 500  # objects created per call on the cluster's loop


@dataclass
class BindTracker:
    """Counts first bindings per namespace as the store commits them (runs on the cluster
    thread); `wait` blocks the caller until `expected` pods of a namespace are bound."""

    expected: dict[str, int] = field(default_factory=dict)
    bound: dict[str, int] = field(default_factory=dict)
    last: dict[str, float] = field(default_factory=dict)
    done: dict[str, threading.Event] = field(default_factory=dict)

    def expect(self, namespace: str, count: int) -> None:
        self.expected[namespace] = count
        self.bound[namespace] = 0
        self.done[namespace] = threading.Event()

    # Every committed change of a pod's spec.nodeName (to a node), in order, and every pod
    # deleted, in the namespaces expected: what the placement verification reads.
    bindings: dict[tuple[str, str], list[str]] = field(default_factory=dict)
    deleted: list[tuple[str, str]] = field(default_factory=list)

    def __call__(self, change: Change) -> None:
        if change.key != PODS.key:
            return
        meta = change.obj["metadata"]
        ns = meta.get("namespace", "")
        if ns not in self.expected:
            return
        if change.type == "DELETED":
            self.deleted.append((ns, meta["name"]))
            return
        if change.type != "MODIFIED" or change.old is None:
            return
        node = (change.obj.get("spec") or {}).get("nodeName")
        before = (change.old.get("spec") or {}).get("nodeName")
        self.changed(ns, meta["name"], node=node, before=before)

    def changed(self, ns: str, name: str, *, node: str | None, before: str | None) -> None:
        """A committed update of pod ns/name whose spec.nodeName went from `before` to `node`."""
        if node and node != before:
            self.bindings.setdefault((ns, name), []).append(node)
        if node and not before:
            self.bound[ns] += 1
            self.last[ns] = time.monotonic()
            if self.bound[ns] >= self.expected[ns]:
                self.done[ns].set()

    def wait(self, namespace: str, *, timeout: float, progress: Progress | None) -> bool:
        deadline = time.monotonic() + timeout
        event = self.done[namespace]
        while not event.wait(timeout=2.0):
            if progress is not None:
                progress(f"bound {self.bound[namespace]}/{self.expected[namespace]}")
            if time.monotonic() > deadline:
                return False
        return True


def _create_all(cluster: EmbeddedCluster, rt: Any, objects: list[JSON]) -> None:
    for start in range(0, len(objects), CHUNK):
        chunk = objects[start : start + CHUNK]

        def create(core: ClusterCore, chunk: list[JSON] = chunk) -> None:
            for obj in chunk:
                ns = obj["metadata"].get("namespace") if rt.namespaced else None
                core.api.create(rt, namespace=ns, body=obj)

        cluster.call(create)


def _resource(obj: JSON) -> ResourceType:
    group, _, version = str(obj["apiVersion"]).rpartition("/")
    for (g, v, _p), rt in BY_PATH.items():
        if (g, v) == (group, version) and rt.kind == obj["kind"]:
            return rt
    raise BenchError(f"the embedded cluster does not serve {obj['apiVersion']} {obj['kind']}")


def _create_objects(cluster: EmbeddedCluster, objects: list[JSON]) -> None:
    """Create a workload's own objects (any served kind) in order; one given with a status gets
    it through /status afterwards, as a controller would write it."""
    for start in range(0, len(objects), CHUNK):
        chunk = objects[start : start + CHUNK]

        def create(core: ClusterCore, chunk: list[JSON] = chunk) -> None:
            for obj in chunk:
                rt = _resource(obj)
                ns = obj["metadata"].get("namespace") if rt.namespaced else None
                created = core.api.create(rt, namespace=ns, body=obj).obj
                if rt.status_subresource and obj.get("status"):
                    meta = created["metadata"]
                    core.api.update(
                        rt,
                        namespace=meta.get("namespace", ""),
                        name=meta["name"],
                        body={**created, "status": obj["status"]},
                        subresource="status",
                    )

        cluster.call(create)


class Child:
    """A `python -m berth.bench.child ROLE PLAN` process and its line protocol."""

    def __init__(self, role: str, plan: JSON) -> None:
        self._plan = tempfile.NamedTemporaryFile("w", suffix=".json", delete=False)  # noqa: SIM115
        json.dump(plan, self._plan)
        self._plan.close()
        self._stderr = tempfile.TemporaryFile("w+")  # noqa: SIM115
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "berth.bench.child", role, self._plan.name],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._stderr,
            text=True,
        )

    def _stdout(self) -> IO[str]:
        assert self.proc.stdout is not None
        return self.proc.stdout

    def expect(self, event: str) -> JSON:
        while True:
            line = self._stdout().readline()
            if not line:
                self.proc.wait(timeout=30)
                self._stderr.seek(0)
                tail = self._stderr.read()[-3000:]
                raise BenchError(
                    f"child exited ({self.proc.returncode}) waiting for {event}:\n{tail}"
                )
            try:
                msg = json.loads(line)
            except ValueError:
                continue
            if isinstance(msg, dict) and msg.get("event") == event:
                return msg

    def send(self, command: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(command + "\n")
        self.proc.stdin.flush()

    def profile(self, role: str) -> subprocess.Popen[bytes] | None:
        """With BERTH_BENCH_PYSPY=DIR set, sample this child with py-spy into DIR/ROLE.txt
        (collapsed stacks) until `stop_profile`."""
        folder = os.environ.get("BERTH_BENCH_PYSPY")
        if not folder:
            return None
        out = Path(folder) / f"{role}-{self.proc.pid}.txt"
        # py-spy is installed next to this interpreter (pip install py-spy in the venv) even
        # when that venv's bin/ is not on PATH
        beside = Path(sys.executable).with_name("py-spy")
        spy = shutil.which("py-spy") or (str(beside) if beside.exists() else "py-spy")
        # --subprocesses: the API dispatcher worker is sampled too (its stacks name its pid)
        cmd = [spy, "record", "--format", "raw", "-r", "200", "--subprocesses", "-o", str(out)]
        return subprocess.Popen([*cmd, "-p", str(self.proc.pid)], stdout=subprocess.DEVNULL)

    @staticmethod
    def stop_profile(spy: subprocess.Popen[bytes] | None) -> None:
        if spy is not None:
            spy.send_signal(signal.SIGINT)
            spy.wait(timeout=60)

    def close(self) -> None:
        if self.proc.poll() is None:
            try:
                self.send("abort")
                self.proc.wait(timeout=10)
            except (OSError, subprocess.TimeoutExpired):
                self.proc.kill()
                self.proc.wait()
        Path(self._plan.name).unlink(missing_ok=True)
        self._stderr.close()


@dataclass
class LiveResult:
    throughput: float  # pods/s, Berth end to end
    seconds: float
    bound: int
    scheduler: JSON  # the scheduler child's final report (rss, binds, retries)
    ready_rss_mb: float
    dispatcher_ready_rss_mb: float  # the API dispatcher's, connected and before any call
    ceiling: float  # bindings/s, bare client
    ceiling_seconds: float
    ceiling_report: JSON
    verification: Verification  # the final placements checked (`berth.bench.verify`)


def run_live(
    *,
    workload: str,
    config: JSON,
    nodes: list[JSON],
    running: list[JSON],
    pending: list[JSON],
    ceiling_pods: list[JSON],
    ceiling_concurrency: int,
    kubelet: bool,
    timeout: float,
    progress: Progress,
    objects: list[JSON] | None = None,
    check_store: Callable[[ClusterCore], tuple[int, list[str]]] | None = None,
    api_dispatcher: str = "process",
) -> LiveResult:
    tracker = BindTracker()
    with EmbeddedCluster(nodes=0, kubelet=kubelet, watch_window=200_000) as cluster:
        cluster.call(lambda core: core.store.add_listener(tracker))
        progress(f"cluster at {cluster.url}: creating {len(nodes)} nodes")
        namespaces = [{"metadata": {"name": n}} for n in (NAMESPACE, CEILING_NAMESPACE)]
        _create_all(cluster, NAMESPACES, namespaces)
        _create_all(cluster, NODES, nodes)
        if objects:
            progress(f"creating the workload's {len(objects)} other objects")
            _create_objects(cluster, objects)
        progress(f"creating {len(running)} running pods and {len(pending)} pods to schedule")
        _create_all(cluster, PODS, running)
        _create_all(cluster, PODS, pending)
        tracker.expect(NAMESPACE, len(pending))

        # --- Berth, end to end --------------------------------------------------------------
        progress("starting the scheduler process; syncing its caches")
        plan = {
            "config": config,
            "kubeconfig": str(cluster.kubeconfig_path),
            "expect": len(pending),
            "api_dispatcher": api_dispatcher,
        }
        child = Child("scheduler", plan)
        try:
            ready = child.expect("ready")
            if ready["queued"] != len(pending):
                raise BenchError(f"scheduler queued {ready['queued']} of {len(pending)} pods")
            progress(f"caches synced ({ready['rss_mb']:.0f} MB); scheduling {len(pending)} pods")
            spy = child.profile("scheduler")
            child.send("go")
            started = float(child.expect("started")["t"])
            complete = tracker.wait(NAMESPACE, timeout=timeout, progress=progress)
            Child.stop_profile(spy)
            child.send("stop")
            report = child.expect("done")
        finally:
            child.close()
        bound = tracker.bound[NAMESPACE]
        if not complete:
            raise BenchError(f"only {bound}/{len(pending)} pods bound within {timeout:.0f}s")
        seconds = tracker.last[NAMESPACE] - started

        # --- the placements are valid, not only fast -----------------------------------------
        def snapshot(core: ClusterCore) -> tuple[list[JSON], list[JSON], list[JSON]]:
            store = core.store  # stored objects are never mutated: references are a snapshot
            return list(store.items(NODES)), list(store.items(PODS)), list(store.items(NAMESPACES))

        final_nodes, final_pods, final_namespaces = cluster.call(snapshot)
        progress(f"verifying the placements of {len(final_pods)} pods on {len(final_nodes)} nodes")
        verification = verify_placements(
            workload=workload,
            nodes=final_nodes,
            pods=final_pods,
            namespaces=final_namespaces,
            expected=[(NAMESPACE, p["metadata"]["name"]) for p in pending],
            bindings=dict(tracker.bindings),
            deleted=list(tracker.deleted),
        )
        if check_store is not None:
            checks, violations = cluster.call(check_store)
            if violations:
                from berth.bench.verify import PlacementError

                raise PlacementError(workload, violations)
            verification.checks += checks
        progress(
            f"verified: {verification.checks} checks passed in {verification.seconds:.2f}s "
            f"({verification.spread_groups} spread groups, "
            f"{verification.spread_groups_skipped} skipped)"
        )

        # --- the bare client's ceiling on the same cluster -----------------------------------
        progress(f"ceiling: {len(ceiling_pods)} bindings, {ceiling_concurrency} in flight")
        _create_all(cluster, PODS, ceiling_pods)
        tracker.expect(CEILING_NAMESPACE, len(ceiling_pods))
        plain = [n["metadata"]["name"] for n in nodes if not n["spec"].get("taints")]
        ceiling_plan = {
            "url": cluster.url,
            "namespace": CEILING_NAMESPACE,
            "pods": [p["metadata"]["name"] for p in ceiling_pods],
            "nodes": plain,
            "concurrency": ceiling_concurrency,
        }
        child = Child("ceiling", ceiling_plan)
        try:
            child.expect("ready")
            child.send("go")
            c_started = float(child.expect("started")["t"])
            c_complete = tracker.wait(CEILING_NAMESPACE, timeout=timeout, progress=progress)
            child.send("stop")
            c_report = child.expect("done")
        finally:
            child.close()
        if not c_complete:
            raise BenchError("the ceiling client left pods unbound")
        c_seconds = tracker.last[CEILING_NAMESPACE] - c_started
    return LiveResult(
        throughput=len(pending) / seconds,
        seconds=seconds,
        bound=bound,
        scheduler=report,
        ready_rss_mb=float(ready["rss_mb"]),
        dispatcher_ready_rss_mb=float(ready.get("dispatcher_rss_mb") or 0.0),
        ceiling=len(ceiling_pods) / c_seconds,
        ceiling_seconds=c_seconds,
        ceiling_report=c_report,
        verification=verification,
    )
