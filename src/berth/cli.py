"""The `berth` command line: one group, one subcommand per front. Nothing else lives here."""

from __future__ import annotations

import click

from berth import __version__
from berth.cluster.command import cluster


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="berth")
def main() -> None:
    """Berth: a Kubernetes scheduler with upstream semantics and live-metric placement."""


main.add_command(cluster)


def _fail(message: str, *, code: int) -> None:
    click.echo(f"error: {message}", err=True)
    raise SystemExit(code)


@main.command()
@click.argument("dump", type=str)
@click.option(
    "--config",
    "config_path",
    type=click.Path(dir_okay=False),
    default=None,
    help="BerthConfiguration file (default: built-in defaults).",
)
@click.option(
    "--output",
    "-o",
    type=click.Choice(["table", "json"]),
    default="table",
    show_default=True,
    help="table for people, json for one object per pending pod.",
)
@click.option("--seed", type=int, default=None, help="Seed for random tie-breaks (reproducible).")
def simulate(dump: str, config_path: str | None, output: str, seed: int | None) -> None:
    """Schedule the pending pods of DUMP offline and explain each decision.

    DUMP is what `kubectl get nodes,pods -A -o yaml` prints, a multi-document YAML stream, or
    JSON; `-` reads standard input.
    """
    from berth.config import ConfigError, load_config
    from berth.dump import DumpError, read_dump
    from berth.simulate import Simulation, format_table, to_json_line

    try:
        config = load_config(config_path)
    except ConfigError as exc:
        _fail(str(exc), code=2)
    try:
        data = read_dump(dump)
    except DumpError as exc:
        _fail(str(exc), code=1)
    sim = Simulation(dump=data, config=config, seed=seed)
    for problem in sim.load_errors:
        click.echo(f"warning: skipped {problem}", err=True)
    if output == "json":
        for decision in sim.run():
            click.echo(to_json_line(decision))
    else:
        click.echo(format_table(list(sim.run())))


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
        out = run_annotate(
            api=core_api(kubeconfig),
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
