"""`berth annotate`: the value planning as pure functions, then the command against the
embedded cluster through the official kubernetes client."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from berth.cli import main
from berth.cluster import EmbeddedCluster
from berth.metrics.annotate import (
    AnnotateError,
    format_value,
    load_values_file,
    numeric_annotations,
    plan_values,
)

from .helpers import node


@pytest.mark.parametrize(
    ("value", "text"), [(0.5, "0.5"), (2.0, "2"), (1e-7, "1e-07"), (-3.25, "-3.25")]
)
def test_format_value(value: float, text: str) -> None:
    assert format_value(value) == text


def test_plan_values() -> None:
    nodes = ["node-a", "node-b", "node-c"]
    assert plan_values(nodes=nodes, value=0.3) == dict.fromkeys(nodes, "0.3")
    assert plan_values(nodes=nodes, values={"node-b": 1.0}) == {"node-b": "1"}
    first = plan_values(nodes=nodes, random_range=(0.1, 2.0), seed=7)
    assert first == plan_values(nodes=list(reversed(nodes)), random_range=(0.1, 2.0), seed=7)
    assert all(0.1 <= float(v) <= 2.0 for v in first.values())
    with pytest.raises(AnnotateError, match="exactly one of"):
        plan_values(nodes=nodes, value=1.0, random_range=(0, 1))
    with pytest.raises(AnnotateError, match="exactly one of"):
        plan_values(nodes=nodes)
    with pytest.raises(AnnotateError, match="no such node"):
        plan_values(nodes=nodes, values={"node-z": 1.0})
    with pytest.raises(AnnotateError, match="LOW <= HIGH"):
        plan_values(nodes=nodes, random_range=(2.0, 1.0))


def test_load_values_file(tmp_path: Path) -> None:
    yaml_file = tmp_path / "prices.yaml"
    yaml_file.write_text("node-a: 0.12\nnode-b: '3'\n")
    assert load_values_file(yaml_file) == {"node-a": 0.12, "node-b": 3.0}
    json_file = tmp_path / "prices.json"
    json_file.write_text('{"node-a": 1, "node-c": 2.5}')
    assert load_values_file(json_file) == {"node-a": 1.0, "node-c": 2.5}
    for text, message in [
        ("[1, 2]", "must be a non-empty map"),
        ("node-a: cheap", "'cheap' is not a number"),
        ("node-a: .nan", "not a finite number"),
        ("node-a: [1", "not valid YAML or JSON"),
    ]:
        yaml_file.write_text(text)
        with pytest.raises(AnnotateError, match=message.replace("[", r"\[")):
            load_values_file(yaml_file)
    with pytest.raises(AnnotateError, match="cannot read"):
        load_values_file(tmp_path / "missing.yaml")


def test_numeric_annotations() -> None:
    nodes = [
        node("node-a", annotations={"price": "0.5", "note": "hello"}),
        node("node-b"),
    ]
    assert numeric_annotations(nodes, key=None) == [("node-a", "price", "0.5")]
    assert numeric_annotations(nodes, key="price") == [
        ("node-a", "price", "0.5"),
        ("node-b", "price", "<none>"),
    ]


@pytest.fixture(scope="module")
def cluster() -> Iterator[EmbeddedCluster]:
    with EmbeddedCluster(nodes=3, zones=1) as c:
        yield c


def berth(cluster: EmbeddedCluster, *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(
        main, ["annotate", "--kubeconfig", str(cluster.kubeconfig_path), *args]
    )
    return result.exit_code, result.output


def test_annotate_against_the_embedded_cluster(cluster: EmbeddedCluster, tmp_path: Path) -> None:
    code, out = berth(cluster, "--random", "0.1", "2", "--seed", "3")
    assert code == 0, out
    rows = [line.split() for line in out.splitlines()[1:]]
    assert [r[:2] for r in rows] == [[f"node-00{i}", "sim.berth.io/price"] for i in (1, 2, 3)]
    prices = {r[0]: r[2] for r in rows}

    code, out = berth(cluster, "--list", "--key", "sim.berth.io/price")
    assert (
        code == 0 and {line.split()[0]: line.split()[2] for line in out.splitlines()[1:]} == prices
    )

    values = tmp_path / "latency.yaml"
    values.write_text("node-002: 0.05\n")
    key = "sim.berth.io/http-request-seconds"
    code, out = berth(cluster, "--from-file", str(values), "--key", key)
    assert code == 0 and out.splitlines()[1].split() == ["node-002", key, "0.05"]

    code, out = berth(cluster, "node-001", "--value", "7", "--key", key)
    assert code == 0, out
    code, out = berth(cluster, "--list")
    listed = [line.split() for line in out.splitlines()[1:]]
    assert ["node-001", key, "7"] in listed and ["node-002", key, "0.05"] in listed
    assert ["node-003", key] not in [r[:2] for r in listed]

    code, out = berth(cluster, "node-001", "--remove", "--key", key)
    assert (code, out.strip()) == (0, f"removed {key} from 1 node(s)")
    code, out = berth(cluster, "--list", "--key", key, "node-001")
    assert out.splitlines()[1].split() == ["node-001", key, "<none>"]

    code, out = berth(cluster, "node-009", "--value", "1")
    assert code == 1 and "no such node(s): node-009" in out
    code, out = berth(cluster, "--list", "--value", "1")
    assert code == 1 and "--list does not combine" in out
    code, out = berth(cluster, "--key", "bad key!", "--value", "1")  # the API server's 422
    assert code == 1 and "failed: 422 Unprocessable Entity: Node " in out
    assert 'metadata.annotations: Invalid value: "bad key!"' in out
    code, out = berth(cluster, "--list", "-l", "a in (")
    assert code == 1 and "listing nodes failed: 400 Bad Request: " in out


def test_annotations_reach_the_node_annotation_source(cluster: EmbeddedCluster) -> None:
    """What `berth annotate` writes is what parse_node keeps for the metric sources."""
    from kubernetes import client, config

    from berth.objects import parse_node

    assert berth(cluster, "node-003", "--value", "0.75")[0] == 0
    api = client.CoreV1Api(config.new_client_from_config(config_file=str(cluster.kubeconfig_path)))
    raw = api.api_client.sanitize_for_serialization(api.read_node("node-003"))
    assert parse_node(raw).annotations["sim.berth.io/price"] == "0.75"
