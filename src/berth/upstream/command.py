"""`python -m berth.upstream` (what `./dev upstream` runs): `build` the real control plane,
`run` it in the foreground until SIGTERM, and `kubelet`, the simulated kubelet `run` starts."""

from __future__ import annotations

import asyncio
import os
import signal
import threading
from pathlib import Path

import click

from berth.clierrors import BerthGroup
from berth.cluster.nodes import NodeShape
from berth.upstream.build import ENV_BINARY, SOURCE_DIR, build, find_binary
from berth.upstream.controlplane import ControlPlane, Options
from berth.upstream.errors import UpstreamError


@click.group(cls=BerthGroup)  # an UpstreamError anywhere below: one line, exit status 1
def main() -> None:
    """The real kube-apiserver, etcd, kube-controller-manager and kube-scheduler (Go, built
    from their modules under upstream/): the reference Berth is tested against."""


@main.command("build")
@click.option("--force", is_flag=True, help="Rebuild even if the cached binary is current.")
def build_command(*, force: bool) -> None:
    """Build berth-upstream into the cache (reused while upstream/ is unchanged)."""
    click.echo(str(build(force=force)))


def binary_or_build() -> Path:
    try:
        return find_binary()
    except UpstreamError:
        if not (SOURCE_DIR / "go.mod").exists() or ENV_BINARY in os.environ:
            raise
        return build()


@main.command("run")
@click.option(
    "--kubeconfig-out",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write the admin kubeconfig here (mode 0600; removed on exit).",
)
@click.option("--nodes", default=0, show_default=True, type=click.IntRange(min=0))
@click.option("--zones", default=1, show_default=True, type=click.IntRange(min=1))
@click.option("--node-cpu", default="32", show_default=True)
@click.option("--node-memory", default="128Gi", show_default=True)
@click.option("--node-pods", default=110, show_default=True, type=click.IntRange(min=1))
@click.option("--scheduler", is_flag=True, help="Also run kube-scheduler (default-scheduler).")
@click.option(
    "--kubelet", is_flag=True, help="Simulate kubelets: bound pods Running, deletions finished."
)
@click.option(
    "--provisioner",
    "provisioners",
    multiple=True,
    metavar="NAME",
    help="Simulate the CSI provisioner NAME (repeatable): claims of its StorageClasses get PVs.",
)
@click.option(
    "--port",
    default=0,
    show_default=True,
    type=click.IntRange(min=0, max=65535),
    help="kube-apiserver's port on 127.0.0.1; 0 picks a free one.",
)
@click.option(
    "--log-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Keep the components' logs in DIR (else they go with the data directory).",
)
@click.option("--audit", is_flag=True, help="Write kube-apiserver's audit log (in the log dir).")
def run_command(
    *,
    kubeconfig_out: Path,
    nodes: int,
    zones: int,
    node_cpu: str,
    node_memory: str,
    node_pods: int,
    scheduler: bool,
    kubelet: bool,
    provisioners: tuple[str, ...],
    port: int,
    log_dir: Path | None,
    audit: bool,
) -> None:
    """Run etcd, kube-apiserver and kube-controller-manager (and kube-scheduler) on 127.0.0.1
    with N fake nodes, until SIGTERM or Ctrl-C."""
    binary = binary_or_build()
    options = Options(
        nodes=nodes,
        zones=zones,
        shape=NodeShape(cpu=node_cpu, memory=node_memory, pods=node_pods),
        scheduler=scheduler,
        kubelet=kubelet,
        provisioners=provisioners,
        port=port,
        audit=audit,
        log_dir=log_dir.resolve() if log_dir else None,
    )
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    plane = ControlPlane(options, binary=binary)
    wrote = False
    try:
        click.echo(
            "starting etcd, kube-apiserver, kube-controller-manager"
            + (", kube-scheduler" if scheduler else "")
            + (f" and {nodes} nodes" if nodes else ""),
            err=True,
        )
        plane.start()
        plane.write_kubeconfig(kubeconfig_out)
        wrote = True
        click.echo(f"kube-apiserver serving {plane.url}")
        click.echo(f"kubeconfig: {kubeconfig_out}  (export KUBECONFIG={kubeconfig_out})")
        click.echo(f"ready in {plane.ready_seconds:.1f}s")
        click.echo(f"data and logs: {plane.directory} (removed on exit)", err=True)
        if audit:
            click.echo(f"audit log: {plane.audit_log}")
        while not stop.wait(1.0):
            plane.check_alive()
    finally:
        plane.stop()
        if wrote:
            kubeconfig_out.unlink(missing_ok=True)
    click.echo("stopped", err=True)


@main.command("agents", hidden=True)
@click.option("--kubeconfig", required=True)
@click.option("--kubelet/--no-kubelet", default=True)
@click.option("--provisioner", "provisioners", multiple=True)
@click.option("--ready-file", type=click.Path(dir_okay=False, path_type=Path), default=None)
def agents_command(
    *, kubeconfig: str, kubelet: bool, provisioners: tuple[str, ...], ready_file: Path | None
) -> None:
    """The simulated kubelet and provisioner (started by `run --kubelet/--provisioner`)."""
    from berth.telemetry import setup_logging
    from berth.upstream.agents import serve

    setup_logging(fmt="text", level="info")
    asyncio.run(
        serve(kubeconfig=kubeconfig, kubelet=kubelet, provisioners=provisioners, ready=ready_file)
    )
