"""Berth's simulation and upstream's oracle on one dump, compared: what `berth simulate
--compare-upstream` prints and what tests/differential runs on generated clusters.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from berth.config import Config
from berth.config.kubescheduler import to_kube_scheduler_configuration
from berth.dump import Dump
from berth.simulate import Simulation
from berth.upstream.compare import Difference, compare
from berth.upstream.oracle import Oracle


@dataclass
class Comparison:
    differences: list[Difference]
    berth: list[dict[str, Any]] = field(default_factory=list)
    upstream: list[dict[str, Any]] = field(default_factory=list)
    # Plugin paths upstream reached ("Filter/NodeAffinity/UnschedulableAndUnresolvable": n).
    coverage: dict[str, int] = field(default_factory=dict)


def dump_objects(dump: Dump) -> list[dict[str, Any]]:
    """Every object of a dump, as the oracle reads them."""
    return [
        *dump.namespaces,
        *dump.priority_classes,
        *dump.pod_groups,
        *dump.other,
        *dump.pods,
        *dump.nodes,
    ]


def load_differences(invalid: Sequence[dict[str, Any]], load_errors: list[str]) -> list[Difference]:
    """Nodes upstream's validation refuses must be the ones Berth skips with an error, and the
    reverse (pods are compared per decision)."""
    out = []
    refused = {o["name"] for o in invalid if o.get("kind") == "Node"}
    for name in sorted(refused):
        if not any(e.startswith(f"Node {name}:") for e in load_errors):
            out.append(Difference(f"Node {name}", "refused", None, "refused"))
    for error in load_errors:
        if error.startswith("Node ") and error.split(":")[0][5:] not in refused:
            out.append(Difference(error.split(":")[0], "refused", error, None))
    return out


def compare_with_upstream(
    oracle: Oracle, dump: Dump, config: Config, *, seed: int | None = None
) -> Comparison:
    """Schedule `dump` with Berth and with upstream; upstream follows Berth's pick among its
    own equally scored best nodes, so a different node means a different best set."""
    # Taken before Berth runs: a simulation may record its assumptions on the objects it read.
    objects = copy.deepcopy(dump_objects(dump))
    sim = Simulation(dump=dump, config=config, seed=seed)
    berth = [d.to_json() for d in sim.run()]
    ties = {d["pod"]: d["node"] for d in berth if d.get("node")}
    answer = oracle.decide(
        objects, config=to_kube_scheduler_configuration(config.model), tie_break=ties
    )
    differences = compare(berth, answer.decisions)
    differences += load_differences(answer.invalid, sim.load_errors)
    return Comparison(differences, berth, answer.decisions, answer.coverage)
