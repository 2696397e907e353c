"""`berth cluster`: run the embedded API server in the foreground until interrupted."""

from __future__ import annotations

import asyncio
import contextlib
import signal
from pathlib import Path

import click

from berth.cluster.core import ClusterConfig
from berth.cluster.rbac import load_documents, parse_token_users
from berth.cluster.server import AsyncEmbeddedCluster


@click.command("cluster")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=0, show_default=True, type=int, help="Port; 0 picks a free one.")
@click.option("--nodes", default=3, show_default=True, type=click.IntRange(min=0))
@click.option("--zones", default=1, show_default=True, type=click.IntRange(min=1))
@click.option("--node-cpu", default="32", show_default=True)
@click.option("--node-memory", default="128Gi", show_default=True)
@click.option("--node-pods", default=110, show_default=True, type=click.IntRange(min=1))
@click.option(
    "--kubeconfig-out",
    type=click.Path(dir_okay=False, path_type=Path),
    default=Path("berth-cluster.kubeconfig"),
    show_default=True,
    help="Where to write a kubeconfig for kubectl and clients.",
)
@click.option(
    "--data-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Keep state in DIR (sqlite3) so it survives a restart; in memory without it.",
)
@click.option("--tls/--no-tls", default=False, show_default=True, help="Serve HTTPS.")
@click.option("--token", default=None, help="Require this bearer token (the admin's).")
@click.option(
    "--token-user",
    "token_users",
    multiple=True,
    metavar="TOKEN=USER[,GROUP...]",
    help="Also accept bearer TOKEN as USER (repeatable), e.g. "
    "t1=system:serviceaccount:kube-system:berth.",
)
@click.option(
    "--rbac",
    "rbac_files",
    multiple=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Enforce RBAC; load the Roles, ClusterRoles and bindings of FILE (YAML, all its "
    "documents; repeatable). Other users than the admin get 403 for what they are not granted.",
)
@click.option(
    "--kubelet/--no-kubelet",
    default=True,
    show_default=True,
    help="Simulate kubelets: bound pods become Running and Ready.",
)
@click.option(
    "--volume-controller/--no-volume-controller",
    default=True,
    show_default=True,
    help="Simulate the PV controller and a provisioner: claims get bound and provisioned.",
)
@click.option(
    "--watch-window",
    default=50_000,
    show_default=True,
    type=click.IntRange(min=1),
    help="Watch events kept; older resourceVersions get 410 Gone.",
)
@click.option(
    "--metrics-port",
    type=click.IntRange(min=0, max=65535),
    default=None,
    help="Also serve the simulated node exporter (berth_sim_* gauges from node annotations) "
    "on this port of --host; 0 picks a free one.",
)
@click.option(
    "--admin/--no-admin",
    default=False,
    show_default=True,
    help="Serve the fault-injection endpoint /berth-admin/faults.",
)
def cluster(
    *,
    host: str,
    port: int,
    nodes: int,
    zones: int,
    node_cpu: str,
    node_memory: str,
    node_pods: int,
    kubeconfig_out: Path,
    data_dir: Path | None,
    tls: bool,
    token: str | None,
    token_users: tuple[str, ...],
    rbac_files: tuple[Path, ...],
    kubelet: bool,
    volume_controller: bool,
    watch_window: int,
    admin: bool,
    metrics_port: int | None,
) -> None:
    """Serve an embedded Kubernetes API (kubectl and client libraries work against it)."""
    warning = plain_http_token_warning(tls=tls, tokens=bool(token or token_users))
    if warning:
        click.echo(f"warning: {warning}", err=True)
    try:
        users = parse_token_users(token_users)
        rbac = [d for f in rbac_files for d in load_documents(f)] if rbac_files else None
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from exc
    config = ClusterConfig(
        host=host,
        port=port,
        nodes=nodes,
        zones=zones,
        node_cpu=node_cpu,
        node_memory=node_memory,
        node_pods=node_pods,
        kubeconfig_out=kubeconfig_out,
        data_dir=data_dir,
        tls=tls,
        token=token,
        token_users=users,
        rbac=rbac,
        kubelet=kubelet,
        volume_controller=volume_controller,
        watch_window=watch_window,
        admin=admin,
    )
    asyncio.run(_serve(config, metrics_port=metrics_port))


def plain_http_token_warning(*, tls: bool, tokens: bool) -> str | None:
    """kubectl (client-go) refuses to send a bearer token to a plain-HTTP server and gets 401;
    the Python clients do send it. Say so rather than let kubectl fail obscurely."""
    if tokens and not tls:
        return (
            "bearer tokens over plain HTTP: kubectl does not send them (401 'the server has "
            "asked for the client to provide credentials'); add --tls to use kubectl"
        )
    return None


async def _serve(config: ClusterConfig, *, metrics_port: int | None = None) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    async with AsyncEmbeddedCluster(config=config) as c:
        click.echo(f"berth cluster serving {c.url} ({config.nodes} nodes, {config.zones} zones)")
        click.echo(f"kubeconfig: {c.kubeconfig_path}  (export KUBECONFIG={c.kubeconfig_path})")
        if config.rbac is not None:
            click.echo(
                f"RBAC enforced: {len(config.rbac)} objects, {len(config.token_users)} token users"
            )
        exporter = None
        if metrics_port is not None:
            from berth.cluster.resources import NODES
            from berth.metrics.exporter import start_exporter

            store = c.store
            exporter = await start_exporter(
                nodes=lambda: list(store.items(NODES)), host=config.host, port=metrics_port
            )
            bound = exporter.addresses[0][1]
            click.echo(f"simulated exporter: http://{config.host}:{bound}/metrics")
        try:
            await stop.wait()
        finally:
            if exporter is not None:
                await exporter.cleanup()
    click.echo("berth cluster stopped")
