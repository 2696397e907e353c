"""A command's inputs read or refused with one line (`berth.clierrors.BadInput`): the
configuration, a dump, a kubeconfig's connection. Shared by the commands that look at a cluster
as it is (explain, capacity, rebalance)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from berth.clierrors import BadInput

if TYPE_CHECKING:
    from berth.config.loader import Config
    from berth.dump import Dump
    from berth.kube.client import Connection


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


async def connect_or_fail(
    kubeconfig: str | None, *, timeout: float, qps_burst: int = 100
) -> Connection:
    """A connection to the configured cluster (the kubeconfig, $KUBECONFIG, ~/.kube/config or
    in-cluster), or a one-line error."""
    import yaml
    from kubernetes.aio.config.config_exception import ConfigException

    from berth.kube.client import NoClusterConfigured, connect

    try:
        return await connect(kubeconfig=kubeconfig, request_timeout=timeout, qps_burst=qps_burst)
    except (FileNotFoundError, ConfigException, yaml.YAMLError) as exc:
        raise BadInput(f"cannot load the kubeconfig: {exc}") from None
    except NoClusterConfigured:
        raise BadInput("no cluster configured: give --kubeconfig or --dump") from None


__all__ = ["connect_or_fail", "load_config_or_fail", "read_dump_or_fail"]
