"""A command's inputs read or refused with one line (`berth.clierrors.BadInput`): the
configuration, a dump, a kubeconfig's connection. Shared by the commands that look at a cluster
as it is (explain, capacity, rebalance), and the options that name them."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

import click

from berth.clierrors import BadInput

if TYPE_CHECKING:
    from berth.config.loader import Config
    from berth.dump import Dump
    from berth.kube.client import Connection

F = TypeVar("F", bound=Callable[..., Any])


def config_option(f: F) -> F:
    """--config FILE (the `config_path` parameter)."""
    return click.option(
        "--config",
        "config_path",
        type=click.Path(dir_okay=False),
        default=None,
        help="BerthConfiguration file (default: built-in defaults).",
    )(f)


def cluster_options(f: F) -> F:
    """--kubeconfig FILE and --dump FILE: where the cluster is read from."""
    f = click.option(
        "--dump",
        type=click.Path(dir_okay=False),
        default=None,
        help="Read the cluster from a dump instead (what `kubectl get nodes,pods -A -o yaml` "
        "prints; `-` for standard input).",
    )(f)
    return click.option(
        "--kubeconfig",
        type=click.Path(dir_okay=False),
        default=None,
        help="Read the cluster through this kubeconfig (default: $KUBECONFIG, ~/.kube/config, "
        "in-cluster).",
    )(f)


def timeout_option(f: F) -> F:
    """--timeout SECONDS for the cluster's answers."""
    return click.option(
        "--timeout",
        type=click.FloatRange(min=0.1),
        default=30.0,
        show_default=True,
        help="Seconds to wait for the cluster.",
    )(f)


def serving_tls_options(f: F) -> F:
    """--tls-cert-file and --tls-private-key-file: HTTPS for /healthz, /readyz and /metrics
    (the `tls_cert_file` and `tls_private_key_file` parameters; check them with
    `serving_tls_or_fail`)."""
    f = click.option(
        "--tls-private-key-file",
        type=click.Path(exists=True, dir_okay=False),
        default=None,
        help="The certificate's private key (PEM).",
    )(f)
    return click.option(
        "--tls-cert-file",
        type=click.Path(exists=True, dir_okay=False),
        default=None,
        help="Serve the endpoints over HTTPS with this certificate (PEM).",
    )(f)


def serving_tls_or_fail(cert: str | None, key: str | None) -> None:
    """Refuse a certificate without its key (or the reverse) and unusable files, before the
    command starts anything."""
    if bool(cert) != bool(key):
        raise BadInput("--tls-cert-file and --tls-private-key-file go together")
    if cert:
        from berth.listener import server_tls

        server_tls(cert, key)


def load_config_or_fail(path: str | None) -> Config:
    from berth.config import ConfigError, load_config

    try:
        return load_config(path)
    except ConfigError as exc:
        where = f"{path}: " if path else ""
        raise BadInput(where + "; ".join(exc.problems)) from None


def read_dump_or_fail(path: str) -> Dump:
    from berth.dump import DumpError, read_dump

    try:
        return read_dump(path)
    except DumpError as exc:
        raise BadInput(str(exc)) from None


NO_CLUSTER = "no cluster configured: give --kubeconfig or --dump"


async def connect_or_fail(
    kubeconfig: str | None,
    *,
    timeout: float,
    qps_burst: int = 100,
    no_cluster: str | None = NO_CLUSTER,
) -> Connection:
    """A connection to the configured cluster (the kubeconfig, $KUBECONFIG, ~/.kube/config or
    in-cluster), or a one-line error: an unusable kubeconfig, or `no_cluster` when none is
    configured (None: NoClusterConfigured goes to the caller, which has a fallback)."""
    import yaml
    from kubernetes.aio.config.config_exception import ConfigException

    from berth.kube.client import NoClusterConfigured, connect

    try:
        return await connect(kubeconfig=kubeconfig, request_timeout=timeout, qps_burst=qps_burst)
    except (FileNotFoundError, ConfigException, yaml.YAMLError) as exc:
        raise BadInput(f"cannot load the kubeconfig: {' '.join(str(exc).split())}") from None
    except NoClusterConfigured:
        if no_cluster is None:
            raise
        raise BadInput(no_cluster) from None


__all__ = [
    "NO_CLUSTER",
    "cluster_options",
    "config_option",
    "connect_or_fail",
    "load_config_or_fail",
    "read_dump_or_fail",
    "serving_tls_options",
    "serving_tls_or_fail",
    "timeout_option",
]
