"""`berth demo`, the README's main job: an embedded cluster, Berth scheduling on it, a workload.

Starts the embedded cluster (five nodes in two zones, one tainted, one cordoned), runs the live
scheduler against it over HTTP with the official client (exactly as against a real cluster),
creates the sample workload, shows progress while pods are placed, then a table of pod -> node
and the reason for every pod left pending.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from pathlib import Path
from typing import Any

import click

from berth.clierrors import BadInput
from berth.cluster import EmbeddedCluster
from berth.config.loader import Config
from berth.kube.client import Connection, connect, raw_body, read_json, status_message
from berth.run import Runner, RunOptions
from berth.run.queue import PARKED
from berth.safeload import InputError, load_all

TAINTED, CORDONED = "node-004", "node-005"


def load_workload(path: Path) -> list[dict[str, Any]]:
    """Namespaces, PriorityClasses and Pods from a YAML file (a List or a multi-document
    stream), in that order so each exists before what refers to it; raises InputError."""
    try:
        docs = [d for d in load_all(path.read_bytes()) if d]
    except OSError as exc:
        raise InputError(f"{path}: cannot read: {exc.strerror}") from None
    except InputError as exc:
        raise InputError(f"{path}: {exc}") from None
    items: list[dict[str, Any]] = []
    for i, d in enumerate(docs):
        found = d.get("items", []) if isinstance(d, dict) and d.get("kind") == "List" else [d]
        if not isinstance(found, list) or not all(isinstance(o, dict) for o in found):
            raise InputError(f"{path}: document {i}: not a Kubernetes object or List")
        items.extend(found)
    order = ("Namespace", "PriorityClass", "Pod")
    kept = [item for item in items if item.get("kind") in order]
    for item in kept:
        meta = item.get("metadata")
        if not isinstance(meta, dict) or not isinstance(meta.get("name"), str) or not meta["name"]:
            raise InputError(
                f"{path}: a {item['kind']} without metadata.name: metadata.name: Required value"
            )
    return sorted(kept, key=lambda i: order.index(i["kind"]))


async def _prepare_nodes(conn: Connection) -> None:
    core = conn.core
    taint = {"spec": {"taints": [{"key": "dedicated", "value": "gpu", "effect": "NoSchedule"}]}}
    for name, body in ((TAINTED, taint), (CORDONED, {"spec": {"unschedulable": True}})):
        response = await core.patch_node_without_preload_content(name=name, body=body)
        answer = await read_json(response)
        if response.status != 200:
            raise click.ClickException(f"patching {name}: {status_message(answer)}")


async def _create(conn: Connection, objects: list[dict[str, Any]]) -> None:
    from kubernetes.aio.client import SchedulingV1Api

    for pod in objects:
        if pod["kind"] == "PriorityClass":
            api = SchedulingV1Api(conn.api)
            response = await api.create_priority_class_without_preload_content(body=raw_body(pod))
        elif pod["kind"] == "Namespace":
            response = await conn.core.create_namespace_without_preload_content(body=raw_body(pod))
        else:
            ns = pod["metadata"].get("namespace", "default")
            response = await conn.core.create_namespaced_pod_without_preload_content(
                namespace=ns, body=raw_body(pod)
            )
        answer = await read_json(response)
        if response.status not in (200, 201):
            raise click.ClickException(
                f"creating {pod['kind']} {pod['metadata']['name']}: {status_message(answer)}"
            )


def _row(raw: dict[str, Any], profiles: set[str]) -> tuple[str, str, str]:
    meta, spec = raw["metadata"], raw.get("spec") or {}
    name = f"{meta.get('namespace', 'default')}/{meta['name']}"
    node = spec.get("nodeName") or ""
    why = ""
    if not node:
        for c in (raw.get("status") or {}).get("conditions") or []:
            if c.get("type") == "PodScheduled" and c.get("status") == "False":
                why = str(c.get("message") or c.get("reason"))
        if (spec.get("schedulerName") or "default-scheduler") not in profiles:
            why = f"schedulerName is {spec.get('schedulerName')!r}: not Berth's to place"
    return name, node or "<pending>", why


async def _demo(
    cluster: EmbeddedCluster,
    config: Config,
    pods: list[dict[str, Any]],
    timeout: float,
    keep: bool,
) -> list[tuple[str, str, str]]:
    conn = await connect(kubeconfig=str(cluster.kubeconfig_path))
    runner = Runner(
        config=config,
        connection=conn,
        options=RunOptions(leader_elect=False, bind_address="127.0.0.1:0", seed=1),
    )
    task = asyncio.create_task(runner.run())
    try:
        await _prepare_nodes(conn)
        profiles = {p.schedulerName for p in config.model.profiles}

        def key_of(p: dict[str, Any]) -> str:
            return f"{p['metadata'].get('namespace') or 'default'}/{p['metadata']['name']}"

        created = {key_of(p) for p in pods if p["kind"] == "Pod"}
        ours = {
            key_of(p)
            for p in pods
            if p["kind"] == "Pod"
            and (p.get("spec", {}).get("schedulerName") or "default-scheduler") in profiles
        }
        await _create(conn, pods)
        settled: set[str] = set()
        with click.progressbar(length=len(ours), label="placing pods", file=None) as bar:
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                now = set()
                for key in ours:
                    raw = runner.scheduler.pods.get(key) or {}
                    entry = runner.queue.get(key)
                    bound = bool((raw.get("spec") or {}).get("nodeName"))
                    if bound or (entry is not None and entry.where in PARKED):
                        now.add(key)
                bar.update(len(now - settled))
                settled |= now
                if settled >= ours:
                    break
                await asyncio.sleep(0.1)
        await asyncio.sleep(0.3)  # let the last conditions land
        response = await conn.core.list_pod_for_all_namespaces_without_preload_content()
        listed = await read_json(response)
        rows = sorted(_row(p, profiles) for p in listed.get("items", []) if key_of(p) in created)
        if keep:
            click.echo(_table(rows))
            _how_to(cluster)
            click.echo("berth keeps scheduling; press Ctrl-C to stop.")
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.Event().wait()
        return rows
    finally:
        runner.stop_requested.set()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(task, timeout=15)
        await conn.close()


def _table(rows: list[tuple[str, str, str]]) -> str:
    head = ("POD", "NODE", "WHY PENDING")
    w0 = max(len(r[0]) for r in [head, *rows])
    w1 = max(len(r[1]) for r in [head, *rows])
    lines = [f"{head[0]:<{w0}}  {head[1]:<{w1}}  {head[2]}"]
    lines += [f"{a:<{w0}}  {b:<{w1}}  {c}".rstrip() for a, b, c in rows]
    placed = sum(1 for r in rows if r[1] != "<pending>")
    lines.append(f"\n{placed}/{len(rows)} pods placed")
    return "\n".join(lines)


def _how_to(cluster: EmbeddedCluster) -> None:
    click.echo(
        "\nPoint kubectl at the embedded cluster:\n"
        f"  export KUBECONFIG={cluster.kubeconfig_path}\n"
        "  kubectl get pods -o wide\n"
        "  kubectl describe pod batch-huge"
    )


def run_demo(
    *,
    config: Config,
    workload: Path,
    timeout: float,
    keep_running: bool,
    kubeconfig_out: Path | None,
) -> int:
    try:
        pods = load_workload(workload)
    except InputError as exc:
        raise BadInput(str(exc)) from None
    with EmbeddedCluster(
        nodes=5, zones=2, node_cpu="8", node_memory="32Gi", kubeconfig_out=kubeconfig_out
    ) as cluster:
        click.echo(
            f"embedded cluster: {cluster.url} (5 nodes, zones a/b, {TAINTED} tainted, "
            f"{CORDONED} cordoned)"
        )
        try:
            rows = asyncio.run(_demo(cluster, config, pods, timeout, keep_running))
        except KeyboardInterrupt:
            return 0
        if not keep_running:
            click.echo(_table(rows))
            click.echo(
                "\nThe embedded cluster stops with this command. To look around with kubectl, run\n"
                "  berth demo --keep-running      (./dev demo --keep-running in a checkout)\n"
                "and follow the KUBECONFIG line it prints."
            )
    return 0
