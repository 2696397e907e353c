"""`berth explain` agrees with the scheduler: over the bench workloads, every pod is explained on
the engine's state just before the engine decides it, and the explanation names the node the
decision took (among its winners), the same totals and plugin scores for every scored node, and
the same per-node reasons for a pod that fits nowhere. Explaining changes nothing the decisions
see (the same run without explaining places every pod alike). Then the simulator's annotations
and the command's outputs and errors."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner

from berth.bench.runner import workload_config
from berth.bench.workload import NAMESPACE, Size, builtin_workloads
from berth.cli import main
from berth.config import parse_config
from berth.dump import parse_dump
from berth.explain import (
    FILTER_RESULT,
    FINAL_SCORE_RESULT,
    PASSED,
    SCORE_RESULT,
    SELECTED_NODE,
    Explanation,
    conclusion,
    explain,
    simulator_annotations,
)
from berth.objects.pod import PodInfo
from berth.simulate import Decision, Simulation
from tests.builders import node, pod

# Under 100 nodes the scheduler scores every feasible node, as explain does (above, it scores
# a share: see the test of the sampled share below).
SIZE = Size("explain", nodes=40, running=60, pods=240)
WORKLOADS = list(builtin_workloads())


class Explained(Simulation):
    """A simulation that explains each pod on the state the engine is about to decide it on."""

    def __init__(self, **kw: Any) -> None:
        super().__init__(**kw)
        self.explained: dict[str, Explanation] = {}

    async def _decide(self, pod: PodInfo) -> Decision:
        self.explained[pod.key] = explain(self.engine, pod)
        return await super()._decide(pod)


def workload_dump(name: str, size: Size = SIZE) -> tuple[Any, Any]:
    workload = builtin_workloads()[name]
    nodes = workload.nodes(size)
    items = [
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NAMESPACE}},
        *nodes,
        *workload.running_pods(size, nodes),
        *workload.pending_pods(size),
    ]
    for k, raw in enumerate(items):  # creation order is queue order, as berth bench creates them
        raw["metadata"].setdefault(
            "creationTimestamp", f"2026-01-01T00:{k // 60:02d}:{k % 60:02d}Z"
        )
    return parse_dump(json.dumps({"kind": "List", "items": items})), workload_config(workload)


def by_name(workload: str) -> str:
    return workload


@pytest.mark.parametrize("workload", WORKLOADS, ids=by_name)
def test_explain_agrees_with_every_decision_of_a_run(workload: str) -> None:
    dump, raw_config = workload_dump(workload)
    config = parse_config(raw_config)
    sim = Explained(dump=dump, config=config, seed=7)
    decisions = list(sim.run())
    assert len(decisions) == SIZE.pods
    placed = 0
    for d in decisions:
        expl = sim.explained[d.pod]
        assert expl.node is None, d.pod  # explained while pending
        if d.preempted:  # placed after its victims went: explain saw no room before
            assert expl.feasible == [], d.pod
            continue
        if d.node is None:
            assert expl.feasible == [] and expl.winners == [], d.pod
            assert {v.node: list(v.reasons) for v in expl.nodes} == d.reasons, d.pod
            continue
        placed += 1
        assert d.node in expl.winners, (d.pod, d.node, expl.winners)
        assert expl.scored_by_scheduler == len(expl.feasible)
        totals = {v.node: v.total for v in expl.nodes if v.feasible}
        assert totals == d.scores, d.pod
        normalized = {
            v.node: {p: s.normalized for p, s in v.scores.items()} for v in expl.nodes if v.feasible
        }
        by_node: dict[str, dict[str, int]] = {}
        for plugin, per_node in d.plugin_scores.items():
            for n, score in per_node.items():
                by_node.setdefault(n, {})[plugin] = score
        # the same normalised score per plugin (explain leaves out those PreScore skipped)
        for n, plugins in normalized.items():
            assert plugins == {p: by_node[n][p] for p in plugins}, (d.pod, n)
            assert set(by_node[n]) - set(plugins) <= set(expl.skipped_scores), (d.pod, n)
    assert placed > SIZE.pods // 2
    # explaining left the decisions as they were
    again = list(Simulation(dump=workload_dump(workload)[0], config=config, seed=7).run())
    assert [(d.pod, d.node) for d in again] == [(d.pod, d.node) for d in decisions]


# Above 100 nodes the scheduler scores a share of the feasible nodes, from where its last scan
# stopped: explain names that share, from the scheduler's own scan position, and its pick.
SAMPLED_SIZE = Size("explain-sampled", nodes=160, running=160, pods=120)


@pytest.mark.parametrize("workload", ["SchedulingBasic", "Mixed"])
def test_above_100_nodes_explain_names_the_nodes_the_scheduler_scores_and_its_pick(
    workload: str,
) -> None:
    dump, raw_config = workload_dump(workload, SAMPLED_SIZE)
    config = parse_config(raw_config)
    sim = Explained(dump=dump, config=config, seed=7)
    decisions = list(sim.run())
    sampled = 0
    for d in decisions:
        expl = sim.explained[d.pod]
        if d.node is None or d.preempted:
            continue
        assert expl.scored_by_scheduler == len(d.scores) <= len(expl.feasible), d.pod
        if expl.scored_by_scheduler == len(expl.feasible):
            assert d.node in expl.winners and not expl.sampled, d.pod
            continue
        sampled += 1
        # the same nodes, in the same scan order, with the scheduler's own totals
        assert expl.sampled == d.scores and list(expl.sampled) == list(d.scores), d.pod
        assert d.node in expl.sampled_winners, (d.pod, d.node, expl.sampled_winners)
        assert f"from its scan position {expl.start_index}" in conclusion(expl)
    assert sampled > len(decisions) // 2
    # explaining left the scan position (and so every decision) as it was
    again = list(Simulation(dump=dump_again(workload), config=config, seed=7).run())
    assert [(d.pod, d.node) for d in again] == [(d.pod, d.node) for d in decisions]


def dump_again(workload: str) -> Any:
    return workload_dump(workload, SAMPLED_SIZE)[0]


def small_cluster() -> list[dict[str, Any]]:
    tainted = node("gpu", cpu="8")
    tainted["spec"] = {"taints": [{"key": "dedicated", "value": "gpu", "effect": "NoSchedule"}]}
    return [
        node("a", cpu="4"),
        node("b", cpu="4"),
        tainted,
        pod("running", cpu="2", node_name="a"),
        pod("other", cpu="1", node_name="a"),
        pod("web", cpu="500m"),
        pod("huge", cpu="6"),
    ]


def explained(name: str) -> Explanation:
    dump = parse_dump(json.dumps({"kind": "List", "items": small_cluster()}))
    sim = Simulation(dump=dump, config=parse_config({}), seed=0)
    return explain(sim.engine, sim.engine.state.pods.get(f"default/{name}") or pending(sim, name))


def pending(sim: Simulation, name: str) -> PodInfo:
    found = {key: p for key, p, _ in sim.pending if p is not None}
    return found[f"default/{name}"]


def test_every_filter_is_asked_and_the_first_rejection_is_the_status() -> None:
    expl = explained("huge")
    verdicts = {v.node: v for v in expl.nodes}
    assert expl.feasible == []
    # gpu: the taint is the first rejection; the filters after it are asked too (it fits)
    assert verdicts["gpu"].plugin == "TaintToleration"
    assert verdicts["gpu"].reasons == ("node(s) had untolerated taint(s)",)
    assert verdicts["gpu"].filters["NodeResourcesFit"] == PASSED
    assert verdicts["a"].reasons == ("Insufficient cpu",)
    assert expl.message.startswith("0/3 nodes are available: ")


def test_simulator_annotations() -> None:
    expl = explained("web")
    notes = simulator_annotations(expl)
    assert notes[SELECTED_NODE] == "b"  # a holds 3 of its 4 cpu
    filters = json.loads(notes[FILTER_RESULT])
    # each node's filters as upstream ran them: up to the first rejection
    assert list(filters["gpu"])[-1] == "TaintToleration"
    assert filters["gpu"]["TaintToleration"] == "node(s) had untolerated taint(s)"
    assert all(v == PASSED for v in filters["b"].values())
    assert set(filters["b"]) == set(expl.filters)
    scores, final = json.loads(notes[SCORE_RESULT]), json.loads(notes[FINAL_SCORE_RESULT])
    assert set(scores) == set(final) == {"a", "b"}
    for n in ("a", "b"):
        v = next(x for x in expl.nodes if x.node == n)
        assert final[n] == {p: str(s.weighted) for p, s in v.scores.items()}
        assert scores[n] == {p: str(s.raw) for p, s in v.scores.items()}
        assert sum(int(s) for s in final[n].values()) == v.total


def write(tmp_path: Path, items: list[dict[str, Any]]) -> Path:
    path = tmp_path / "cluster.yaml"
    path.write_text(yaml.safe_dump({"apiVersion": "v1", "kind": "List", "items": items}))
    return path


def test_the_command_table_and_json(tmp_path: Path) -> None:
    dump = write(tmp_path, small_cluster())
    runner = CliRunner()
    table = runner.invoke(main, ["explain", "default/web", "--dump", str(dump)])
    assert table.exit_code == 0, table.output
    lines = table.output.splitlines()
    assert lines[0] == "pod default/web (pending), profile berth: 2 of 3 nodes feasible"
    assert lines[-1].startswith("winner b, ")
    assert any(line.startswith("gpu ") and "untolerated taint" in line for line in lines)
    out = runner.invoke(main, ["explain", "default/running", "--dump", str(dump), "-o", "json"])
    assert out.exit_code == 0, out.output
    doc = json.loads(out.output)
    assert doc["node"] == "a" and doc["wouldStay"] is False and doc["winner"] == "b"
    assert Explanation.from_json(doc).to_json() == doc


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["a/b/c"], "a/b/c: expected NAMESPACE/POD"),
        (["default/missing"], "default/missing"),
        (["default/web", "--profile", "other"], "--profile other: no such profile"),
    ],
)
def test_the_command_errors_in_one_line(tmp_path: Path, args: list[str], message: str) -> None:
    dump = write(tmp_path, small_cluster())
    result = CliRunner().invoke(main, ["explain", *args, "--dump", str(dump)])
    assert result.exit_code != 0
    assert message in result.output
    assert "Traceback" not in result.output
    assert len(result.output.strip().splitlines()) == 1, result.output
