"""One differential case: Berth's simulation and upstream's oracle on the same dump, compared;
and what a divergence leaves behind (the dump, the configuration, the command that replays it).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from berth.config.kubescheduler import to_kube_scheduler_configuration
from berth.config.loader import parse_config
from berth.dump import parse_dump
from berth.simulate import Simulation
from berth.upstream.compare import Difference, compare
from berth.upstream.oracle import Oracle
from tests.differential.generator import Case


@dataclass
class Outcome:
    differences: list[Difference]
    coverage: dict[str, int] = field(default_factory=dict)
    berth: list[dict[str, Any]] = field(default_factory=list)
    upstream: list[dict[str, Any]] = field(default_factory=list)


def run_berth(case: Case) -> tuple[list[dict[str, Any]], list[str]]:
    sim = Simulation(
        dump=parse_dump(json.dumps(case.objects)), config=parse_config(case.config), seed=case.seed
    )
    return [d.to_json() for d in sim.run()], sim.load_errors


def _load_differences(invalid: list[dict[str, Any]], load_errors: list[str]) -> list[Difference]:
    """Nodes and bound pods upstream refuses must be the ones Berth skips with an error."""
    out = []
    refused = {(o["kind"], o["name"]) for o in invalid if o["kind"] in ("Node", "Pod")}
    for kind, name in sorted(refused):
        if kind == "Node" and not any(f"Node {name}" in e for e in load_errors):
            out.append(Difference(f"Node {name}", "refused", None, "refused"))
    for error in load_errors:
        if error.startswith("Node ") and not any(
            f"Node {n}" in error for k, n in refused if k == "Node"
        ):
            out.append(Difference(error.split(":")[0], "refused", error, None))
    return out


def run_case(oracle: Oracle, case: Case) -> Outcome:
    berth, load_errors = run_berth(case)
    config = to_kube_scheduler_configuration(parse_config(case.config).model)
    ties = {d["pod"]: d["node"] for d in berth if d.get("node")}
    answer = oracle.decide(case.objects, config=config, tie_break=ties)
    differences = compare(berth, answer.decisions)
    differences += _load_differences(answer.invalid, load_errors)
    return Outcome(differences, answer.coverage, berth, answer.decisions)


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
