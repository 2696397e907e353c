"""`berth bench --cluster upstream --size quick` through the CLI: Berth and kube-scheduler each
on a fresh real control plane, every placement verified, the JSON rows shaped as documented.
Runs when the real control plane is built (as the tests against it); never asserts on timing."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from berth.bench.kube_scheduler import UntranslatableError, kube_scheduler_configuration
from berth.bench.measure import Histogram, histogram
from berth.bench.runner import workload_config
from berth.bench.workload import SIZES, builtin_workloads
from berth.cli import main
from tests.upstream import ci, unavailable_reason


@pytest.fixture
def upstream_built() -> None:
    reason = unavailable_reason()
    if reason is not None:
        if ci():
            pytest.fail(f"CI=true runs the benchmark on the real control plane, but: {reason}")
        pytest.skip(f"upstream: {reason}")


def _measured(row: dict[str, Any]) -> None:
    size = SIZES["quick"]
    assert row["skipped"] is None
    assert row["bound"] == size.pods
    assert row["verified"] is True
    # at least each pod's binding, node and fit were checked
    assert row["verification_checks"] > 2 * size.pods
    for key in ("throughput_pods_per_s", "seconds", "cpu_ms_per_pod", "rss_mb"):
        assert isinstance(row[key], float) and row[key] > 0, key
    # the SLI histogram scraped from the scheduler's own /metrics counted every pod
    assert row["sli_pods"] >= size.pods
    assert row["sli_p99_ms"] > 0
    # what the run cost the control plane was read from /proc too
    assert set(row["control_plane_cpu_ms_per_pod"]) == {
        "kube-apiserver",
        "etcd",
        "kube-controller-manager",
    }
    assert row["scheduled_events"] > 0
    if row["scheduler"] == "berth":  # Berth retries its events: every pod's was written
        assert row["scheduled_events"] == size.pods


def test_berth_and_kube_scheduler_side_by_side_on_the_real_control_plane(
    upstream_built: None, tmp_path: Path
) -> None:
    out = tmp_path / "bench.json"
    result = CliRunner().invoke(
        main,
        [
            "bench",
            "--cluster",
            "upstream",
            "--size",
            "quick",
            "-w",
            "Mixed",
            "-w",
            "MetricScore",
            "--json",
            str(out),
            "--timeout",
            "300",
        ],
    )
    assert result.exit_code == 0, result.output
    rows = json.loads(out.read_text())
    by = {(r["workload"], r["scheduler"]): r for r in rows}
    assert set(by) == {
        ("Mixed", "berth"),
        ("Mixed", "kube-scheduler"),
        ("MetricScore", "berth"),
        ("MetricScore", "kube-scheduler"),
    }
    assert {r["cluster"] for r in rows} == {"upstream"}
    _measured(by["Mixed", "berth"])
    _measured(by["Mixed", "kube-scheduler"])
    _measured(by["MetricScore", "berth"])
    # the API server's bare ceiling, measured on Berth's control plane, stands in both rows
    ceiling = by["Mixed", "berth"]["ceiling_binds_per_s"]
    assert ceiling > 0 and by["Mixed", "kube-scheduler"]["ceiling_binds_per_s"] == ceiling
    # kube-scheduler has no MetricScore: its row says why and measures nothing
    skipped = by["MetricScore", "kube-scheduler"]
    assert "MetricScore" in skipped["skipped"] and skipped["throughput_pods_per_s"] is None
    lines = result.output.splitlines()  # the progress lines (stderr), then the table
    header = next(i for i, line in enumerate(lines) if line.startswith("workload "))
    assert lines[header].split()[:4] == ["workload", "scheduler", "nodes", "pods"]
    table = lines[header + 2 :]
    assert [line.split()[:2] for line in table] == [[r["workload"], r["scheduler"]] for r in rows]


# ----- the parts, without a cluster ---------------------------------------------------------------
def test_the_configuration_kube_scheduler_gets_is_berths_profile() -> None:
    config = workload_config(builtin_workloads()["SchedulingBasic"])
    config["percentageOfNodesToScore"] = 30
    document = kube_scheduler_configuration(config)
    assert document["apiVersion"] == "kubescheduler.config.k8s.io/v1"
    assert document["clientConnection"] == {"qps": 1_000_000, "burst": 256}
    assert document["percentageOfNodesToScore"] == 30
    # the one translation (berth.config.kubescheduler), from the parsed configuration
    assert document["profiles"] == [{"schedulerName": "berth", "plugins": {}}]
    assert document["podInitialBackoffSeconds"] == 1 and document["podMaxBackoffSeconds"] == 10
    assert document["leaderElection"]["resourceName"] == "kube-scheduler"


def test_a_profile_with_berths_own_plugins_is_not_translated() -> None:
    config = workload_config(builtin_workloads()["MetricScore"])
    with pytest.raises(UntranslatableError, match="MetricScore"):
        kube_scheduler_configuration(config)


EXPOSITION = """\
# TYPE scheduler_pod_scheduling_sli_duration_seconds histogram
scheduler_pod_scheduling_sli_duration_seconds_bucket{attempts="1",le="0.01"} 10
scheduler_pod_scheduling_sli_duration_seconds_bucket{attempts="1",le="0.02"} 50
scheduler_pod_scheduling_sli_duration_seconds_bucket{attempts="1",le="+Inf"} 90
scheduler_pod_scheduling_sli_duration_seconds_sum{attempts="1"} 1.5
scheduler_pod_scheduling_sli_duration_seconds_count{attempts="1"} 90
scheduler_pod_scheduling_sli_duration_seconds_bucket{attempts="2",le="0.01"} 0
scheduler_pod_scheduling_sli_duration_seconds_bucket{attempts="2",le="0.02"} 10
scheduler_pod_scheduling_sli_duration_seconds_bucket{attempts="2",le="+Inf"} 10
scheduler_pod_scheduling_sli_duration_seconds_sum{attempts="2"} 0.15
scheduler_pod_scheduling_sli_duration_seconds_count{attempts="2"} 10
"""


@pytest.mark.parametrize(
    ("q", "want"),
    [
        ("0.05", 0.005),  # rank 5 of 10 in the first bucket: halfway from 0 to 10 ms
        ("0.3", 0.014),  # rank 30: 20 of the 50 between 10 and 20 ms
        ("0.9", 0.02),  # in the +Inf bucket: PromQL answers the highest finite bound
    ],
)
def test_histogram_quantile_as_promql_over_every_label_set(q: str, want: float) -> None:
    found = histogram(EXPOSITION, "scheduler_pod_scheduling_sli_duration_seconds")
    assert found is not None and found.count == 100
    assert found.quantile(float(q)) == pytest.approx(want)


def test_an_empty_histogram_has_no_quantile() -> None:
    assert Histogram(buckets=(), count=0, total=0).quantile(0.99) is None
    assert histogram("", "scheduler_pod_scheduling_sli_duration_seconds") is None
