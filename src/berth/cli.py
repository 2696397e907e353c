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
