"""`berth bench`: run workloads, print a table, optionally write one JSON object per workload.

For each workload: 1. decision latency in-process on a loaded state (`decision.py`);
2. Berth end to end against the embedded cluster, and 3. the cluster's own binding ceiling in the
same cluster (`live.py`); 4. the scheduler process's peak RSS (from the scheduler child).
"""

from __future__ import annotations

import gc
import json
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from berth.bench.decision import Verify, measure_decisions, percentiles
from berth.bench.live import run_live
from berth.bench.workload import (
    CEILING_NAMESPACE,
    DEFAULT_CEILING_CONCURRENCY,
    NAMESPACE,
    SIZES,
    Size,
    Workload,
    ceiling_pods,
)
from berth.config import parse_config

JSON = dict[str, Any]

# What the scheduler runs with: no client-side throttling (qps/burst far above what the cluster
# can serve), no leader election. Workloads add profiles, metric sources, and so on.
BASE_CONFIG: JSON = {
    "leaderElection": {"leaderElect": False},
    "clientConnection": {"qps": 1_000_000, "burst": 256},
}


@dataclass
class Options:
    size: Size
    live: bool = True
    kubelet: bool = False
    ceiling_concurrency: int = DEFAULT_CEILING_CONCURRENCY
    timeout: float = 600.0
    seed: int = 1
    cluster: str = "embedded"  # or "upstream": the real control plane, Berth and kube-scheduler
    schedulers: tuple[str, ...] = ("berth", "kube-scheduler")  # upstream: which, in this order
    api_dispatcher: str = "process"  # Berth's API calls: in a worker process, or "inline"


def workload_config(workload: Workload) -> JSON:
    config = {**BASE_CONFIG, **workload.config}
    config["clientConnection"] = {
        **BASE_CONFIG["clientConnection"],
        **(workload.config.get("clientConnection") or {}),
    }
    return config


def run_workload(workload: Workload, options: Options, *, echo: Callable[[str], None]) -> JSON:
    size = options.size
    started = time.monotonic()

    def say(message: str) -> None:
        echo(f"[{workload.name} {time.monotonic() - started:6.1f}s] {message}")

    config_raw = workload_config(workload)
    config = parse_config(config_raw)
    nodes = workload.nodes(size, seed=options.seed)
    running = workload.running_pods(size, nodes)
    pending = workload.pending_pods(size)
    # DRA and volume workloads: their objects, the pods' claims, and a check of the outcome
    objects: list[JSON] = []
    verify: Verify | None = None
    if workload.dra is not None:
        from berth.bench import dra

        pending, claims = dra.with_claims(workload.dra, pending)
        objects = [
            *dra.cluster_objects(workload.dra, nodes, init_claims=size.running, namespace="init"),
            *claims,
        ]
        verify = dra.verify_allocations
    if workload.volumes is not None:
        from berth.bench import volumes

        pending, claims = volumes.with_claims(workload.volumes, pending)
        objects = [*objects, *volumes.cluster_objects(workload.volumes, nodes), *claims]
        verify = volumes.verify_volumes

    say(f"decisions: {size.nodes} nodes, {size.running} running pods, {size.pods} to decide")

    def decided(done: int, total: int) -> None:
        say(f"decided {done}/{total}")

    decision = measure_decisions(
        config=config,
        nodes=nodes,
        running=running,
        pending=pending,
        namespaces=[NAMESPACE, CEILING_NAMESPACE],
        progress=decided,
        objects=objects,
        verify=verify,
    )
    if decision.violations:
        from berth.bench.verify import PlacementError

        raise PlacementError(workload.name, decision.violations)
    gc.collect()
    result: JSON = {
        "workload": workload.name,
        "scheduler": "berth",
        "cluster": "embedded",
        "size": size.name,
        "nodes": size.nodes,
        "running_pods": size.running,
        "pods": size.pods,
        "decision_ms": decision.percentiles(),
        "decision_cpu_ms": percentiles(decision.cpu_samples_ms),
        "full_collections_in_decisions": decision.collections_in_cycles,
        "full_collection_cpu_ms_in_decisions": decision.collection_cpu_ms,
        "decisions": len(decision.samples_ms),
        "unschedulable_in_decisions": decision.unschedulable,
        "throughput_pods_per_s": None,
        "seconds": None,
        "bound": None,
        "ceiling_binds_per_s": None,
        "percent_of_ceiling": None,
        "rss_mb": None,
        "cpu_ms_per_pod": None,
        "verified": None,
        "verification_checks": None,
    }
    p = result["decision_ms"]
    say(f"decision ms p50 {p['p50']} p90 {p['p90']} p99 {p['p99']} max {p['max']}")
    c = result["decision_cpu_ms"]
    say(
        f"decision CPU ms p50 {c['p50']} p99 {c['p99']} max {c['max']}; "
        f"{decision.collections_in_cycles} full collections inside cycles "
        f"({decision.collection_cpu_ms:.1f} ms CPU)"
    )
    if verify is not None:
        result["verified"] = True
        result["verification_checks"] = decision.checks
        say(f"verified: {decision.checks} checks of the allocations, none broken")
        if workload.dra is None:
            # Decisions only: a run against the embedded cluster would time its PV
            # controller's binding of 10,000 claims, not Berth.
            return result
    if not options.live:
        return result
    live_objects: list[JSON] = []
    check_store = None
    if workload.dra is not None:
        from berth.bench import dra

        # against the cluster, its ResourceClaim controller makes the pods' claims
        pending, live_objects = dra.live_objects(
            workload.dra,
            nodes,
            workload.pending_pods(size),
            init_claims=size.running,
            namespace=NAMESPACE,
        )
        check_store = dra.check_store
    live = run_live(
        workload=workload.name,
        config=config_raw,
        nodes=nodes,
        running=running,
        pending=pending,
        ceiling_pods=ceiling_pods(size.pods),
        ceiling_concurrency=options.ceiling_concurrency,
        kubelet=options.kubelet,
        timeout=options.timeout,
        progress=say,
        objects=live_objects,
        check_store=check_store,
        api_dispatcher=options.api_dispatcher,
    )
    result.update(
        {
            "throughput_pods_per_s": round(live.throughput, 1),
            "seconds": round(live.seconds, 3),
            "bound": live.bound,
            "ceiling_binds_per_s": round(live.ceiling, 1),
            "percent_of_ceiling": round(100 * live.throughput / live.ceiling, 1),
            # the scheduler process plus its API dispatcher process (peaks summed)
            "rss_mb": round(live.scheduler["rss_mb"] + live.scheduler["dispatcher_rss_mb"], 1),
            "dispatcher_rss_mb": live.scheduler["dispatcher_rss_mb"],
            "rss_synced_mb": live.ready_rss_mb,
            "dispatcher_rss_synced_mb": live.dispatcher_ready_rss_mb,
            "api_dispatcher": options.api_dispatcher,
            # CPU per pod is steadier than pods/s on a shared machine: it does not count the
            # time the scheduler waited for a core. Both processes' CPU, and the dispatcher's.
            "cpu_ms_per_pod": round(
                1000
                * (live.scheduler["cpu_seconds"] + live.scheduler["dispatcher_cpu_seconds"])
                / live.bound,
                3,
            ),
            "dispatcher_cpu_ms_per_pod": round(
                1000 * live.scheduler["dispatcher_cpu_seconds"] / live.bound, 3
            ),
            "ceiling_cpu_ms_per_bind": round(
                1000 * live.ceiling_report["cpu_seconds"] / len(ceiling_pods(size.pods)), 3
            ),
            "bind_failures": live.scheduler["bind_failures"],
            "bind_retries": live.scheduler["bind_retries"],
            "ceiling_seconds": round(live.ceiling_seconds, 3),
            "ceiling_concurrency": options.ceiling_concurrency,
            "kubelet": options.kubelet,
            # The final placements passed every check of berth.bench.verify (a violation
            # raises PlacementError, a BenchError, before this point).
            "verified": True,
            "verification_checks": live.verification.checks,
            "verification_seconds": round(live.verification.seconds, 3),
            "spread_groups_checked": live.verification.spread_groups
            - live.verification.spread_groups_skipped,
            "spread_groups_skipped": live.verification.spread_groups_skipped,
        }
    )
    say(
        f"end to end {live.throughput:.0f} pods/s, ceiling {live.ceiling:.0f} binds/s, "
        f"peak RSS {live.scheduler['rss_mb']:.0f} MB "
        f"+ {live.scheduler['dispatcher_rss_mb']:.0f} MB (API dispatcher, "
        f"{live.dispatcher_ready_rss_mb:.0f} before its first call), "
        f"CPU {result['cpu_ms_per_pod']:.2f} ms/pod "
        f"({result['dispatcher_cpu_ms_per_pod']:.2f} of it the dispatcher's)"
    )
    return result


def _fmt(value: Any, spec: str = "") -> str:
    return "-" if value is None else format(value, spec)


def format_table(results: list[JSON]) -> str:
    if any(r.get("cluster") == "upstream" for r in results):
        from berth.bench.side_by_side import format_side_by_side

        return format_side_by_side(results)
    header = (
        "workload",
        "nodes",
        "pods",
        "p50 ms",
        "p90 ms",
        "p99 ms",
        "max ms",
        "pods/s",
        "ceiling/s",
        "% ceil",
        "CPU ms/pod",
        "RSS MB",
    )
    rows = [header]
    for r in results:
        d = r["decision_ms"]
        rows.append(
            (
                r["workload"],
                str(r["nodes"]),
                str(r["pods"]),
                f"{d['p50']:.2f}",
                f"{d['p90']:.2f}",
                f"{d['p99']:.2f}",
                f"{d['max']:.2f}",
                _fmt(r["throughput_pods_per_s"], ".0f"),
                _fmt(r["ceiling_binds_per_s"], ".0f"),
                _fmt(r["percent_of_ceiling"], ".0f"),
                _fmt(r["cpu_ms_per_pod"], ".2f"),
                _fmt(r["rss_mb"], ".0f"),
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    lines = []
    for k, row in enumerate(rows):
        cells = [
            c.ljust(w) if i == 0 else c.rjust(w)
            for i, (c, w) in enumerate(zip(row, widths, strict=True))
        ]
        lines.append("  ".join(cells))
        if k == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


def run_bench(
    workloads: list[Workload],
    options: Options,
    *,
    json_path: Path | None = None,
    echo: Callable[[str], None] | None = None,
) -> list[JSON]:
    """Run `workloads` in order; returns (and optionally writes) one result per workload."""
    say = echo or (lambda m: print(m, file=sys.stderr, flush=True))
    results: list[JSON] = []
    for w in workloads:
        if options.cluster == "upstream":
            from berth.bench.side_by_side import run_side_by_side

            results.extend(run_side_by_side(w, options, echo=say))
        else:
            results.append(run_workload(w, options, echo=say))
        if json_path is not None:  # written after each workload, so a long run keeps its data
            json_path.write_text(json.dumps(results, indent=2) + "\n")
    return results


__all__ = ["BASE_CONFIG", "SIZES", "Options", "format_table", "run_bench", "run_workload"]
