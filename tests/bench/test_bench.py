"""`berth bench` through the same code path CI and users run, at the tiny size: the JSON has the
documented shape and every pod was decided and bound. Never asserts on timing."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner

from berth.bench.workload import SIZES, WorkloadError, builtin_workloads, parse_workload
from berth.cli import main
from berth.objects import parse_node, parse_pod

WORKLOADS = list(builtin_workloads())
PERCENTILES = {"p50", "p90", "p99", "max"}


def test_the_builtin_workloads_are_the_documented_ones() -> None:
    assert WORKLOADS == [
        "SchedulingBasic",
        "NodeAffinity",
        "PodAntiAffinity",
        "TopologySpreading",
        "MetricScore",
        "Mixed",
        "SchedulingWithResourceClaimTemplate",
        "VolumeBinding",
    ]


@pytest.mark.parametrize("name", WORKLOADS)
@pytest.mark.parametrize("size", ["tiny", "quick"])
def test_workloads_expand_to_valid_objects_of_the_right_counts(name: str, size: str) -> None:
    w = builtin_workloads()[name]
    s = SIZES[size]
    nodes = w.nodes(s)
    running = w.running_pods(s, nodes)
    pending = w.pending_pods(s)
    assert (len(nodes), len(running), len(pending)) == (s.nodes, s.running, s.pods)
    names = [p["metadata"]["name"] for p in running + pending]
    assert len(set(names)) == len(names)
    for raw in nodes[:50]:
        parse_node(raw)
    for raw in running[:50] + pending[:200]:
        pod = parse_pod(raw)
        assert pod.scheduler_name == "berth"
    assert all(p["spec"].get("nodeName") for p in running)
    assert not any(p["spec"].get("nodeName") for p in pending)


def _result_shape(r: dict[str, Any], name: str) -> None:
    size = SIZES["tiny"]
    assert r["workload"] == name
    assert (r["nodes"], r["pods"], r["size"]) == (size.nodes, size.pods, "tiny")
    assert set(r["decision_ms"]) == PERCENTILES
    assert all(isinstance(v, float) and v >= 0 for v in r["decision_ms"].values())
    assert r["decisions"] == size.pods
    assert r["unschedulable_in_decisions"] == 0
    if name == "VolumeBinding":
        # decisions only: every claimed volume was checked (taken once, on its pod's node), and
        # that as many volumes were taken as pods with a claim placed (a tenth of them)
        assert r["throughput_pods_per_s"] is None
        assert r["verified"] is True
        assert r["verification_checks"] == 2 * (size.pods // 10) + 1
        return
    for key in (
        "throughput_pods_per_s",
        "ceiling_binds_per_s",
        "rss_mb",
        "percent_of_ceiling",
        "cpu_ms_per_pod",
        "ceiling_cpu_ms_per_bind",
    ):
        assert isinstance(r[key], float) and r[key] > 0, key
    assert r["bound"] == size.pods  # every pod got bound by Berth
    assert r["bind_failures"] == 0
    # the final placements passed berth.bench.verify (resources, affinity, taints, spread, ...)
    assert r["verified"] is True
    assert isinstance(r["verification_checks"], int) and r["verification_checks"] > size.pods
    if name == "SchedulingWithResourceClaimTemplate":
        # the cluster's final claims were checked too: per pod its claim (allocated, reserved
        # for it), its device unique, on its node, the nodeSelector; per pre-allocated claim
        # its device unique; beside berth.bench.verify's placement checks
        assert r["verification_checks"] >= 4 * size.pods + size.running


def test_berth_bench_tiny_runs_every_workload_end_to_end(tmp_path: Path) -> None:
    out = tmp_path / "bench.json"
    result = CliRunner().invoke(main, ["bench", "--size", "tiny", "--json", str(out)])
    assert result.exit_code == 0, result.output
    results = json.loads(out.read_text())
    assert [r["workload"] for r in results] == WORKLOADS
    for r, name in zip(results, WORKLOADS, strict=True):
        _result_shape(r, name)
    assert "SchedulingBasic" in result.stdout  # the table
    assert "verified: " in result.stderr  # the progress line of each workload


def test_a_workload_file_of_ones_own_runs_too(tmp_path: Path) -> None:
    spec = {
        "name": "Custom",
        "runningPods": [{"template": {"spec": {"containers": [{"name": "c", "image": "x"}]}}}],
        "pods": [
            {
                "template": {
                    "spec": {
                        "nodeSelector": {"topology.kubernetes.io/zone": "zone-b"},
                        "containers": [{"name": "c", "image": "x"}],
                    }
                }
            }
        ],
    }
    path = tmp_path / "custom.yaml"
    path.write_text(yaml.safe_dump(spec))
    out = tmp_path / "r.json"
    args = ["bench", "--size", "tiny", "-f", str(path), "--no-live", "--json", str(out)]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    (r,) = json.loads(out.read_text())
    assert r["workload"] == "Custom" and r["decisions"] == SIZES["tiny"].pods
    assert r["throughput_pods_per_s"] is None  # --no-live: decisions only
    assert r["verified"] is None  # nothing was placed in a cluster to verify


def test_unknown_workload_is_refused_with_the_known_names() -> None:
    result = CliRunner().invoke(main, ["bench", "--workload", "Nope"])
    assert result.exit_code == 2
    assert "unknown workload 'Nope'" in result.output and "SchedulingBasic" in result.output


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ([], "x.yaml: (top): must be a mapping"),
        ({"pods": []}, "x.yaml: name: required"),
        ({"name": "A", "pods": []}, "x.yaml: runningPods: must be a non-empty list"),
        (
            {"name": "A", "runningPods": [{"template": {"spec": {}}}], "pods": [{}]},
            "x.yaml: runningPods[0].template.spec.containers: required",
        ),
        (
            {"name": "A", "nodes": {"zones": 0}},
            "x.yaml: nodes.zones: 1..26",
        ),
    ],
)
def test_workload_errors_name_the_file_and_field(raw: Any, message: str) -> None:
    with pytest.raises(WorkloadError) as err:
        parse_workload(raw, source="x.yaml")
    assert str(err.value) == message
