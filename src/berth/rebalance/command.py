"""The `berth rebalance` command: the configuration's rebalance section, the cluster, one shot or
a loop, and what each pass did (a line per move and per pod kept, or one JSON line per pass)."""

from __future__ import annotations

import asyncio
import json
import signal
from typing import TYPE_CHECKING, Any

import click

from berth.clierrors import BadInput
from berth.inputs import (
    connect_or_fail,
    load_config_or_fail,
    serving_tls_options,
    serving_tls_or_fail,
)

if TYPE_CHECKING:
    from berth.rebalance.runner import Pass


def pass_json(done: Pass) -> dict[str, Any]:
    return {
        "sample": done.sample,
        "hot": done.plan.hot,
        "note": done.plan.note or None,
        "samplesOver": done.counts,
        "moves": [
            {
                "pod": o.move.pod.key,
                "from": o.move.source,
                "to": o.move.destination,
                "why": o.move.why,
                "result": o.result,
                "message": o.message or None,
            }
            for o in done.outcomes
        ],
        "kept": [{"pod": s.pod, "node": s.node, "why": s.why} for s in done.plan.skips],
    }


def pass_text(done: Pass) -> str:
    lines = [f"sample {done.sample}: hot nodes: {', '.join(done.plan.hot) or 'none'}"]
    for o in done.outcomes:
        result = o.result + (f" ({o.message})" if o.message else "")
        lines.append(
            f"  evict {o.move.pod.key} from {o.move.source} ({o.move.why}); the scheduler's best "
            f"node is {o.move.destination}: {result}"
        )
    for s in done.plan.skips:
        lines.append(f"  keep {s.pod} on {s.node}: {s.why}")
    if done.plan.note:
        lines.append(f"  {done.plan.note}")
    return "\n".join(lines)


@click.command("rebalance")
@click.option(
    "--config",
    "config_path",
    type=click.Path(dir_okay=False),
    required=True,
    help="BerthConfiguration with metricSources, MetricScore and a rebalance section.",
)
@click.option(
    "--dry-run/--apply",
    default=True,
    show_default=True,
    help="--dry-run reports what would be evicted; --apply evicts through the Eviction API.",
)
@click.option(
    "--loop", is_flag=True, help="Keep sampling and acting every interval (leader elected)."
)
@click.option(
    "--kubeconfig",
    type=click.Path(dir_okay=False),
    default=None,
    help="kubeconfig (default: $KUBECONFIG, ~/.kube/config, in-cluster).",
)
@click.option(
    "--leader-elect/--no-leader-elect",
    default=True,
    show_default=True,
    help="With --loop: act only while holding the rebalance Lease.",
)
@click.option("--identity", default=None, help="Leader-election identity.")
@click.option(
    "--bind-address",
    default="",
    help="Serve /healthz, /readyz and /metrics here (e.g. 127.0.0.1:10260; '' for none).",
)
@serving_tls_options
@click.option(
    "--output", "-o", type=click.Choice(["table", "json"]), default="table", show_default=True
)
@click.option("--log-level", type=click.Choice(["debug", "info", "warning"]), default="warning")
def rebalance_command(
    config_path: str,
    dry_run: bool,
    loop: bool,
    kubeconfig: str | None,
    leader_elect: bool,
    identity: str | None,
    bind_address: str,
    tls_cert_file: str | None,
    tls_private_key_file: str | None,
    output: str,
    log_level: str,
) -> None:
    """Evict pods from nodes the live metrics call hot, for a number of samples in a row, when
    the scheduler's own profile places them on a better node; through the Eviction API, so
    PodDisruptionBudgets hold. One pass by default; --loop for a controller."""
    from berth.rebalance.runner import RebalanceOptions, Rebalancer
    from berth.run import default_identity
    from berth.telemetry import parse_address, setup_logging

    setup_logging(level=log_level)
    config = load_config_or_fail(config_path)
    if config.model.rebalance is None:
        raise BadInput(f"{config_path}: no rebalance section")
    if not config.model.metricSources:
        raise BadInput(f"{config_path}: rebalance needs metricSources (the live metrics it reads)")
    if bind_address:
        try:
            parse_address(bind_address)
        except ValueError as exc:
            raise BadInput(f"--bind-address: {exc}") from None
    serving_tls_or_fail(tls_cert_file, tls_private_key_file)

    def report(done: Pass) -> None:
        click.echo(json.dumps(pass_json(done)) if output == "json" else pass_text(done))

    options = RebalanceOptions(
        dry_run=dry_run,
        loop=loop,
        leader_elect=leader_elect,
        bind_address=bind_address or None,
        tls_cert_file=tls_cert_file,
        tls_key_file=tls_private_key_file,
        identity=identity or default_identity(),
        report=report,
    )

    async def main() -> int:
        connection = await connect_or_fail(
            kubeconfig or config.model.clientConnection.kubeconfig or None,
            timeout=config.model.clientConnection.timeout,
            no_cluster="no cluster configured: give --kubeconfig (rebalance acts on a live "
            "cluster)",
        )
        try:
            rebalancer = Rebalancer(config=config, connection=connection, options=options)
            loop_ = asyncio.get_running_loop()
            for sig in (signal.SIGTERM, signal.SIGINT):
                loop_.add_signal_handler(sig, rebalancer.stop_requested.set)
            return await rebalancer.run()
        finally:
            await connection.close()

    raise SystemExit(asyncio.run(main()))


__all__ = ["pass_json", "pass_text", "rebalance_command"]
