"""`berth simulate`'s reasons for a placed pod whose scan percentageOfNodesToScore stopped:
upstream's diagnosis holds only the nodes findNodesThatPassFilters reached (schedule_one.go),
walking the node tree's zone-interleaved list from where the previous pod's scan stopped."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner

from berth.cli import main
from tests.builders import node, pod

ZONE = "topology.kubernetes.io/zone"
REGION = "topology.kubernetes.io/region"
REASON = "node(s) didn't match scheduler-enforced node affinity"
# The profile's addedAffinity rejects tier=silver, as the generated case this was shrunk from.
SILVER = ("node-002", "node-059", "node-104")


def zoned_nodes() -> list[dict[str, Any]]:
    """105 nodes arriving zone by zone: node-000..059 in zone-a, node-060..104 in zone-b. The
    node tree lists them a0 b60 a1 b61 ... a44 b104, then a45..a59: node-002 is scanned 5th,
    node-104 90th, node-059 last (105th); in arrival order node-059 would come before node-104."""
    nodes = []
    for i in range(105):
        labels = {REGION: "region-1", ZONE: "zone-a" if i < 60 else "zone-b"}
        name = f"node-{i:03d}"
        if name in SILVER:
            labels["tier"] = "silver"
        nodes.append(node(name, labels=labels))
    return nodes


def config(percentage: int | None = None, profile_percentage: int | None = None) -> dict[str, Any]:
    added = {
        "requiredDuringSchedulingIgnoredDuringExecution": {
            "nodeSelectorTerms": [
                {"matchExpressions": [{"key": "tier", "operator": "NotIn", "values": ["silver"]}]}
            ]
        }
    }
    profile: dict[str, Any] = {
        "schedulerName": "berth",
        "pluginConfig": [{"name": "NodeAffinity", "args": {"addedAffinity": added}}],
    }
    if profile_percentage is not None:
        profile["percentageOfNodesToScore"] = profile_percentage
    out: dict[str, Any] = {
        "apiVersion": "berth.io/v1alpha1",
        "kind": "BerthConfiguration",
        "profiles": [profile],
    }
    if percentage is not None:
        out["percentageOfNodesToScore"] = percentage
    return out


# (name, configuration, pending pods in queue order, the nodes each placed pod's reasons name)
SCANS: list[tuple[str, dict[str, Any], list[str], dict[str, set[str]]]] = [
    (
        # 105 nodes: numFeasibleNodesToFind is 100 (at least minFeasibleNodesToFind). The 100th
        # feasible node is the 102nd scanned (node-056); node-057, the 101st feasible, stops
        # the scan, so node-059 is never filtered.
        "adaptive percentage stops the scan before the last rejected node",
        config(),
        ["web-0"],
        {"web-0": {"node-002", "node-104"}},
    ),
    (
        "percentageOfNodesToScore 0 is adaptive",
        config(percentage=0),
        ["web-0"],
        {"web-0": {"node-002", "node-104"}},
    ),
    (
        "percentageOfNodesToScore 100 scans every node",
        config(percentage=100),
        ["web-0"],
        {"web-0": set(SILVER)},
    ),
    (
        "the profile's percentageOfNodesToScore overrides the global one",
        config(percentage=100, profile_percentage=50),
        ["web-0"],
        {"web-0": {"node-002", "node-104"}},
    ),
    (
        # The second scan starts at the 103rd node (nextStartNodeIndex 102): node-057, node-058,
        # node-059, then wraps to node-000 and stops 100 nodes later, after node-104.
        "the next pod's scan starts where the last stopped",
        config(),
        ["web-0", "web-1"],
        {"web-0": {"node-002", "node-104"}, "web-1": set(SILVER)},
    ),
]


def scan_dump(tmp_path: Path, conf: dict[str, Any], pods: list[str]) -> tuple[Path, Path]:
    items = [*zoned_nodes(), *(pod(name) for name in pods)]
    dump = tmp_path / "zoned.json"
    dump.write_text(json.dumps({"apiVersion": "v1", "kind": "List", "items": items}))
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(conf))
    return dump, path


@pytest.mark.parametrize(("name", "conf", "pods", "want"), SCANS, ids=[s[0] for s in SCANS])
def test_a_placed_pods_reasons_are_the_nodes_its_scan_reached(
    name: str, conf: dict[str, Any], pods: list[str], want: dict[str, set[str]], tmp_path: Path
) -> None:
    dump, path = scan_dump(tmp_path, conf, pods)
    args = ["simulate", str(dump), "--config", str(path), "-o", "json", "--reasons", "all"]
    result = CliRunner().invoke(main, [*args, "--seed", "1"])
    assert result.exit_code == 0, result.output
    out = {d["pod"]: d for d in map(json.loads, result.output.splitlines()) if isinstance(d, dict)}
    assert list(out) == [f"default/{p}" for p in pods], name
    for p, nodes in want.items():
        decision = out[f"default/{p}"]
        assert decision["node"] is not None and decision["node"] not in SILVER, (name, decision)
        assert decision["reasons"] == {n: [REASON] for n in sorted(nodes)}, name


def test_nodes_outside_a_prefilter_result_stay_reasons_when_the_scan_stops_early(
    tmp_path: Path,
) -> None:
    """NodeAffinity's PreFilter narrows the scan to the nodes its matchFields name (all but
    node-000): 104 candidates, 101 feasible, so the scan stops before node-059 as above, and
    node-000 is still rejected, by the PreFilter result (findNodesThatFitPod's absent-nodes
    status). kube-scheduler walks such a result in Go map order, Berth in the node tree's:
    which rejected candidates a stopped scan reaches may differ (docs/testing.md)."""
    names = [f"node-{i:03d}" for i in range(1, 105)]
    terms = [
        {"matchFields": [{"key": "metadata.name", "operator": "In", "values": [n]}]} for n in names
    ]
    required = {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": terms}}
    web = pod("web-0", spec={"affinity": {"nodeAffinity": required}})
    dump = tmp_path / "restricted.json"
    dump.write_text(
        json.dumps({"apiVersion": "v1", "kind": "List", "items": [*zoned_nodes(), web]})
    )
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config()))
    args = ["simulate", str(dump), "--config", str(path), "-o", "json", "--reasons", "all"]
    result = CliRunner().invoke(main, [*args, "--seed", "1"])
    assert result.exit_code == 0, result.output
    [decision] = map(json.loads, result.output.splitlines())
    assert decision["node"] is not None and decision["node"] not in SILVER, decision
    assert decision["reasons"] == {
        "node-000": ["node(s) didn't satisfy plugin(s) [NodeAffinity]"],
        "node-002": [REASON],
        "node-104": [REASON],
    }
