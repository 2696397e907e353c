"""`berth simulate` end to end through the CLI, on dumps in the shapes kubectl produces."""

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner

from berth.cli import main
from tests.builders import node, pod

ROOT = Path(__file__).resolve().parent.parent


def run(args: list[str], stdin: str | None = None) -> Any:
    return CliRunner().invoke(main, args, input=stdin)


def as_list(*items: dict[str, Any]) -> str:
    return yaml.safe_dump({"apiVersion": "v1", "kind": "List", "items": list(items)})


def lines(output: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in output.splitlines() if line.startswith("{")]


def test_example_dump_json() -> None:
    result = run(
        [
            "simulate",
            str(ROOT / "examples" / "cluster.yaml"),
            "-o",
            "json",
            "--seed",
            "1",
            "--reasons",
            "all",
            "--scores",
            "all",
        ]
    )
    assert result.exit_code == 0, result.output
    out = {d["pod"]: d for d in lines(result.output)}
    assert "default/not-ours" not in out  # another scheduler's pod is left alone
    assert out["ml/trainer"]["node"] == "node-a2"  # tolerates the taint, selects the GPU node
    assert out["batch/batch-huge"]["node"] is None
    assert out["batch/batch-huge"]["message"].startswith("0/5 nodes are available: ")
    assert out["batch/batch-huge"]["reasons"]["node-b2"] == ["node(s) were unschedulable"]
    # queue order: the priority-1000 pod goes first
    assert next(iter(out)) == "shop/db-0"
    assert out["shop/db-0"]["node"] in ("node-b1", "node-b3")  # prefers zone-b
    for d in out.values():
        if d["node"]:
            assert d["node"] in d["scores"] or d["scores"] == {}
            assert "node-b2" in d["reasons"]


def _low_then_high() -> list[dict[str, Any]]:
    pc = {
        "apiVersion": "scheduling.k8s.io/v1",
        "kind": "PriorityClass",
        "metadata": {"name": "high"},
        "value": 1000,
    }
    low = pod("low", cpu="1500m")
    low["metadata"]["creationTimestamp"] = "2026-01-01T00:00:00Z"
    high = pod("high", cpu="1500m", spec={"priorityClassName": "high"})
    high["metadata"]["creationTimestamp"] = "2026-01-02T00:00:00Z"
    return [pc, node("n1", cpu="2"), low, high]


def _admission() -> list[dict[str, Any]]:
    never = {
        "apiVersion": "scheduling.k8s.io/v1",
        "kind": "PriorityClass",
        "metadata": {"name": "never"},
        "value": 1000,
        "preemptionPolicy": "Never",
    }
    return [
        never,
        node("n1", cpu="1"),
        pod("low", cpu="1", node_name="n1", priority=0),
        pod("polite", cpu="1", spec={"priorityClassName": "never"}),
        pod("unknown", cpu="1", spec={"priorityClassName": "platinum"}),
    ]


def _unbound_immediate() -> list[dict[str, Any]]:
    claim = {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": {"name": "data", "namespace": "default"},
        "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}},
    }
    user = pod(
        "user",
        cpu="1",
        spec={"volumes": [{"name": "d", "persistentVolumeClaim": {"claimName": "data"}}]},
    )
    return [node("n1"), claim, user]


def _malformed() -> list[dict[str, Any]]:
    empty = pod("empty")
    empty["spec"]["containers"] = []
    return [node("n1"), pod("bad", cpu="lots"), empty, pod("ok")]


# What simulate says about each outcome of the engine's cycle: (name, dump items, per pod in the
# order reported, the fields its JSON line must have).
OUTCOMES: list[tuple[str, list[dict[str, Any]], list[tuple[str, dict[str, Any]]]]] = [
    (
        "scheduled: the node; the placement counts for later pods",
        [node("n1", cpu="2"), pod("a", cpu="1500m"), pod("b", cpu="1500m")],
        [
            ("default/a", {"node": "n1", "reasons": {}}),
            (
                "default/b",
                {
                    "node": None,
                    "reasons": {"n1": ["Insufficient cpu"]},
                    "message": "0/1 nodes are available: 1 Insufficient cpu. preemption: 0/1 "
                    "nodes are available: 1 No preemption victims found for incoming pod.",
                },
            ),
        ],
    ),
    (
        "queue order: priority (from the PriorityClass) before creation time",
        _low_then_high(),
        [("default/high", {"node": "n1"}), ("default/low", {"node": None})],
    ),
    (
        "nominated: the victims vanish and the pod is placed at once; equal priority preempts none",
        [
            node("n1", cpu="1"),
            node("n2", cpu="1"),
            pod("low", cpu="1", node_name="n1", priority=0),
            pod("mid", cpu="1", node_name="n2", priority=100),
            pod("high", cpu="1", priority=1000),
            pod("peer", cpu="1", priority=100),
        ],
        [
            (
                "default/high",
                {"node": "n1", "nominatedNode": "n1", "preempted": ["default/low"]},
            ),
            ("default/peer", {"node": None}),
        ],
    ),
    (
        "admission: the class's preemptionPolicy applies; an unknown class refuses the pod",
        _admission(),
        [
            (
                "default/polite",
                {
                    "node": None,
                    "message": "0/1 nodes are available: 1 Insufficient cpu. preemption: not "
                    "eligible due to preemptionPolicy=Never.",
                },
            ),
            (
                "default/unknown",
                {
                    "node": None,
                    "error": "Pod default/unknown: spec.priorityClassName: no PriorityClass with "
                    "name platinum was found",
                },
            ),
        ],
    ),
    (
        "a PreFilter before DynamicResources' rejects: its PostFilter fails (upstream's 'not "
        "found'), no preemption",
        _unbound_immediate(),
        [
            (
                "default/user",
                {
                    "node": None,
                    "message": "0/1 nodes are available: pod has unbound immediate "
                    "PersistentVolumeClaims. not found",
                },
            ),
        ],
    ),
    (
        "malformed: an error line naming the field, the others scheduled",
        _malformed(),
        [
            (
                "default/bad",
                {
                    "node": None,
                    "error": "Pod default/bad: spec.containers[0].resources.requests.cpu: 'lots': "
                    "quantities must match the regular expression "
                    "'^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'",
                },
            ),
            (
                "default/empty",
                {"node": None, "error": "Pod default/empty: spec.containers: Required value"},
            ),
            ("default/ok", {"node": "n1"}),
        ],
    ),
]


@pytest.mark.parametrize(("name", "items", "want"), OUTCOMES, ids=[o[0] for o in OUTCOMES])
def test_outcomes(
    name: str, items: list[dict[str, Any]], want: list[tuple[str, dict[str, Any]]]
) -> None:
    result = run(["simulate", "-", "-o", "json", "--seed", "1"], stdin=as_list(*items))
    assert result.exit_code == 0, result.output
    out = lines(result.output)
    assert [d["pod"] for d in out] == [p for p, _ in want], name
    for line, (_, fields) in zip(out, want, strict=True):
        assert {k: line.get(k) for k in fields} == fields, (name, line)


def test_multi_document_stream_and_json() -> None:
    docs = yaml.safe_dump_all([node("n1"), pod("p")])
    assert lines(run(["simulate", "-", "-o", "json"], stdin=docs).output)[0]["node"] == "n1"
    as_json = json.dumps({"kind": "List", "items": [node("n1"), pod("p")]})
    assert lines(run(["simulate", "-", "-o", "json"], stdin=as_json).output)[0]["node"] == "n1"


def test_malformed_node_is_skipped_with_a_warning() -> None:
    broken = node("broken")
    broken["spec"]["taints"] = [{"key": "k", "effect": "Sometimes"}]
    result = run(["simulate", "-", "-o", "json"], stdin=as_list(broken, node("n1"), pod("p")))
    assert result.exit_code == 0
    assert (
        'spec.taints[0].effect: Unsupported value: "Sometimes": supported values: '
        '"NoExecute", "NoSchedule", "PreferNoSchedule"'
    ) in result.output
    assert lines(result.output)[0]["node"] == "n1"


def test_not_yaml_is_a_clear_error() -> None:
    result = run(["simulate", "-"], stdin="{ this is: [not yaml")
    assert result.exit_code == 2
    assert "not valid YAML or JSON" in result.output


def test_missing_file() -> None:
    result = run(["simulate", "/nonexistent/dump.yaml"])
    assert result.exit_code == 2
    assert "cannot read" in result.output


def test_table_output() -> None:
    result = run(["simulate", str(ROOT / "examples" / "cluster.yaml"), "--seed", "1"])
    assert result.exit_code == 0
    assert result.stdout.splitlines()[0].split() == ["POD", "NODE", "SCORE", "WHY"]
    assert "batch/batch-huge  <pending>" in result.output
    assert "pending pods placed" in result.output


def test_gated_pods_are_reported_pending_and_take_no_room(tmp_path: Path) -> None:
    gated = pod("gated", cpu="1500m", priority=100)
    gated["spec"]["schedulingGates"] = [{"name": "example.com/quota"}, {"name": "b"}]
    dump = as_list(node("n1", cpu="2"), gated, pod("after", cpu="1500m"))
    result = run(["simulate", "-", "-o", "json"], stdin=dump)
    assert result.exit_code == 0, result.output
    out = lines(result.output)
    assert out == [
        {
            "pod": "default/gated",
            "node": None,
            "reasons": {},
            "scores": {},
            "message": "SchedulingGates: waiting for scheduling gates: [example.com/quota b]",
            "gated": True,
        },
        {**out[1], "pod": "default/after", "node": "n1"},  # the gated pod held no room
    ]
    assert "gated" not in out[1]
    table = run(["simulate", "-"], stdin=dump).output
    assert (
        "default/gated  <pending>         SchedulingGates: waiting for scheduling gates: "
        "[example.com/quota b]"
    ) in table
    assert "1/2 pending pods placed" in table
    # With SchedulingGates disabled the pod is scheduled as if it had no gates.
    config = yaml.safe_dump(
        {
            "apiVersion": "berth.io/v1alpha1",
            "kind": "BerthConfiguration",
            "profiles": [
                {
                    "schedulerName": "berth",
                    "plugins": {"preEnqueue": {"disabled": [{"name": "SchedulingGates"}]}},
                }
            ],
        }
    )
    (tmp_path / "berth.yaml").write_text(config)
    result = run(
        ["simulate", "-", "-o", "json", "--config", str(tmp_path / "berth.yaml")], stdin=dump
    )
    assert result.exit_code == 0, result.output
    assert [d["node"] for d in lines(result.output)] == ["n1", None]


def test_a_metric_source_that_is_down_is_warned_about_and_scoring_goes_on(tmp_path: Path) -> None:
    import socket

    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    config = tmp_path / "berth.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "berth.io/v1alpha1",
                "kind": "BerthConfiguration",
                "metricSources": [
                    {
                        "name": "prom",
                        "type": "prometheus",
                        "url": f"http://127.0.0.1:{port}",
                        "timeout": "1s",
                    }
                ],
                "profiles": [
                    {
                        "schedulerName": "berth",
                        "plugins": {"score": {"enabled": [{"name": "MetricScore", "weight": 5}]}},
                        "pluginConfig": [
                            {
                                "name": "MetricScore",
                                "args": {
                                    "metrics": [
                                        {
                                            "name": "latency",
                                            "source": "prom",
                                            "query": "up",
                                            "nodeLabel": "node",
                                        }
                                    ]
                                },
                            }
                        ],
                    }
                ],
            }
        )
    )
    result = CliRunner().invoke(
        main,
        ["simulate", "-", "-o", "json", "--config", str(config)],
        input=as_list(node("n1"), pod("p")),
    )
    assert result.exit_code == 0, result.output
    assert "warning: metric source 'prom' unavailable; scored without it" in result.stderr
    assert lines(result.stdout)[0]["node"] == "n1"


def test_an_object_named_twice_is_counted_once_with_a_warning() -> None:
    """Two dumps concatenated name the same objects twice: the later copy replaces the
    earlier (the API server holds one), and the user is told."""
    small, big = node("n1", cpu="1"), node("n1", cpu="8")
    running = pod("running", cpu="500m", node_name="n1")
    stream = "---\n".join([as_list(small, running), as_list(big, running, pod("p", cpu="7500m"))])
    result = run(["simulate", "-", "-o", "json"], stdin=stream)
    assert result.exit_code == 0, result.output
    assert "Node n1 appears again" in result.output
    assert "Pod default/running appears again" in result.output
    # n1 has 8 cpu (the later copy) with 500m used once, not twice: 7500m still fits.
    assert lines(result.output)[0] == {**lines(result.output)[0], "pod": "default/p", "node": "n1"}


def test_a_bad_toleration_operator_is_reported_as_the_api_server_words_it() -> None:
    bad = pod("p")
    bad["spec"]["tolerations"] = [{"key": "k", "operator": "Maybe"}]
    result = run(["simulate", "-", "-o", "json"], stdin=as_list(node("n1"), bad))
    assert result.exit_code == 0
    (line,) = lines(result.output)
    assert line["node"] is None
    assert (
        'spec.tolerations[0].operator: Unsupported value: "Maybe": supported values: '
        '"Equal", "Exists"'
    ) in line["message"]
