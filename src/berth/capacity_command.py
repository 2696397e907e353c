"""The `berth capacity` command: the pod file, the cluster (a dump or a live cluster's
informers), and the report."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from berth.clierrors import BadInput
from berth.inputs import (
    cluster_options,
    config_option,
    connect_or_fail,
    load_config_or_fail,
    read_dump_or_fail,
    timeout_option,
)

if TYPE_CHECKING:
    from berth.capacity import CapacityResult
    from berth.config.loader import Config

MAX_POD_FILE_BYTES = 1 << 20


@click.command("capacity")
@click.argument("pod_file", metavar="POD.yaml", type=click.Path(dir_okay=False))
@config_option
@cluster_options
@click.option(
    "--replicas-max",
    type=click.IntRange(min=1),
    default=None,
    help="Stop counting at this many copies (default: until one fits nowhere).",
)
@click.option("--profile", default=None, help="Place the copies with this profile.")
@click.option(
    "--output",
    "-o",
    type=click.Choice(["table", "json"]),
    default="table",
    show_default=True,
)
@click.option("--seed", type=int, default=0, show_default=True, help="Seed for tie-breaks.")
@timeout_option
def capacity_command(
    pod_file: str,
    config_path: str | None,
    kubeconfig: str | None,
    dump: str | None,
    replicas_max: int | None,
    profile: str | None,
    output: str,
    seed: int,
    timeout: float,
) -> None:
    """How many more copies of the pod in POD.yaml fit, on which nodes, and what stops the
    next one on each node. POD.yaml is a Pod, or a workload with a pod template."""
    from berth.capacity import CapacityError, format_report, pod_template
    from berth.safeload import InputError, load_one

    if kubeconfig is not None and dump is not None:
        raise BadInput("give --kubeconfig or --dump, not both")
    try:
        data = Path(pod_file).read_bytes()
    except OSError as exc:
        raise BadInput(f"{pod_file}: cannot read: {exc.strerror}") from None
    if len(data) > MAX_POD_FILE_BYTES:
        raise BadInput(f"{pod_file}: larger than {MAX_POD_FILE_BYTES} bytes")
    try:
        raw = pod_template(load_one(data), source=pod_file)
    except (InputError, CapacityError) as exc:
        raise BadInput(f"{pod_file}: {exc}" if isinstance(exc, InputError) else str(exc)) from None
    config = load_config_or_fail(config_path)
    result = asyncio.run(
        _estimate(
            config,
            raw,
            kubeconfig=kubeconfig,
            dump=dump,
            replicas_max=replicas_max,
            profile=profile,
            seed=seed,
            timeout=timeout,
        )
    )
    if output == "json":
        click.echo(json.dumps(result.to_json()))
    else:
        click.echo(format_report(result))


async def _estimate(
    config: Config,
    raw: dict[str, Any],
    *,
    kubeconfig: str | None,
    dump: str | None,
    replicas_max: int | None,
    profile: str | None,
    seed: int,
    timeout: float,
) -> CapacityResult:
    from berth.capacity import CapacityError, estimate
    from berth.engine import Engine
    from berth.snapshot import SnapshotError, from_cluster, from_dump

    engine = Engine(config=config, seed=seed)
    if dump is not None:
        snapshot = from_dump(engine, read_dump_or_fail(dump))
    else:
        connection = await connect_or_fail(kubeconfig, timeout=timeout)
        try:
            snapshot = await from_cluster(engine, connection, timeout=timeout)
        except SnapshotError as exc:
            raise click.ClickException(str(exc)) from None
        finally:
            await connection.close()
    for problem in snapshot.problems:
        click.echo(f"warning: skipped {problem}", err=True)
    if engine.refresher is not None:
        down = [n for n, up in (await engine.refresher.refresh_once()).items() if not up]
        await engine.refresher.stop()
        for source in down:
            click.echo(f"warning: metric source {source!r} unavailable", err=True)
    try:
        return estimate(engine, raw, replicas_max=replicas_max, profile=profile)
    except CapacityError as exc:
        raise BadInput(str(exc)) from None


__all__ = ["capacity_command"]
