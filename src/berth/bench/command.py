"""The `berth bench` command: choose workloads and a size, run them, print the table."""

from __future__ import annotations

from pathlib import Path

import click

from berth.bench.workload import (
    DEFAULT_CEILING_CONCURRENCY,
    SIZES,
    Size,
    Workload,
    WorkloadError,
    builtin_workloads,
    load_workload,
)
from berth.clierrors import BadInput


@click.command()
@click.option(
    "--workload",
    "-w",
    "names",
    multiple=True,
    metavar="NAME",
    help="A workload to run (repeatable; default: all). See --list.",
)
@click.option(
    "--file",
    "-f",
    "files",
    multiple=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="A workload YAML file of your own (repeatable).",
)
@click.option(
    "--size",
    type=click.Choice(list(SIZES)),
    default="quick",
    show_default=True,
    help="tiny: 20 nodes / 60 pods (tests); quick: 500 / 1,000 (CI); full: 5,000 / 10,000.",
)
@click.option(
    "--json",
    "json_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Write one JSON object per workload (a JSON array) to this file.",
)
@click.option(
    "--cluster",
    type=click.Choice(["embedded", "upstream"]),
    default="embedded",
    show_default=True,
    help="embedded: Berth against the embedded cluster (no Go needed); upstream: the real "
    "control plane built from upstream/, once with Berth and once with kube-scheduler.",
)
@click.option(
    "--scheduler",
    "schedulers",
    multiple=True,
    type=click.Choice(["berth", "kube-scheduler"]),
    help="With --cluster upstream: the schedulers to run, in this order (repeatable; default: "
    "berth, then kube-scheduler). The API server's ceiling is measured after the first.",
)
@click.option(
    "--live/--no-live",
    default=True,
    show_default=True,
    help="Also measure end to end against the embedded cluster (and its binding ceiling).",
)
@click.option(
    "--kubelet/--no-kubelet",
    default=False,
    show_default=True,
    help="Run the embedded cluster's simulated kubelet (bound pods become Running).",
)
@click.option(
    "--ceiling-concurrency",
    type=click.IntRange(1, 1024),
    default=DEFAULT_CEILING_CONCURRENCY,
    show_default=True,
    help="Bindings in flight for the bare client that measures the cluster's ceiling.",
)
@click.option(
    "--timeout",
    type=float,
    default=600.0,
    show_default=True,
    help="Seconds to wait for every pod to be bound before failing.",
)
@click.option(
    "--api-dispatcher",
    type=click.Choice(["process", "inline"]),
    default="process",
    show_default=True,
    help="Berth's bindings and events: from its API dispatcher process (as berth run), or "
    "inline in the scheduling process (for comparison).",
)
@click.option("--list", "list_only", is_flag=True, help="List the built-in workloads and exit.")
@click.option(
    "--dump-cluster",
    "dump_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Write the first chosen workload's nodes and running pods at --size as a cluster "
    "dump (for `berth simulate`, `explain`, `capacity`) and exit.",
)
def bench(
    names: tuple[str, ...],
    files: tuple[Path, ...],
    size: str,
    json_path: Path | None,
    cluster: str,
    schedulers: tuple[str, ...],
    live: bool,
    kubelet: bool,
    ceiling_concurrency: int,
    timeout: float,
    api_dispatcher: str,
    list_only: bool,
    dump_path: Path | None,
) -> None:
    """Benchmark Berth on scheduler_perf-style workloads: decision latency, end-to-end
    throughput against the embedded cluster beside its binding ceiling, and peak memory."""
    from berth.bench.runner import Options, format_table, run_bench  # the engine: load lazily

    builtin = builtin_workloads()
    if list_only:
        for w in builtin.values():
            click.echo(f"{w.name:<20} {w.description}")
        return
    chosen: list[Workload] = []
    for name in names:
        match = {k.lower(): w for k, w in builtin.items()}.get(name.lower())
        if match is None:
            raise click.BadParameter(
                f"unknown workload {name!r} (known: {', '.join(builtin)})", param_hint="--workload"
            )
        chosen.append(match)
    try:
        chosen.extend(load_workload(f) for f in files)
    except WorkloadError as exc:
        raise BadInput(str(exc)) from None
    if not chosen:
        chosen = list(builtin.values())
    if dump_path is not None:
        _write_dump(chosen[0], SIZES[size], dump_path)
        return
    if json_path is not None and not json_path.parent.is_dir():
        # found now, not after minutes of benchmarks
        raise BadInput(f"--json {json_path}: directory {json_path.parent} does not exist")
    options = Options(
        size=SIZES[size],
        live=live,
        kubelet=kubelet,
        ceiling_concurrency=ceiling_concurrency,
        timeout=timeout,
        cluster=cluster,
        schedulers=tuple(dict.fromkeys(schedulers)) or ("berth", "kube-scheduler"),
        api_dispatcher=api_dispatcher,
    )
    from berth.bench.errors import BenchError

    if cluster == "upstream":
        if not live:
            raise click.BadParameter(
                "needs --live (it runs the schedulers)", param_hint="--cluster"
            )
        from berth.upstream import UpstreamError, find_binary

        try:
            find_binary()
        except UpstreamError as exc:
            raise BadInput(f"--cluster upstream: {exc}") from None

    try:
        results = run_bench(
            chosen, options, json_path=json_path, echo=lambda m: click.echo(m, err=True)
        )
    except BenchError as exc:  # a failed run or an invalid placement: exit 1 with the reason
        raise click.ClickException(str(exc)) from exc
    click.echo(format_table(results))


def _write_dump(workload: Workload, size: Size, path: Path) -> None:
    """The workload's namespace, nodes and running pods as one JSON List."""
    import json

    from berth.bench.workload import NAMESPACE

    nodes = workload.nodes(size)
    items = [
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NAMESPACE}},
        *nodes,
        *workload.running_pods(size, nodes),
    ]
    try:
        path.write_text(json.dumps({"apiVersion": "v1", "kind": "List", "items": items}))
    except OSError as exc:
        raise BadInput(f"--dump-cluster {path}: cannot write: {exc.strerror}") from None
    click.echo(f"{path}: {len(nodes)} nodes, {len(items) - len(nodes) - 1} running pods", err=True)
