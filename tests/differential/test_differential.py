"""Upstream kube-scheduler's own plugins judge Berth on generated clusters: CI's run (2,000 at a
fixed seed, a few minutes), the coverage the cases must reach, and `simulate --compare-upstream`
on a dump both sides agree on and one they do not. `./dev differential` runs more."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from hypothesis import given, settings

from berth.cli import main
from berth.upstream.oracle import Oracle
from tests.differential.generator import GPU, Case, balanced_allocation_scores, clusters
from tests.differential.run import run
from tests.test_simulate_scan import SCANS, scan_dump
from tests.upstream import ci, unavailable_reason

# CI's figure; BERTH_DIFFERENTIAL_COUNT=N runs more or fewer.
COUNT = int(os.environ.get("BERTH_DIFFERENTIAL_COUNT", "2000"))
SEED = 20260


@pytest.fixture(scope="module")
def oracle() -> Iterator[Oracle]:
    reason = unavailable_reason()
    if reason is not None:
        if ci():
            pytest.fail(f"CI=true runs the differential oracle, but: {reason}")
        pytest.skip(f"upstream: {reason}")
    with Oracle() as running:
        yield running


# 2,000 clusters take about 2-3 minutes on two loaded cores, shrinking a divergence up to 5 more.
@pytest.mark.timeout(1800)
def test_generated_clusters_agree_with_upstream(oracle: Oracle, tmp_path: Path) -> None:
    report = run(COUNT, SEED, tmp_path, oracle)
    print(f"\n{report.examples} clusters in {report.seconds:.0f}s\n{report.table()}")
    if report.reproduction is not None:
        shown = "\n".join(report.differences[:20])
        out = Path(os.environ.get("BERTH_DIFFERENTIAL_OUT", "differential-out"))
        out.mkdir(parents=True, exist_ok=True)
        for name in ("divergence.yaml", "divergence.config.yaml"):
            (out / name).write_text((tmp_path / name).read_text())
        pytest.fail(
            f"Berth and kube-scheduler differ (shrunk case in {out}/divergence.yaml):\n{shown}\n"
            f"replay: {report.command.replace(str(tmp_path), str(out))}"
        )
    assert report.oracle_errors == []
    assert report.examples == COUNT
    if COUNT >= 1000:  # a smaller run need not reach every path
        assert report.unreached() == []


def _dump(tmp_path: Path, pending_cpu: str) -> Path:
    def node(name: str) -> dict[str, object]:
        alloc = {"cpu": "4", "memory": "8Gi", "pods": "110"}
        return {
            "apiVersion": "v1",
            "kind": "Node",
            "metadata": {"name": name, "labels": {"kubernetes.io/hostname": name}},
            "status": {"allocatable": alloc, "capacity": alloc},
        }

    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "web", "namespace": "default", "uid": "uid-web"},
        "spec": {
            "schedulerName": "berth",  # the default configuration's profile
            "containers": [
                {"name": "c", "image": "nginx", "resources": {"requests": {"cpu": pending_cpu}}}
            ],
        },
        "status": {"phase": "Pending"},
    }
    path = tmp_path / "dump.json"
    path.write_text(json.dumps({"kind": "List", "items": [node("a"), node("b"), pod]}))
    return path


def test_compare_upstream_agrees_and_exits_0(oracle: Oracle, tmp_path: Path) -> None:
    result = CliRunner().invoke(
        main, ["simulate", str(_dump(tmp_path, "1")), "--compare-upstream", "--seed", "1"]
    )
    assert result.exit_code == 0, result.output
    assert "agree on all 1 pending pod(s)" in result.output


def test_a_large_zoned_cluster_is_scanned_zone_by_zone_as_upstream(
    oracle: Oracle, tmp_path: Path
) -> None:
    """150 nodes, zones in blocks of arrival (a, then b, then c): kube-scheduler's node tree
    scans them a, b, c, a, b, c, ..., and finds its 100 feasible nodes (percentageOfNodesToScore)
    in that order, the next pod starting where the last stopped. Every node scores the same, so
    the nodes scored are the tie set compared: an arrival-order scan scores other nodes."""
    items: list[dict[str, object]] = []
    for i in range(150):
        name = f"node-{i:03d}"
        alloc = {"cpu": "4", "memory": "8Gi", "pods": "110"}
        zone = "zone-a" if i < 60 else "zone-b" if i < 120 else "zone-c"
        labels = {"kubernetes.io/hostname": name, "topology.kubernetes.io/zone": zone}
        items.append(
            {
                "apiVersion": "v1",
                "kind": "Node",
                "metadata": {"name": name, "labels": labels},
                "status": {"allocatable": alloc, "capacity": alloc},
            }
        )
    for i in range(3):
        items.append(
            {
                "apiVersion": "v1",
                "kind": "Pod",
                "metadata": {"name": f"web-{i}", "namespace": "default", "uid": f"uid-web-{i}"},
                "spec": {
                    "schedulerName": "berth",
                    "containers": [{"name": "c", "image": "nginx"}],
                },
                "status": {"phase": "Pending"},
            }
        )
    path = tmp_path / "zoned.json"
    path.write_text(json.dumps({"kind": "List", "items": items}))
    result = CliRunner().invoke(main, ["simulate", str(path), "--compare-upstream", "--seed", "1"])
    assert result.exit_code == 0, result.output
    assert "agree on all 3 pending pod(s)" in result.output


@pytest.mark.parametrize(
    ("name", "conf", "pods"), [s[:3] for s in SCANS], ids=[s[0] for s in SCANS]
)
def test_a_placed_pods_reasons_after_an_early_stop_agree_with_upstream(
    oracle: Oracle, tmp_path: Path, name: str, conf: dict[str, Any], pods: list[str]
) -> None:
    """tests/test_simulate_scan.py's clusters: kube-scheduler names the same rejected nodes
    for a placed pod whose scan percentageOfNodesToScore stopped, and none past the stop."""
    dump, config = scan_dump(tmp_path, conf, pods)
    args = ["simulate", str(dump), "--config", str(config), "--compare-upstream", "--seed", "1"]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, (name, result.output)
    assert f"agree on all {len(pods)} pending pod(s)" in result.output


def test_compare_upstream_names_a_difference_and_exits_1(
    oracle: Oracle, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Berth made to word one reason differently: the comparison must catch it, node by node.
    from berth.plugins import noderesources

    monkeypatch.setattr(noderesources, "REASON_INSUFFICIENT", "Not enough %s")
    result = CliRunner().invoke(main, ["simulate", str(_dump(tmp_path, "6")), "--compare-upstream"])
    assert result.exit_code == 1, result.output
    assert "default/web: reasons[a]: berth ['Not enough cpu'], upstream ['Insufficient cpu']" in (
        result.output
    )


def test_compare_upstream_without_the_oracle_exits_2(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BERTH_UPSTREAM_BIN", str(tmp_path / "missing"))
    result = CliRunner().invoke(main, ["simulate", str(_dump(tmp_path, "1")), "--compare-upstream"])
    assert result.exit_code == 2
    assert "not an executable file" in result.output


def _gpu_class_with_selectors(objects: list[dict[str, Any]]) -> bool:
    return any(
        o["kind"] == "DeviceClass"
        and o["spec"].get("extendedResourceName") == GPU
        and o["spec"].get("selectors")
        for o in objects
    )


@settings(max_examples=400, derandomize=True, deadline=None, database=None)
@given(clusters())
def test_balanced_allocation_never_meets_a_gpu_class_with_selectors(case: Case) -> None:
    """kube-scheduler 1.37.2 crashes (a nil CEL cache in NodeResourcesBalancedAllocation's
    scorer) when it scores a DeviceClass-backed extended resource whose class has a selector:
    the generator must never make that case, or the oracle process dies mid-run."""
    if balanced_allocation_scores(case.config, GPU):
        assert not _gpu_class_with_selectors(case.objects)


def _gpu_cluster(*, class_selector: bool) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """The shrunk case of the crash: a DeviceClass serving example.com/gpu, one node with
    device-plugin GPUs and one with GPUs in a ResourceSlice, both feasible for a pod asking two,
    and NodeResourcesBalancedAllocation scoring the GPU (on the second node through DRA)."""

    def node(name: str, gpus: str | None) -> dict[str, Any]:
        alloc = {"cpu": "4", "memory": "4Gi", "pods": "110"}
        if gpus is not None:
            alloc[GPU] = gpus
        return {
            "apiVersion": "v1",
            "kind": "Node",
            "metadata": {"name": name, "labels": {"kubernetes.io/hostname": name}},
            "status": {"allocatable": alloc, "capacity": alloc},
        }

    device_class: dict[str, Any] = {"extendedResourceName": GPU}
    if class_selector:
        device_class["selectors"] = [{"cel": {"expression": 'device.driver == "gpu.example.com"'}}]
    items: list[dict[str, Any]] = [
        node("node-a", None),
        node("node-b", "2"),
        {
            "apiVersion": "resource.k8s.io/v1",
            "kind": "DeviceClass",
            "metadata": {"name": "gpu"},
            "spec": device_class,
        },
        {
            "apiVersion": "resource.k8s.io/v1",
            "kind": "ResourceSlice",
            "metadata": {"name": "slice-node-a"},
            "spec": {
                "driver": "gpu.example.com",
                "nodeName": "node-a",
                "pool": {"name": "node-a", "generation": 1, "resourceSliceCount": 1},
                "devices": [{"name": "gpu-0"}, {"name": "gpu-1"}, {"name": "gpu-2"}],
            },
        },
        {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": "web", "namespace": "default", "uid": "uid-web"},
            "spec": {
                "containers": [
                    {
                        "name": "c",
                        "image": "nginx",
                        "resources": {"limits": {"cpu": "1500m", GPU: "2"}},
                    }
                ],
            },
            "status": {"phase": "Pending"},
        },
    ]
    resources = [{"name": "cpu", "weight": 1}, {"name": "memory", "weight": 1}]
    profile = {
        "pluginConfig": [
            {
                "name": "NodeResourcesBalancedAllocation",
                "args": {"resources": [*resources, {"name": GPU, "weight": 1}]},
            }
        ],
    }
    return items, profile


def test_balanced_allocation_scores_a_dra_backed_gpu_as_upstream(
    oracle: Oracle, tmp_path: Path
) -> None:
    """The path upstream does run (a class without selectors): both sides score the GPU on
    both nodes, NodeResourcesFit delegating the second to DynamicResources."""
    items, profile = _gpu_cluster(class_selector=False)
    dump = tmp_path / "dump.json"
    dump.write_text(json.dumps({"kind": "List", "items": items}))
    config = tmp_path / "config.json"
    config.write_text(
        json.dumps(
            {
                "apiVersion": "berth.io/v1alpha1",
                "kind": "BerthConfiguration",
                "profiles": [{"schedulerName": "default-scheduler", **profile}],
            }
        )
    )
    result = CliRunner().invoke(
        main,
        ["simulate", str(dump), "--config", str(config), "--compare-upstream", "--seed", "1"],
    )
    assert result.exit_code == 0, result.output
    assert "agree on all 1 pending pod(s)" in result.output


def test_the_oracle_reports_kube_schedulers_panic_and_answers_on(oracle: Oracle) -> None:
    """With a CEL selector on the class, kube-scheduler 1.37.2 panics in a Score worker (its
    BalancedAllocation scorer has no CEL cache). The oracle names the panic in the pod's
    decision, as an oracle error, instead of dying or answering with the lost worker's empty
    scores; and it answers the next dump."""
    items, profile = _gpu_cluster(class_selector=True)
    config = {
        "apiVersion": "kubescheduler.config.k8s.io/v1",
        "kind": "KubeSchedulerConfiguration",
        "profiles": [{"schedulerName": "default-scheduler", **profile}],
    }
    answer = oracle.decide(items, config=config)
    [decision] = answer.decisions
    assert decision["pod"] == "default/web"
    assert decision.get("node") is None
    assert decision["error"].startswith("oracle: kube-scheduler panicked: runtime error: ")
    assert "cel.(*Cache).getOrCompile" in decision["error"]
    fine, _ = _gpu_cluster(class_selector=False)
    [after] = oracle.decide(fine, config=config).decisions
    assert after.get("node") in ("node-a", "node-b"), after


def test_the_absent_nodes_reason_names_only_the_prefilter_plugins(oracle: Oracle) -> None:
    """NodeAffinity's matchFields narrows the pod to node-a and node-b, and node-a is
    unschedulable: kube-scheduler builds the other nodes' reason from the PreFilter plugins
    before Filter runs ("[NodeAffinity]"). Its framework hands the same set to the diagnosis,
    which the Filter failure then extends with NodeUnschedulable, so the oracle must keep a
    copy of it, not the set itself."""

    def node(name: str, **spec: Any) -> dict[str, Any]:
        alloc = {"cpu": "4", "memory": "8Gi", "pods": "110"}
        return {
            "apiVersion": "v1",
            "kind": "Node",
            "metadata": {"name": name, "labels": {"kubernetes.io/hostname": name}},
            "spec": spec,
            "status": {"allocatable": alloc, "capacity": alloc},
        }

    def named(name: str) -> dict[str, Any]:  # one value per matchFields term (validation)
        return {"matchFields": [{"key": "metadata.name", "operator": "In", "values": [name]}]}

    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "web", "namespace": "default", "uid": "uid-web"},
        "spec": {
            "containers": [{"name": "c", "image": "nginx"}],
            "affinity": {
                "nodeAffinity": {
                    "requiredDuringSchedulingIgnoredDuringExecution": {
                        "nodeSelectorTerms": [named("node-a"), named("node-b")]
                    }
                }
            },
        },
        "status": {"phase": "Pending"},
    }
    items = [node("node-a", unschedulable=True), node("node-b"), node("node-c"), pod]
    config = {"apiVersion": "kubescheduler.config.k8s.io/v1", "kind": "KubeSchedulerConfiguration"}
    [decision] = oracle.decide(items, config=config).decisions
    assert decision["node"] == "node-b", {k: v for k, v in decision.items() if v}
    assert decision["reasons"]["node-c"] == ["node(s) didn't satisfy plugin(s) [NodeAffinity]"]
    assert decision["reasons"]["node-a"] == ["node(s) were unschedulable"]
