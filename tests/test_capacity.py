"""`berth capacity` counts what placing copies one by one with `berth simulate` places: on
generated clusters (spreading, affinity, ports, taints, volumes), the count and the copies per
node are the simulation's, pod for pod; claims from templates are made per copy; the report and
the command's errors."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from berth.capacity import estimate, format_report, pod_template
from berth.cli import main
from berth.config import parse_config
from berth.dump import parse_dump
from berth.engine import Engine
from berth.simulate import Simulation
from berth.snapshot import from_dump
from tests.builders import node, pod
from tests.generated import clusters

NO_PREEMPTION = {"profiles": [{"plugins": {"postFilter": {"disabled": [{"name": "*"}]}}}]}


def copies_as_pending(template: dict[str, Any], count: int) -> list[dict[str, Any]]:
    """The copies capacity makes, as pods a dump would hold (same names and uids)."""
    out = []
    uid = template["metadata"].get("uid") or "pod"
    for i in range(count):
        raw = copy.deepcopy(template)
        raw["metadata"]["name"] = f"{template['metadata']['name']}-{i:05d}"
        raw["metadata"]["uid"] = f"capacity-{i:05d}-{uid}"
        out.append(raw)
    return out


def by_simulation(items: list[dict[str, Any]], template: dict[str, Any], limit: int, seed: int):
    dump = parse_dump(
        json.dumps({"kind": "List", "items": [*items, *copies_as_pending(template, limit)]})
    )
    sim = Simulation(dump=dump, config=parse_config(NO_PREEMPTION), seed=seed)
    per_node: dict[str, int] = {}
    count = 0
    for decision in sim.run():
        if decision.node is None:
            break  # the first copy that fits nowhere: capacity stops there too
        count += 1
        per_node[decision.node] = per_node.get(decision.node, 0) + 1
    return count, per_node


def by_capacity(items: list[dict[str, Any]], template: dict[str, Any], limit: int, seed: int):
    engine = Engine(config=parse_config(NO_PREEMPTION), seed=seed)
    from_dump(engine, parse_dump(json.dumps({"kind": "List", "items": items})))
    result = estimate(engine, template, replicas_max=limit)
    return result


@st.composite
def small_copies(draw: st.DrawFn) -> Any:
    """A cluster whose pod to copy asks for little, so that many copies fit."""
    cluster = draw(clusters(pending=(1, 1), rich=False))
    requests = cluster.pending[0]["spec"]["containers"][0]["resources"]["requests"]
    requests["cpu"] = draw(st.sampled_from(["100m", "250m", "500m"]))
    requests["memory"] = draw(st.sampled_from(["64Mi", "256Mi"]))
    cluster.placed = cluster.placed[: draw(st.integers(0, 2))]  # room left on the nodes
    return cluster


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    cluster=clusters(pending=(1, 1), volumes=True), limit=st.integers(1, 12), seed=st.integers(0, 3)
)
def test_capacity_equals_placing_copies_one_by_one_with_simulate(cluster, limit, seed) -> None:
    (template,) = cluster.pending
    items = [*cluster.storage, *cluster.nodes, *cluster.placed]
    expected_count, expected_nodes = by_simulation(items, template, limit, seed)
    result = by_capacity(items, template, limit, seed)
    event(f"copies placed: {'0' if not result.count else '1-2' if result.count < 3 else '3+'}")
    event(f"nodes used: {min(len(result.per_node), 3)}")
    assert result.count == expected_count
    assert result.per_node == expected_nodes
    if result.count < limit:
        assert result.stopped.startswith(("0/", "no nodes")), result.stopped
        assert result.reasons  # what stops the next copy, node by node
    else:
        assert result.stopped == f"--replicas-max {limit} reached"


def test_spreading_and_anti_affinity_limit_the_copies() -> None:
    nodes = [
        node(f"n{i}", cpu="8", labels={"topology.kubernetes.io/zone": z})
        for i, z in enumerate("aabc")
    ]
    spread = pod(
        "web",
        cpu="1",
        labels={"app": "web"},
        spec={
            "affinity": {
                "podAntiAffinity": {
                    "requiredDuringSchedulingIgnoredDuringExecution": [
                        {
                            "labelSelector": {"matchLabels": {"app": "web"}},
                            "topologyKey": "kubernetes.io/hostname",
                        }
                    ]
                }
            }
        },
    )
    result = by_capacity(nodes, spread, 100, 0)
    assert result.count == 4 and set(result.per_node.values()) == {1}
    assert all("anti-affinity" in " ".join(r) for r in result.reasons.values())


def test_copies_get_their_own_claims_from_a_template() -> None:
    """Each copy's claim comes from the template, as the resourceclaim controller makes them;
    the devices bound the count (two per node here)."""
    items: list[dict[str, Any]] = [
        {
            "apiVersion": "resource.k8s.io/v1",
            "kind": "DeviceClass",
            "metadata": {"name": "gpu"},
            "spec": {"selectors": [{"cel": {"expression": 'device.driver == "gpu.example.com"'}}]},
        },
        {
            "apiVersion": "resource.k8s.io/v1",
            "kind": "ResourceClaimTemplate",
            "metadata": {"name": "one-gpu", "namespace": "default"},
            "spec": {
                "spec": {
                    "devices": {
                        "requests": [{"name": "gpu", "exactly": {"deviceClassName": "gpu"}}]
                    }
                }
            },
        },
    ]
    for n in ("n0", "n1", "n2"):
        items.append(node(n, cpu="16"))
        items.append(
            {
                "apiVersion": "resource.k8s.io/v1",
                "kind": "ResourceSlice",
                "metadata": {"name": f"{n}-gpus"},
                "spec": {
                    "driver": "gpu.example.com",
                    "nodeName": n,
                    "pool": {"name": n, "generation": 1, "resourceSliceCount": 1},
                    "devices": [{"name": f"gpu-{k}"} for k in range(2)],
                },
            }
        )
    trainer = pod(
        "trainer",
        cpu="1",
        spec={"resourceClaims": [{"name": "gpu", "resourceClaimTemplateName": "one-gpu"}]},
    )
    result = by_capacity(items, trainer, 100, 0)
    assert result.count == 6
    assert result.per_node == {"n0": 2, "n1": 2, "n2": 2}
    assert all(reasons for reasons in result.reasons.values())  # every node says why not


def test_the_report_and_the_command(tmp_path: Path) -> None:
    nodes = [
        node("n0", cpu="2"),
        node("n1", cpu="1", taints=[{"key": "k", "value": "v", "effect": "NoSchedule"}]),
    ]
    dump = tmp_path / "cluster.yaml"
    dump.write_text(yaml.safe_dump({"kind": "List", "items": nodes}))
    template = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "shop"},
        "spec": {
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": pod("x", cpu="500m")["spec"],
            }
        },
    }
    pod_file = tmp_path / "web.yaml"
    pod_file.write_text(yaml.safe_dump(template))
    runner = CliRunner()
    out = runner.invoke(main, ["capacity", str(pod_file), "--dump", str(dump)])
    assert out.exit_code == 0, out.output
    assert "The cluster can schedule 4 more instance(s) of the pod shop/web" in out.output
    assert "n1" in out.output and "untolerated taint" in out.output
    as_json = runner.invoke(
        main, ["capacity", str(pod_file), "--dump", str(dump), "-o", "json", "--replicas-max", "2"]
    )
    doc = json.loads(as_json.output)
    assert doc["count"] == 2 and doc["stopped"] == "--replicas-max 2 reached"
    assert format_report(by_capacity(nodes, pod_template(template, source="t"), 1, 0)).startswith(
        "The cluster"
    )
    # stopped by --replicas-max: a node never asked still counts in the report
    dump.write_text(yaml.safe_dump({"kind": "List", "items": [*nodes, node("n2", cpu="2")]}))
    out = runner.invoke(
        main, ["capacity", str(pod_file), "--dump", str(dump), "--replicas-max", "1"]
    )
    assert out.output.rstrip().endswith(
        "and 1 more node(s) with no copy where the next copy fits"
    ), out.output


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("kind: Service\nmetadata: {name: s}\n", "a Pod (or a Deployment"),
        ("- [", "not valid YAML or JSON"),
        ("kind: Pod\nmetadata: {name: p}\nspec: {containers: 3}\n", "spec.containers"),
    ],
)
def test_bad_pod_files_get_one_line(tmp_path: Path, content: str, message: str) -> None:
    dump = tmp_path / "cluster.yaml"
    dump.write_text(yaml.safe_dump({"kind": "List", "items": [node("n0")]}))
    pod_file = tmp_path / "pod.yaml"
    pod_file.write_text(content)
    out = CliRunner().invoke(main, ["capacity", str(pod_file), "--dump", str(dump)])
    assert out.exit_code == 2
    assert message in out.output and "Traceback" not in out.output
    assert len(out.output.strip().splitlines()) == 1
