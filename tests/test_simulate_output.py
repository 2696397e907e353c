"""What `berth simulate` prints, bounded by choice: `--scores none|top:N|all` (the chosen node's
total, the N best nodes' totals and plugin scores, or every scored node's) and `--reasons
all|pending|none` (whose lines name each rejected node's reasons); the table's score is the
JSON's."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from berth.cli import main
from berth.simulate import parse_scores

DUMP = str(Path(__file__).resolve().parents[1] / "examples" / "cluster.yaml")


def simulate(*args: str) -> list[dict[str, Any]]:
    result = CliRunner().invoke(main, ["simulate", DUMP, "-o", "json", "--seed", "1", *args])
    assert result.exit_code == 0, result.output
    return [json.loads(line) for line in result.output.splitlines() if line.startswith("{")]


@pytest.mark.parametrize(
    ("text", "want"), [("none", 0), ("top:1", 1), ("top:25", 25), ("all", None)]
)
def test_parse_scores(text: str, want: int | None) -> None:
    assert parse_scores(text) == want


@pytest.mark.parametrize("text", ["top:0", "top:", "top:-1", "best:3", "", "ALL"])
def test_parse_scores_refuses(text: str) -> None:
    with pytest.raises(ValueError, match="expected none, top:N"):
        parse_scores(text)


def test_top_scores_are_the_best_with_the_chosen_node_first() -> None:
    every = {d["pod"]: d for d in simulate("--scores", "all")}
    top = simulate("--scores", "top:2")
    placed = [d for d in top if d["node"]]
    assert placed and any(len(every[d["pod"]]["scores"]) > 2 for d in placed)
    for d in placed:
        full = every[d["pod"]]
        assert d["node"] == full["node"] and d["score"] == full["scores"][d["node"]]
        assert next(iter(d["scores"])) == d["node"]
        assert len(d["scores"]) == min(2, len(full["scores"]))
        assert all(full["scores"][n] == s for n, s in d["scores"].items())
        # nothing left out scores higher than what was kept
        kept_low = min(d["scores"].values())
        left_out = [s for n, s in full["scores"].items() if n not in d["scores"]]
        assert all(s <= kept_low for s in left_out)
        for plugin, scores in d["pluginScores"].items():
            assert set(scores) == set(d["scores"])
            assert all(full["pluginScores"][plugin][n] == s for n, s in scores.items())


def test_no_scores_keeps_the_chosen_nodes_total() -> None:
    for d in simulate("--scores", "none"):
        assert d["scores"] == {} and "pluginScores" not in d
        if d["node"]:
            assert isinstance(d["score"], int)


def test_reasons_of_placed_pods_only_when_asked() -> None:
    everyone = {d["pod"]: d for d in simulate("--reasons", "all")}
    pending_only = {d["pod"]: d for d in simulate()}  # the default: --reasons pending
    none = simulate("--reasons", "none")
    assert any(d["node"] and d["reasons"] for d in everyone.values())
    assert any(not d["node"] and d["reasons"] for d in everyone.values())
    for pod, d in pending_only.items():
        assert d["reasons"] == ({} if d["node"] else everyone[pod]["reasons"])
        assert d["message"] == everyone[pod]["message"]
    assert all(d["reasons"] == {} for d in none)


def test_the_tables_score_is_the_chosen_nodes_total() -> None:
    result = CliRunner().invoke(main, ["simulate", DUMP, "--seed", "1"])
    assert result.exit_code == 0, result.output
    rows = {line.split()[0]: line.split() for line in result.output.splitlines()[1:] if line}
    for d in simulate("--scores", "none"):
        if d["node"]:
            assert rows[d["pod"]][1:3] == [d["node"], str(d["score"])]


def _pod(name: str, **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": "default"},
        "spec": {"containers": [{"name": "c", "image": "x"}], **spec},
    }


@pytest.mark.parametrize(
    ("pods", "config", "note"),
    [
        (  # a dump of the default scheduler's pods: none of them is Berth's
            [_pod("a"), _pod("b", schedulerName="volcano"), _pod("c", schedulerName="volcano")],
            None,
            "note: 3 pending pods name another scheduler (default-scheduler 1, volcano 2), not "
            "simulated; this configuration's profiles: berth",
        ),
        (
            [_pod("a", schedulerName="other"), _pod("b", schedulerName="berth")],
            None,
            "note: 1 pending pod names another scheduler (other 1), not simulated; this "
            "configuration's profiles: berth",
        ),
        (  # a profile named after the pods' scheduler simulates them
            [_pod("a")],
            {"profiles": [{"schedulerName": "default-scheduler"}]},
            None,
        ),
        ([_pod("a", schedulerName="berth"), _pod("b", nodeName="n1")], None, None),
    ],
)
def test_pending_pods_of_other_schedulers_are_counted(
    tmp_path: Path, pods: list[dict[str, Any]], config: dict[str, Any] | None, note: str | None
) -> None:
    node = {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {"name": "n1"},
        "status": {"allocatable": {"cpu": "4", "memory": "8Gi", "pods": "110"}},
    }
    dump = tmp_path / "dump.json"
    dump.write_text(json.dumps({"apiVersion": "v1", "kind": "List", "items": [node, *pods]}))
    args = ["simulate", str(dump)]
    if config is not None:
        path = tmp_path / "config.json"
        path.write_text(
            json.dumps({"apiVersion": "berth.io/v1alpha1", "kind": "BerthConfiguration", **config})
        )
        args += ["--config", str(path)]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    notes = [line for line in result.stderr.splitlines() if line.startswith("note:")]
    assert notes == ([note] if note else [])
