"""The `berth` command line: one group, one subcommand per front. Nothing else lives here."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any, NoReturn

import click

from berth import __version__
from berth.clierrors import BadInput, BerthGroup, CommandError, require_temp_dir
from berth.cliparams import ADDRESS, ADDRESS_OR_EMPTY
from berth.inputs import serving_tls_options

if TYPE_CHECKING:
    from berth.config import Config
    from berth.simulate import Decision, Reasons, Simulation
from berth.bench.command import bench
from berth.capacity_command import capacity_command
from berth.cluster.command import cluster
from berth.explain_command import explain_command
from berth.rebalance.command import rebalance_command
from berth.webhook.command import webhook


@click.group(cls=BerthGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="berth")
def main() -> None:
    """Berth: a Kubernetes scheduler with upstream semantics and live-metric placement."""


main.add_command(cluster)
main.add_command(bench)
main.add_command(explain_command)
main.add_command(capacity_command)
main.add_command(rebalance_command)
main.add_command(webhook)


def _fail(message: str, *, code: int) -> NoReturn:
    """One line on stderr and exit status `code` (2: the input; 1: at run time)."""
    raise (BadInput if code == 2 else CommandError)(message)


config_option = click.option(
    "--config",
    "config_path",
    type=click.Path(dir_okay=False),
    default=None,
    help="A BerthConfiguration, or a KubeSchedulerConfiguration (v1), file (default: every "
    "field's default; see `berth config view`).",
)


def _load_config(path: str | None) -> Config:
    """The configuration; a ConfigError ends the command with one line per problem (exit 2)."""
    from berth.config import load_config

    config = load_config(path)
    for warning in config.warnings:
        click.echo(f"warning: {path}: {warning}", err=True)
    return config


@main.command()
@click.argument("dump", type=str)
@config_option
@click.option(
    "--output",
    "-o",
    type=click.Choice(["table", "json"]),
    default="table",
    show_default=True,
    help="table for people, json for one object per pending pod.",
)
@click.option("--seed", type=int, default=None, help="Seed for random tie-breaks (reproducible).")
@click.option(
    "--scores",
    "scores",
    # every node's scores at 2,000 nodes made `-o json` 870 MB for 10,000 pods
    default="top:5",
    show_default=True,
    metavar="none|top:N|all",
    callback=lambda ctx, param, value: _scores_option(value),
    help="Which nodes' scores a JSON line holds: the chosen node's total only, the N best "
    "nodes' (totals and each plugin's), or every scored node's.",
)
@click.option(
    "--reasons",
    type=click.Choice(["all", "pending", "none"]),
    default="pending",
    show_default=True,
    help="Whose JSON lines name each rejected node's reasons: every pod's, the pods left "
    "pending, or none (the message sums them up).",
)
@click.option(
    "--compare-upstream",
    is_flag=True,
    help="Also run kube-scheduler's own plugins on DUMP and print where they differ "
    "(exit 0 the same, 1 different, 2 the oracle is not built).",
)
@click.option(
    "--report",
    "report_path",
    type=click.Path(dir_okay=False),
    default=None,
    help="Also write a self-contained HTML page: node heat maps, pending pods with each "
    "node's reasons, every placed pod's score by plugin.",
)
@click.option(
    "--compare",
    "compare_path",
    type=click.Path(dir_okay=False),
    default=None,
    help="With --report: simulate the dump again under this second configuration and show "
    "the pods the two place differently.",
)
def simulate(
    dump: str,
    config_path: str | None,
    output: str,
    seed: int | None,
    scores: int | None,
    reasons: Reasons,
    compare_upstream: bool,
    report_path: str | None,
    compare_path: str | None,
) -> None:
    """Schedule the pending pods of DUMP offline and explain each decision.

    DUMP is what `kubectl get nodes,pods -A -o yaml` (or `-o json`) prints, a multi-document
    YAML stream, or JSON; `-` reads standard input. A run longer than two seconds shows its
    progress on stderr when that is a terminal.
    """
    from tqdm import tqdm

    from berth.clierrors import BadInput
    from berth.dump import read_dump
    from berth.simulate import Simulation, format_table, others_note, to_json_line

    if compare_path is not None and report_path is None:
        raise BadInput("--compare goes with --report (the comparison is shown in the report)")
    config = _load_config(config_path)
    other = _load_config(compare_path) if compare_path is not None else None
    data = read_dump(dump)
    if compare_upstream:
        _compare_upstream(data, config, seed)
    as_json = output == "json"
    kept_reasons: Reasons
    if report_path is not None:  # the page shows every node's reasons and every plugin's score
        top_scores, kept_reasons = None, "all"
    elif as_json:
        top_scores, kept_reasons = scores, reasons
    else:  # the table prints each pending pod's message, never each node's reasons or scores
        top_scores, kept_reasons = 0, "none"
    sim = Simulation(
        dump=data, config=config, seed=seed, top_scores=top_scores, reasons=kept_reasons
    )
    for problem in sim.load_errors:
        click.echo(f"warning: skipped {problem}", err=True)
    warnings = sim.sample_metrics()
    for problem in warnings:
        click.echo(f"warning: {problem}", err=True)
    left_alone = others_note(sim.others, sim.engine.schedulers)
    if left_alone is not None:
        click.echo(f"note: {left_alone}", err=True)
        warnings.append(left_alone)
    decisions = tqdm(
        sim.run(),
        total=len(sim.pending),
        desc="simulate",
        unit="pod",
        file=sys.stderr,
        delay=2.0,
        leave=False,
        disable=not sys.stderr.isatty() or (as_json and sys.stdout.isatty()),
    )
    done = []
    for decision in decisions:
        done.append(decision)
        if as_json:
            click.echo(to_json_line(decision))
    decisions.close()
    if not as_json:
        click.echo(format_table(done))
    if report_path is not None:
        second = None
        if other is not None:
            assert compare_path is not None
            second = (compare_path, list(Simulation(dump=data, config=other, seed=seed).run()))
        _write_report(
            sim,
            done,
            path=report_path,
            title=f"berth simulate {dump}",
            label=config_path or "the default configuration",
            compare=second,
            warnings=[*sim.load_errors, *warnings],
        )


def _scores_option(value: str) -> int | None:
    from berth.simulate import parse_scores

    try:
        return parse_scores(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None


def _compare_upstream(dump: Any, config: Config, seed: int | None) -> NoReturn:
    """`simulate --compare-upstream`: the differences, pod by pod and node by node."""
    from berth.config import ConfigError
    from berth.upstream.differential import compare_with_upstream
    from berth.upstream.errors import UpstreamError
    from berth.upstream.oracle import Oracle

    try:
        with Oracle() as oracle:
            result = compare_with_upstream(oracle, dump, config, seed=seed)
    except ConfigError as exc:
        _fail(f"kube-scheduler cannot run this configuration: {exc}", code=2)
    except UpstreamError as exc:
        _fail(str(exc), code=2)
    for difference in result.differences:
        click.echo(str(difference))
    pods = len(result.upstream)
    if result.differences:
        click.echo(f"{len(result.differences)} difference(s) over {pods} pending pod(s)")
        raise SystemExit(1)
    click.echo(f"Berth and kube-scheduler agree on all {pods} pending pod(s)")
    raise SystemExit(0)


def _write_report(
    sim: Simulation,
    decisions: list[Decision],
    *,
    path: str,
    title: str,
    label: str,
    compare: tuple[str, list[Decision]] | None,
    warnings: list[str],
) -> None:
    """`simulate --report`: the self-contained HTML page."""
    from berth.clierrors import BadInput
    from berth.report.html import simulation_page
    from berth.report.simulation import build_report

    report = build_report(
        sim, decisions, title=title, compare=compare, label=label, warnings=warnings
    )
    try:
        with open(path, "w", encoding="utf-8") as f:
            f.write(simulation_page(report))
    except OSError as exc:
        raise BadInput(f"--report {path}: cannot write: {exc.strerror}") from None
    click.echo(f"report written to {path}", err=True)


@main.command()
@config_option
@click.option(
    "--kubeconfig",
    type=click.Path(dir_okay=False),
    default=None,
    help="kubeconfig (default: $KUBECONFIG, ~/.kube/config, in-cluster, else an embedded cluster).",
)
@click.option(
    "--leader-elect/--no-leader-elect",
    default=None,
    help="Override leaderElection.leaderElect from the config.",
)
@click.option(
    "--bind-address",
    type=ADDRESS_OR_EMPTY,
    default="127.0.0.1:10269",
    show_default=True,
    help="Address of /healthz, /readyz and /metrics ('' to disable).",
)
@click.option("--log-format", type=click.Choice(["text", "json"]), default="text")
@click.option("--log-level", type=click.Choice(["debug", "info", "warning"]), default="info")
@click.option(
    "--embedded-nodes",
    type=int,
    default=3,
    show_default=True,
    help="Nodes of the embedded cluster started when no cluster is configured.",
)
@click.option(
    "--identity",
    default=None,
    help="Leader-election identity (default: hostname and a random suffix).",
)
@serving_tls_options
@click.option(
    "--debug-token-file",
    type=click.Path(exists=True, dir_okay=False),
    default=None,
    help="Serve /debug/explain (for `berth explain --server`) to callers sending this bearer "
    "token (first line of FILE, or $BERTH_DEBUG_TOKEN); not served without one.",
)
@click.option(
    "--api-dispatcher",
    type=click.Choice(["process", "inline"]),
    default="process",
    show_default=True,
    help="Where bindings, events and PodScheduled conditions are sent from: a worker process "
    "(another core; the decisions never wait on them) or this process.",
)
def run(
    config_path: str | None,
    kubeconfig: str | None,
    leader_elect: bool | None,
    bind_address: str,
    log_format: str,
    log_level: str,
    embedded_nodes: int,
    identity: str | None,
    tls_cert_file: str | None,
    tls_private_key_file: str | None,
    debug_token_file: str | None,
    api_dispatcher: str,
) -> None:
    """Run Berth as a scheduler in a cluster (a second scheduler beside kube-scheduler)."""
    import asyncio
    import os
    import signal

    from berth.explain_command import DEBUG_TOKEN_ENV
    from berth.inputs import connect_or_fail, serving_tls_or_fail
    from berth.kube.client import NoClusterConfigured, connect
    from berth.run import Runner, RunOptions, default_identity
    from berth.secretfile import TokenError, read_token
    from berth.telemetry import setup_logging

    setup_logging(fmt=log_format, level=log_level)
    serving_tls_or_fail(tls_cert_file, tls_private_key_file)
    try:
        debug_token = read_token(
            value=os.environ.get(DEBUG_TOKEN_ENV) if debug_token_file is None else None,
            file=debug_token_file,
            what="the debug token",
        )
    except TokenError as exc:
        _fail(str(exc), code=2)
    config = _load_config(config_path)
    if bind_address:
        from berth.listener import bind_socket
        from berth.telemetry import parse_address

        # A taken port fails now, before an embedded cluster is started for nothing.
        bind_socket(*parse_address(bind_address)).close()
    model = config.model
    kubeconfig = kubeconfig or model.clientConnection.kubeconfig or None
    elect = model.leaderElection.leaderElect if leader_elect is None else leader_elect

    async def main_async() -> int:
        embedded = None
        try:
            connection = await connect_or_fail(
                kubeconfig,
                timeout=model.clientConnection.timeout,
                qps_burst=model.clientConnection.burst,
                no_cluster=None,
            )
        except NoClusterConfigured:
            from berth.cluster import AsyncEmbeddedCluster

            require_temp_dir("berth run without a cluster (the embedded cluster's kubeconfig)")

            embedded = AsyncEmbeddedCluster(nodes=embedded_nodes, zones=2)
            await embedded.start()
            click.echo(
                f"no cluster configured: started an embedded cluster at {embedded.url}\n"
                f"  kubectl --kubeconfig {embedded.kubeconfig_path} get nodes",
                err=True,
            )
            connection = await connect(
                kubeconfig=str(embedded.kubeconfig_path),
                qps_burst=model.clientConnection.burst,
                request_timeout=model.clientConnection.timeout,
            )
        runner = Runner(
            config=config,
            connection=connection,
            options=RunOptions(
                leader_elect=elect,
                bind_address=bind_address or None,
                identity=identity or default_identity(),
                tls_cert_file=tls_cert_file,
                tls_key_file=tls_private_key_file,
                debug_token=debug_token,
                api_dispatcher=api_dispatcher,
            ),
        )
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, runner.stop_requested.set)
        try:
            return await runner.run()
        finally:
            await connection.close()
            if embedded is not None:
                await embedded.stop()

    raise SystemExit(asyncio.run(main_async()))


@main.command()
@config_option
@click.option(
    "--workload",
    type=click.Path(exists=True, dir_okay=False),
    default=None,
    help="Pods to create (default: the shipped sample, `berth examples workload.yaml`).",
)
@click.option(
    "--timeout",
    type=float,
    default=30.0,
    show_default=True,
    help="Seconds to wait for the workload to settle.",
)
@click.option("--keep-running", is_flag=True, help="Keep the cluster and Berth running.")
@click.option(
    "--kubeconfig-out",
    type=click.Path(dir_okay=False),
    default=None,
    help="Where to write the embedded cluster's kubeconfig.",
)
def demo(
    config_path: str | None,
    workload: str | None,
    timeout: float,
    keep_running: bool,
    kubeconfig_out: str | None,
) -> None:
    """Start an embedded cluster, run Berth on it, place a sample workload, show the result."""
    import contextlib
    from importlib.resources import as_file
    from pathlib import Path

    from berth.demo import run_demo
    from berth.examples import example
    from berth.telemetry import setup_logging

    setup_logging(level="warning")
    config = _load_config(config_path)
    require_temp_dir("berth demo (its embedded cluster's kubeconfig)")
    with contextlib.ExitStack() as stack:
        path = (
            Path(workload) if workload else stack.enter_context(as_file(example("workload.yaml")))
        )
        if not path.exists():
            _fail(f"{path}: no such workload file (pass --workload)", code=1)
        code = run_demo(
            config=config,
            workload=path,
            timeout=timeout,
            keep_running=keep_running,
            kubeconfig_out=Path(kubeconfig_out) if kubeconfig_out else None,
        )
    raise SystemExit(code)


@main.command()
@click.argument("name", required=False)
def examples(name: str | None) -> None:
    """List the sample files shipped with Berth, or print the one called NAME.

    `berth examples cluster.yaml > cluster.yaml` writes the sample dump `berth simulate` reads.
    """
    from berth.examples import DESCRIPTIONS, example

    if name is None:
        width = max(map(len, DESCRIPTIONS))
        for file, what in DESCRIPTIONS.items():
            click.echo(f"{file:<{width}}  {what}")
        return
    try:
        click.echo(example(name).read_text(), nl=False)
    except KeyError:
        _fail(f"{name}: no such example (one of: {', '.join(DESCRIPTIONS)})", code=2)


@main.command()
@click.argument("nodes", nargs=-1)
@click.option("--key", default=None, help="Annotation key [default: sim.berth.io/price].")
@click.option(
    "--from-file",
    type=click.Path(dir_okay=False),
    default=None,
    help="YAML or JSON map of node name to number.",
)
@click.option("--value", type=float, default=None, help="One value for every selected node.")
@click.option(
    "--random",
    "random_range",
    nargs=2,
    type=float,
    default=None,
    metavar="LOW HIGH",
    help="A random value in [LOW, HIGH] per node (the node price demo).",
)
@click.option("--seed", type=int, default=None, help="Seed for --random (reproducible).")
@click.option("--remove", is_flag=True, help="Remove the annotation instead.")
@click.option("--list", "list_only", is_flag=True, help="Show numeric annotations, change nothing.")
@click.option("-l", "--selector", default=None, help="Only nodes matching this label selector.")
@click.option("--kubeconfig", type=click.Path(dir_okay=False), default=None)
def annotate(
    nodes: tuple[str, ...],
    key: str | None,
    from_file: str | None,
    value: float | None,
    random_range: tuple[float, float] | None,
    seed: int | None,
    remove: bool,
    list_only: bool,
    selector: str | None,
    kubeconfig: str | None,
) -> None:
    """Set numeric annotations on NODES (default: all nodes) for metric-aware scheduling."""
    from berth.metrics.annotate import AnnotateError, core_api, run_annotate

    try:
        api = core_api(kubeconfig)
    except AnnotateError as exc:
        _fail(str(exc), code=2)  # the kubeconfig given is unusable: the user's input
    try:
        out = run_annotate(
            api=api,
            nodes=nodes,
            key=key,
            from_file=from_file,
            value=value,
            random_range=random_range,
            seed=seed,
            remove=remove,
            list_only=list_only,
            selector=selector,
        )
    except AnnotateError as exc:
        _fail(str(exc), code=1)
    click.echo(out)


@main.command()
@config_option
@click.option(
    "--kubeconfig",
    type=click.Path(dir_okay=False),
    default=None,
    help="kubeconfig (default: $KUBECONFIG, ~/.kube/config, in-cluster, else no cluster).",
)
@click.option("--bind-address", type=ADDRESS, default="127.0.0.1:8888", show_default=True)
@click.option(
    "--url-prefix",
    default="/berth",
    show_default=True,
    help="Path prefix of the verbs (the path part of the extender's urlPrefix).",
)
@click.option(
    "--node-cache-capable/--no-node-cache-capable",
    default=False,
    show_default=True,
    help="Expect NodeNames and answer from Berth's own node informer (needs a cluster).",
)
@click.option("--tls-cert", type=click.Path(exists=True, dir_okay=False), default=None)
@click.option("--tls-key", type=click.Path(exists=True, dir_okay=False), default=None)
@click.option(
    "--client-ca-file",
    type=click.Path(exists=True, dir_okay=False),
    default=None,
    help="Verify client certificates against this CA (with --tls-cert); a verified client "
    "may call bind (kube-scheduler's tlsConfig certFile/keyFile).",
)
@click.option(
    "--bind-token-file",
    type=click.Path(exists=True, dir_okay=False),
    default=None,
    help="A bearer token (first line of FILE, or $BERTH_EXTENDER_BIND_TOKEN) that may call "
    "bind. Without this or --client-ca-file the bind verb is refused.",
)
@click.option(
    "--max-body-bytes",
    type=click.IntRange(min=1024),
    default=64 * 1024 * 1024,
    show_default=True,
    help="Larger request bodies are refused with 413.",
)
@click.option(
    "--max-requests-inflight",
    type=click.IntRange(min=1),
    default=100,
    show_default=True,
    help="Requests served at once; more get 429.",
)
@click.option(
    "--max-connections",
    type=click.IntRange(min=1),
    default=1024,
    show_default=True,
    help="Open connections; more are closed at once.",
)
@click.option(
    "--header-timeout",
    type=click.FloatRange(min=0.001),
    default=32.0,
    show_default=True,
    help="Seconds a new connection has to send its request headers.",
)
@click.option(
    "--idle-timeout",
    type=click.FloatRange(min=0.001),
    default=90.0,
    show_default=True,
    help="Seconds an idle connection is kept open.",
)
@click.option(
    "--request-timeout",
    type=click.FloatRange(min=0.001),
    default=30.0,
    show_default=True,
    help="Seconds to receive a request body.",
)
@click.option("--log-format", type=click.Choice(["text", "json"]), default="text")
@click.option("--log-level", type=click.Choice(["debug", "info", "warning"]), default="info")
def extender(
    config_path: str | None,
    kubeconfig: str | None,
    bind_address: str,
    url_prefix: str,
    node_cache_capable: bool,
    tls_cert: str | None,
    tls_key: str | None,
    client_ca_file: str | None,
    bind_token_file: str | None,
    max_body_bytes: int,
    max_requests_inflight: int,
    max_connections: int,
    header_timeout: float,
    idle_timeout: float,
    request_timeout: float,
    log_format: str,
    log_level: str,
) -> None:
    """Serve kube-scheduler's extender webhook (filter, prioritize, preempt, bind) with
    Berth's plugins. See docs/extender.md."""
    import asyncio
    import os

    from berth.extender.server import ExtenderOptions, serve
    from berth.listener import ListenerLimits
    from berth.secretfile import TokenError, read_token
    from berth.telemetry import is_loopback, parse_address, setup_logging

    setup_logging(fmt=log_format, level=log_level)
    if bool(tls_cert) != bool(tls_key):
        _fail("--tls-cert and --tls-key go together", code=2)
    if client_ca_file and not tls_cert:
        _fail(
            "--client-ca-file needs --tls-cert and --tls-key (client certificates need TLS)", code=2
        )
    try:
        bind_token = read_token(
            value=os.environ.get("BERTH_EXTENDER_BIND_TOKEN") if not bind_token_file else None,
            file=bind_token_file,
            what="the bind token",
        )
    except TokenError as exc:
        _fail(str(exc), code=2)
    if tls_cert:
        from berth.listener import server_tls

        server_tls(tls_cert, tls_key, client_ca=client_ca_file)  # unusable files fail now
    host, port = parse_address(bind_address)  # checked by ADDRESS
    if port:
        from berth.listener import bind_socket

        bind_socket(host, port).close()  # a taken port fails now, before the informers start
    if not tls_cert and not is_loopback(host):
        click.echo(
            f"warning: serving the extender on {host} over plain HTTP: anyone who can reach it "
            "reads your nodes' placement; add --tls-cert/--tls-key",
            err=True,
        )
    config = _load_config(config_path)
    options = ExtenderOptions(
        bind_address=bind_address,
        url_prefix=url_prefix,
        node_cache_capable=node_cache_capable,
        tls_cert_file=tls_cert,
        tls_key_file=tls_key,
        client_ca_file=client_ca_file,
        bind_token=bind_token,
        max_body_bytes=max_body_bytes,
        max_requests_inflight=max_requests_inflight,
        request_timeout=request_timeout,
        listener=ListenerLimits(
            max_connections=max_connections,
            header_timeout=header_timeout,
            idle_timeout=idle_timeout,
        ),
    )
    raise SystemExit(asyncio.run(serve(config=config, kubeconfig=kubeconfig, options=options)))


@main.group("config")
def config_group() -> None:
    """Check a configuration, or print the one in effect with every default filled in.

    A file is a BerthConfiguration (berth.io/v1alpha1) or kube-scheduler's own
    KubeSchedulerConfiguration (kubescheduler.config.k8s.io/v1); see docs/configuration.md.
    """


@config_group.command("view")
@config_option
@click.option(
    "--output", "-o", type=click.Choice(["yaml", "json"]), default="yaml", show_default=True
)
def config_view(config_path: str | None, output: str) -> None:
    """Print the effective configuration: the file (or none) merged with every default, as
    kube-scheduler's --write-config-to writes its own."""
    import orjson
    import yaml

    from berth.config.view import effective

    doc = effective(_load_config(config_path))
    if output == "json":
        click.echo(orjson.dumps(doc, option=orjson.OPT_INDENT_2).decode())
    else:
        click.echo(yaml.safe_dump(doc, sort_keys=False, allow_unicode=True), nl=False)


@config_group.command("validate")
@click.argument("file", type=click.Path(dir_okay=False))
def config_validate(file: str) -> None:
    """Check FILE: every problem on its own line and exit status 2, or `FILE: valid`."""
    config = _load_config(file)
    profiles = ", ".join(config.profiles)
    click.echo(f"{file}: valid ({len(config.profiles)} profile(s): {profiles})")
