"""`berth examples`: the shipped sample files, listed and printed from the package."""

from __future__ import annotations

import yaml
from click.testing import CliRunner

from berth.cli import main
from berth.examples import DESCRIPTIONS
from tests.packaging.project import ROOT


def test_lists_every_shipped_file() -> None:
    result = CliRunner().invoke(main, ["examples"])
    assert result.exit_code == 0, result.output
    assert [line.split()[0] for line in result.output.splitlines()] == list(DESCRIPTIONS)
    shipped = {p.name for p in (ROOT / "src" / "berth" / "examples").glob("*.yaml")}
    assert shipped == set(DESCRIPTIONS)


def test_prints_one_file_verbatim() -> None:
    result = CliRunner().invoke(main, ["examples", "cluster.yaml"])
    assert result.exit_code == 0
    assert result.output == (ROOT / "examples" / "cluster.yaml").read_text()
    assert yaml.safe_load(result.output)["kind"] == "List"


def test_an_unknown_name_is_one_line_and_exit_2() -> None:
    result = CliRunner().invoke(main, ["examples", "nope.yaml"])
    assert result.exit_code == 2
    assert result.output.strip().splitlines() == [
        "error: nope.yaml: no such example (one of: " + ", ".join(DESCRIPTIONS) + ")"
    ]
