"""`berth cluster`: run the embedded API server in the foreground until interrupted."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import signal
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from berth.clierrors import BadInput
from berth.cliparams import HOST, PORT, QUANTITY
from berth.cluster.core import ClusterConfig
from berth.cluster.limits import Limits
from berth.cluster.persistence import FILE_NAME
from berth.cluster.rbac import User, load_documents, parse_token_auth_file, parse_token_users
from berth.cluster.server import AsyncEmbeddedCluster, url_host
from berth.secretfile import TokenError, read_token

_LIMIT_HELP = {
    "max_body_bytes": "Larger request bodies get 413.",
    "max_object_bytes": "Larger stored objects are refused (as etcd's 'request is too large').",
    "max_depth": "Deeper request bodies and objects get 400 (levels of objects and arrays).",
    "json_patch_max_copy_bytes": "What the copy operations of one JSON patch may add.",
    "json_patch_max_operations": "Operations of one JSON patch.",
    "watch_window": "Watch events kept; older resourceVersions get 410 Gone.",
    "watch_cache_bytes": "Bytes of watch events kept (and the most one watcher may lag).",
    "max_connections": "Open connections; more are closed at once.",
    "max_requests_inflight": "Requests served at once, watches excepted; more get 429.",
    "header_timeout": "Seconds a new connection has to send its request headers.",
    "idle_timeout": "Seconds an idle connection is kept open.",
    "request_timeout": "Seconds to read a body and answer a request (watches excepted).",
    "min_request_timeout": "A watch without timeoutSeconds ends after 1-2x this many seconds.",
}


def limit_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """One option per field of Limits (`--max-object-bytes`, ...), with its default."""
    defaults = Limits()
    for f in reversed(dataclasses.fields(Limits)):
        default = getattr(defaults, f.name)
        kind = click.IntRange(min=1) if isinstance(default, int) else click.FloatRange(min=0.001)
        command = click.option(
            "--" + f.name.replace("_", "-"),
            f.name,
            type=kind,
            default=default,
            show_default=True,
            help=_LIMIT_HELP[f.name],
        )(command)
    return command


@click.command("cluster")
@click.option(
    "--host", type=HOST, default="127.0.0.1", show_default=True, help="Address to listen on."
)
@click.option("--port", default=0, show_default=True, type=PORT, help="Port; 0 picks a free one.")
@click.option("--nodes", default=3, show_default=True, type=click.IntRange(min=0))
@click.option("--zones", default=1, show_default=True, type=click.IntRange(min=1))
@click.option("--node-cpu", type=QUANTITY, default="32", show_default=True)
@click.option("--node-memory", type=QUANTITY, default="128Gi", show_default=True)
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
@click.option(
    "--token",
    envvar="BERTH_CLUSTER_TOKEN",
    default=None,
    help="Require this bearer token (the admin's); also from $BERTH_CLUSTER_TOKEN. Prefer "
    "--token-file or the variable: arguments are visible to every user in ps.",
)
@click.option(
    "--token-file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="Read the admin's bearer token from FILE (its first line).",
)
@click.option(
    "--token-auth-file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="More bearer tokens, as kube-apiserver's --token-auth-file: CSV lines "
    'token,user,uid[,"group1,group2"].',
)
@click.option(
    "--token-user",
    "token_users",
    multiple=True,
    metavar="TOKEN=USER[,GROUP...]",
    help="Also accept bearer TOKEN as USER (repeatable; visible in ps, so prefer "
    "--token-auth-file), e.g. t1=system:serviceaccount:kube-system:berth.",
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
    "--controllers/--no-controllers",
    default=True,
    show_default=True,
    help="Run the workload controllers (Deployment, ReplicaSet, StatefulSet, DaemonSet, Job, "
    "ReplicationController), the garbage collector and the EndpointSlice controller.",
)
@click.option(
    "--kubelet/--no-kubelet",
    default=True,
    show_default=True,
    help="Simulate kubelets: bound pods become Running and Ready (a Job's pods then complete).",
)
@click.option(
    "--volume-controller/--no-volume-controller",
    default=True,
    show_default=True,
    help="Simulate the PV controller and a provisioner: claims get bound and provisioned.",
)
@click.option(
    "--persist-interval",
    default=0.0,
    show_default=True,
    type=click.FloatRange(min=0),
    help="With --data-dir: 0 commits every write before it is acknowledged; more buffers "
    "writes for that many seconds (faster, but a crash may lose the last interval's writes).",
)
@limit_options
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
    token_file: Path | None,
    token_auth_file: Path | None,
    token_users: tuple[str, ...],
    rbac_files: tuple[Path, ...],
    kubelet: bool,
    controllers: bool,
    volume_controller: bool,
    persist_interval: float,
    admin: bool,
    metrics_port: int | None,
    **limit_values: Any,
) -> None:
    """Serve an embedded Kubernetes API (kubectl and client libraries work against it)."""
    try:
        token = read_token(value=token, file=token_file, what="--token")
        users: dict[str, str | User] = dict(parse_token_users(token_users))
        if token_auth_file is not None:
            users.update(parse_token_auth_file(token_auth_file))
        rbac = [d for f in rbac_files for d in load_documents(f)] if rbac_files else None
        limits = Limits(**limit_values)
    except (ValueError, TokenError) as exc:
        raise BadInput(str(exc)) from None
    warning = plain_http_token_warning(tls=tls, tokens=bool(token or users or rbac is not None))
    if warning:
        click.echo(f"warning: {warning}", err=True)
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
        controllers=controllers,
        volume_controller=volume_controller,
        persist_interval=persist_interval,
        limits=limits,
        admin=admin,
    )
    try:
        asyncio.run(_serve(config, metrics_port=metrics_port))
    except sqlite3.DatabaseError as exc:  # only --data-dir's file is sqlite
        raise BadInput(f"--data-dir {data_dir}: cannot use {FILE_NAME}: {exc}") from None


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
                " (the admin's token is in the kubeconfig)"
            )
        exporter = None
        if metrics_port is not None:
            from berth.cluster.resources import NODES
            from berth.metrics.exporter import start_exporter

            store = c.store
            exporter = await start_exporter(
                nodes=lambda: list(store.items(NODES)), host=config.host, port=metrics_port
            )
            bound = exporter.port
            click.echo(f"simulated exporter: http://{url_host(config.host)}:{bound}/metrics")
        try:
            await stop.wait()
        finally:
            if exporter is not None:
                await exporter.stop()
    click.echo("berth cluster stopped")
