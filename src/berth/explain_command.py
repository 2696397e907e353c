"""The `berth explain` command: where the explanation comes from (a dump, a live cluster's
informers, or a running `berth run`'s debug endpoint), how it is shown, and `--annotate`."""

from __future__ import annotations

import asyncio
import json
import os
import ssl
from typing import TYPE_CHECKING, Any

import aiohttp
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
    from berth.explain import Explanation

DEBUG_TOKEN_ENV = "BERTH_DEBUG_TOKEN"
EXPLAIN_PATH = "/debug/explain"


def parse_pod_ref(ref: str) -> tuple[str, str]:
    namespace, sep, name = ref.partition("/")
    if not sep:
        namespace, name = "default", ref
    if not namespace or not name or "/" in name:
        raise BadInput(f"{ref}: expected NAMESPACE/POD")
    return namespace, name


@click.command("explain")
@click.argument("pod_ref", metavar="NAMESPACE/POD")
@config_option
@cluster_options
@click.option(
    "--server",
    default=None,
    metavar="URL",
    help="Ask a running `berth run` (its --bind-address, e.g. https://127.0.0.1:10269) to "
    "explain on its own state; the token comes from --token-file or $BERTH_DEBUG_TOKEN.",
)
@click.option(
    "--token-file",
    type=click.Path(exists=True, dir_okay=False),
    default=None,
    help="The debug endpoint's bearer token (first line of FILE).",
)
@click.option(
    "--certificate-authority",
    "ca_file",
    type=click.Path(exists=True, dir_okay=False),
    default=None,
    help="Verify --server's certificate against this CA (PEM).",
)
@click.option("--profile", default=None, help="Explain as this profile (default: the pod's).")
@click.option(
    "--output",
    "-o",
    type=click.Choice(["table", "json", "html"]),
    default="table",
    show_default=True,
    help="table for people, json for programs, html for a self-contained page.",
)
@click.option(
    "--annotate",
    is_flag=True,
    help="Also write the result onto the pod with kube-scheduler-simulator's annotations "
    "(needs patch on pods).",
)
@timeout_option
def explain_command(
    pod_ref: str,
    config_path: str | None,
    kubeconfig: str | None,
    dump: str | None,
    server: str | None,
    token_file: str | None,
    ca_file: str | None,
    profile: str | None,
    output: str,
    annotate: bool,
    timeout: float,
) -> None:
    """Why NAMESPACE/POD is pending or where it is: every node's verdict per filter, every
    plugin's score on the feasible nodes, the winner and its margin. For a bound pod, the same
    as of now: would it still go there?"""
    namespace, name = parse_pod_ref(pod_ref)
    if sum(x is not None for x in (kubeconfig, dump, server)) > 1:
        raise BadInput("give one of --kubeconfig, --dump and --server")
    if annotate and (dump is not None or server is not None):
        raise BadInput("--annotate writes to the cluster: it needs --kubeconfig (or the default)")
    if server is not None:
        expl = asyncio.run(
            ask_server(
                server,
                namespace,
                name,
                token_file=token_file,
                ca_file=ca_file,
                profile=profile,
                timeout=timeout,
            )
        )
    else:
        config = load_config_or_fail(config_path)
        expl = asyncio.run(
            _explain_here(
                config,
                namespace,
                name,
                kubeconfig=kubeconfig,
                dump=dump,
                profile=profile,
                annotate=annotate,
                timeout=timeout,
            )
        )
    click.echo(render(expl, output), nl=output != "html")


def render(expl: Explanation, output: str) -> str:
    from berth.explain import format_table

    if output == "json":
        return json.dumps(expl.to_json())
    if output == "html":
        from berth.report.html import explanation_page

        return explanation_page(expl)
    return format_table(expl)


async def _explain_here(
    config: Any,
    namespace: str,
    name: str,
    *,
    kubeconfig: str | None,
    dump: str | None,
    profile: str | None,
    annotate: bool,
    timeout: float,
) -> Explanation:
    from berth.engine import Engine
    from berth.explain import ExplainError, explain, simulator_annotations
    from berth.objects import ObjectError, parse_pod
    from berth.snapshot import SnapshotError, from_cluster, from_dump

    engine = Engine(config=config, seed=0)
    key = f"{namespace}/{name}"
    connection = None
    try:
        if dump is not None:
            snapshot = from_dump(engine, read_dump_or_fail(dump))
            for problem in snapshot.problems:
                click.echo(f"warning: skipped {problem}", err=True)
        else:
            connection = await connect_or_fail(kubeconfig, timeout=timeout)
            try:
                snapshot = await from_cluster(engine, connection, timeout=timeout)
            except SnapshotError as exc:
                raise click.ClickException(str(exc)) from None
        if engine.refresher is not None:
            down = [n for n, up in (await engine.refresher.refresh_once()).items() if not up]
            await engine.refresher.stop()
            for source in down:
                click.echo(f"warning: metric source {source!r} unavailable", err=True)
        raw = snapshot.pod(key)
        if raw is None:
            raise BadInput(f"pod {key}: not found")
        try:
            pod = engine.state.pods.get(key) or parse_pod(raw)
        except ObjectError as exc:
            raise BadInput(f"pod {key}: {exc}") from None
        try:
            expl = explain(engine, pod, profile=profile)
        except ExplainError as exc:
            raise BadInput(str(exc)) from None
        if annotate:
            assert connection is not None
            await write_annotations(connection, namespace, name, simulator_annotations(expl))
        return expl
    finally:
        if connection is not None:
            await connection.close()


async def write_annotations(
    connection: Any, namespace: str, name: str, values: dict[str, str]
) -> None:
    from berth.kube.client import quote_path, read_json, status_message

    path = quote_path("api", "v1", "namespaces", namespace, "pods", name)
    try:
        response = await connection.request(
            "PATCH",
            path,
            {"metadata": {"annotations": values}},
            content_type="application/merge-patch+json",
        )
        answer = await read_json(response)
    except (TimeoutError, aiohttp.ClientError) as exc:
        raise click.ClickException(f"annotating pod {namespace}/{name}: {exc!r}") from None
    if response.status >= 300:
        raise click.ClickException(
            f"annotating pod {namespace}/{name}: HTTP {response.status}: {status_message(answer)}"
        )


async def ask_server(
    server: str,
    namespace: str,
    name: str,
    *,
    token_file: str | None,
    ca_file: str | None,
    profile: str | None,
    timeout: float,
) -> Explanation:
    """The explanation a running `berth run` computes on its own state."""
    from berth.explain import Explanation
    from berth.secretfile import TokenError, read_token

    try:
        token = read_token(
            value=os.environ.get(DEBUG_TOKEN_ENV) if token_file is None else None,
            file=token_file,
            what="the debug token",
        )
    except TokenError as exc:
        raise BadInput(str(exc)) from None
    if token is None:
        raise BadInput(f"--server needs a token: --token-file or ${DEBUG_TOKEN_ENV}")
    if not server.startswith(("http://", "https://")):
        raise BadInput(f"--server {server}: expected http(s)://HOST:PORT")
    ssl_context: ssl.SSLContext | bool = True
    if ca_file is not None:
        ssl_context = ssl.create_default_context(cafile=ca_file)
    url = f"{server.rstrip('/')}{EXPLAIN_PATH}/{namespace}/{name}"
    params = {"profile": profile} if profile else {}
    try:
        async with (
            aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=timeout), trust_env=False
            ) as session,
            session.get(
                url,
                params=params,
                headers={"Authorization": f"Bearer {token}"},
                ssl=ssl_context,
            ) as response,
        ):
            body = await response.read()
    except (TimeoutError, aiohttp.ClientError, ssl.SSLError) as exc:
        raise click.ClickException(f"--server {server}: {exc!r}") from None
    text = body[:300].decode("utf-8", "replace").strip()
    if response.status in (400, 404):
        raise BadInput(f"--server {server}: {text}")
    if response.status != 200:
        raise click.ClickException(f"--server {server}: HTTP {response.status}: {text}")
    try:
        return Explanation.from_json(json.loads(body))
    except (ValueError, KeyError, TypeError) as exc:
        raise click.ClickException(f"--server {server}: not an explanation ({exc})") from None


__all__ = ["DEBUG_TOKEN_ENV", "EXPLAIN_PATH", "explain_command", "parse_pod_ref", "render"]
