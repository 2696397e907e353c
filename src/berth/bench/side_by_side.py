"""Berth beside kube-scheduler on the real control plane: one workload, both schedulers, one
result row each (`"cluster": "upstream"`, `"scheduler"`), and the table that compares them."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from berth.bench.kube_scheduler import UntranslatableError, kube_scheduler_configuration
from berth.bench.runner import Options, workload_config
from berth.bench.upstream import SchedulerRun, run_scheduler
from berth.bench.workload import Workload, ceiling_pods

JSON = dict[str, Any]


def _row(workload: Workload, options: Options, scheduler: str) -> JSON:
    size = options.size
    return {
        "workload": workload.name,
        "scheduler": scheduler,
        "cluster": "upstream",
        "size": size.name,
        "nodes": size.nodes,
        "running_pods": size.running,
        "pods": size.pods,
        "skipped": None,
        "throughput_pods_per_s": None,
        "seconds": None,
        "bound": None,
        "cpu_ms_per_pod": None,
        "rss_mb": None,
        "sli_p99_ms": None,
        "sli_pods": None,
        "ceiling_binds_per_s": None,
        "percent_of_ceiling": None,
        "ceiling_cpu_ms_per_bind": None,
        "verified": None,
        "verification_checks": None,
        "load_average": None,
        "watch_reconnects": None,
        "scheduled_events": None,
        "control_plane_cpu_ms_per_pod": None,
    }


def _fill(row: JSON, run: SchedulerRun) -> None:
    row.update(
        {
            "throughput_pods_per_s": round(run.throughput, 1),
            "seconds": round(run.seconds, 3),
            "bound": run.bound,
            "cpu_ms_per_pod": round(1000 * run.cpu_seconds / run.bound, 3),
            "rss_mb": run.rss_mb,
            "sli_p99_ms": None if run.sli_p99_s is None else round(1000 * run.sli_p99_s, 1),
            "sli_pods": run.sli_count,
            # a violation raised PlacementError before this point
            "verified": True,
            "verification_checks": run.verification.checks,
            "load_average": run.load_average,
            "watch_reconnects": run.watch_reconnects,
            "scheduled_events": run.scheduled_events,
            # what the scheduler's requests and watches cost the control plane, per pod
            "control_plane_cpu_ms_per_pod": {
                name: round(1000 * seconds / run.bound, 3)
                for name, seconds in run.plane_cpu_seconds.items()
            },
        }
    )


def run_side_by_side(
    workload: Workload, options: Options, *, echo: Callable[[str], None]
) -> list[JSON]:
    """Run `workload` with Berth, then kube-scheduler, each on a fresh control plane."""
    size = options.size
    started = time.monotonic()

    def say(message: str) -> None:
        echo(f"[{workload.name} upstream {time.monotonic() - started:6.1f}s] {message}")

    rows = [_row(workload, options, s) for s in options.schedulers]
    if workload.dra is not None or workload.volumes is not None:
        reason = "decisions only (run it without --cluster upstream)"
        for row in rows:
            row["skipped"] = reason
        say(f"skipped: {reason}")
        return rows
    config = workload_config(workload)
    try:
        kube_scheduler_configuration(config)
        runnable = list(options.schedulers)
    except UntranslatableError as exc:
        for row in rows:
            if row["scheduler"] == "kube-scheduler":
                row["skipped"] = str(exc)
                say(f"kube-scheduler skipped: {exc}")
        runnable = [s for s in options.schedulers if s == "berth"]
    nodes = workload.nodes(size, seed=options.seed)
    running = workload.running_pods(size, nodes)
    pending = workload.pending_pods(size)
    ceiling: float | None = None
    # the API server's own ceiling once per workload, on the first scheduler's control plane
    ceiling_on = next((r["scheduler"] for r in rows if r["scheduler"] in runnable), None)
    for row in rows:
        scheduler = row["scheduler"]
        if scheduler not in runnable:
            continue
        run = run_scheduler(
            scheduler=scheduler,
            workload=workload.name,
            config=config,
            nodes=nodes,
            running=running,
            pending=pending,
            ceiling_pods=ceiling_pods(size.pods) if scheduler == ceiling_on else None,
            ceiling_concurrency=options.ceiling_concurrency,
            timeout=options.timeout,
            progress=say,
            api_dispatcher=options.api_dispatcher,
        )
        _fill(row, run)
        if run.ceiling is not None:
            ceiling = run.ceiling
            row["ceiling_cpu_ms_per_bind"] = run.ceiling_cpu_ms_per_bind
    for row in rows:
        if ceiling is not None and row["throughput_pods_per_s"] is not None:
            row["ceiling_binds_per_s"] = round(ceiling, 1)
            row["percent_of_ceiling"] = round(100 * row["throughput_pods_per_s"] / ceiling, 1)
    return rows


def _fmt(value: Any, spec: str = "") -> str:
    return "-" if value is None else format(value, spec)


def _api_cpu(row: JSON) -> float | None:
    per_pod = row.get("control_plane_cpu_ms_per_pod")
    if not per_pod:
        return None
    return float(per_pod["kube-apiserver"] + per_pod["etcd"])


def format_side_by_side(results: list[JSON]) -> str:
    """One line per workload and scheduler; `x kube` is Berth's pods/s over kube-scheduler's."""
    header = (
        "workload",
        "scheduler",
        "nodes",
        "pods",
        "pods/s",
        "x kube",
        "CPU ms/pod",
        "apiserver+etcd ms/pod",
        "RSS MB",
        "SLI p99 ms",
        "ceiling/s",
        "% ceil",
        "verified",
    )
    kube = {
        r["workload"]: r["throughput_pods_per_s"]
        for r in results
        if r["scheduler"] == "kube-scheduler"
    }
    rows = [header]
    for r in results:
        ratio = None
        theirs = kube.get(r["workload"])
        if r["scheduler"] == "berth" and theirs and r["throughput_pods_per_s"] is not None:
            ratio = r["throughput_pods_per_s"] / theirs
        verified = "skipped" if r["skipped"] else f"{r['verification_checks']} checks"
        rows.append(
            (
                r["workload"],
                r["scheduler"],
                str(r["nodes"]),
                str(r["pods"]),
                _fmt(r["throughput_pods_per_s"], ".0f"),
                _fmt(ratio, ".2f"),
                _fmt(r["cpu_ms_per_pod"], ".2f"),
                _fmt(_api_cpu(r), ".2f"),
                _fmt(r["rss_mb"], ".0f"),
                _fmt(r["sli_p99_ms"], ".0f"),
                _fmt(r["ceiling_binds_per_s"], ".0f"),
                _fmt(r["percent_of_ceiling"], ".0f"),
                verified,
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    lines = []
    for k, row in enumerate(rows):
        cells = [
            c.ljust(w) if i < 2 else c.rjust(w)
            for i, (c, w) in enumerate(zip(row, widths, strict=True))
        ]
        lines.append("  ".join(cells))
        if k == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


__all__ = ["format_side_by_side", "run_side_by_side"]
