"""One differential case: Berth's simulation and upstream's oracle on the same dump, compared;
and what a divergence leaves behind (the dump, the configuration, the command that replays it).
"""

from __future__ import annotations

import copy
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from berth.config.loader import parse_config
from berth.dump import dump_of
from berth.upstream.compare import Difference
from berth.upstream.differential import Comparison, compare_with_upstream
from berth.upstream.errors import UpstreamError
from berth.upstream.oracle import Oracle
from tests.differential.generator import Case, shares_devices


@dataclass
class Outcome:
    differences: list[Difference]
    coverage: dict[str, int] = field(default_factory=dict)
    berth: list[dict[str, Any]] = field(default_factory=list)
    upstream: list[dict[str, Any]] = field(default_factory=list)
    # The oracle's own machinery failed on the case ("oracle: ..." errors, e.g. an attempt that
    # did not finish): no outcome of upstream's to compare with, and no divergence of Berth's.
    oracle_error: str = ""


def _oracle_error(result: Comparison) -> str:
    for d in result.upstream:
        err = str(d.get("error") or "")
        if err.startswith("oracle: "):
            return f"{d.get('pod')}: {err}"
    return ""


def run_case(oracle: Oracle, case: Case) -> Outcome:
    # Berth's loaders keep what they read, so each run gets its own copy of the case.
    dump = dump_of([copy.deepcopy(case.objects)])
    try:
        result = compare_with_upstream(oracle, dump, parse_config(case.config), seed=case.seed)
    except UpstreamError:
        raise
    except Exception as exc:  # a crash is a divergence too: shrunk and written out like one
        return Outcome([Difference("*", "berth raised", f"{type(exc).__name__}: {exc}", None)])
    broken = _oracle_error(result)
    if broken:
        oracle.close()  # the next case gets a fresh process
        return Outcome([], result.coverage, result.berth, result.upstream, oracle_error=broken)
    return Outcome(result.differences, result.coverage, result.berth, result.upstream)


def capacity_paths(case: Case, upstream: list[dict[str, Any]]) -> Counter[str]:
    """What upstream decided for pending pods with claims where devices allow multiple
    allocations (their claims ask for a share of the capacity, or the policy's default):
    placed, refused, and nodes where the placed pods' claims took more devices than the node
    has, so that one device was allocated more than once."""
    devices: Counter[str] = Counter()
    for o in case.objects:
        if o["kind"] == "ResourceSlice":
            devices[o["spec"].get("nodeName", "")] += len(o["spec"].get("devices", []))
    out: Counter[str] = Counter()
    if not shares_devices(case.objects):
        return out
    wanted = {
        o["metadata"]["name"]: sum(
            int(r.get("exactly", {}).get("count", 1)) for r in o["spec"]["devices"]["requests"]
        )
        for o in case.objects
        if o["kind"] == "ResourceClaim"
    }
    pods = {
        f"{o['metadata'].get('namespace', 'default')}/{o['metadata']['name']}": sum(
            wanted.get(r.get("resourceClaimName", ""), 0) for r in o["spec"]["resourceClaims"]
        )
        for o in case.objects
        if o["kind"] == "Pod" and not o["spec"].get("nodeName") and o["spec"].get("resourceClaims")
    }
    taken: Counter[str] = Counter()
    for d in upstream:
        if d.get("pod") not in pods or d.get("invalid") or d.get("error"):
            continue
        if d.get("node"):
            out["DRA/ConsumableCapacity/Scheduled"] += 1
            taken[d["node"]] += pods[d["pod"]]
        else:
            out["DRA/ConsumableCapacity/Unschedulable"] += 1
    out["DRA/ConsumableCapacity/SharedDevice"] += sum(
        1 for node, n in taken.items() if n > devices[node]
    )
    return out


def write_reproduction(case: Case, outcome: Outcome, directory: Path) -> tuple[Path, str]:
    """Write the dump and the configuration of a divergence; returns the dump and the
    command that replays it."""
    directory.mkdir(parents=True, exist_ok=True)
    dump = directory / "divergence.yaml"
    config = directory / "divergence.config.yaml"
    header = "".join(f"# {d}\n" for d in outcome.differences[:20])
    dump.write_text(
        header
        + yaml.safe_dump(
            {"apiVersion": "v1", "kind": "List", "items": case.objects}, sort_keys=False
        )
    )
    config.write_text(yaml.safe_dump(case.config, sort_keys=False))
    command = f"berth simulate {dump} --config {config} --seed {case.seed} --compare-upstream"
    return dump, command
