"""The sample files shipped inside the package (`berth demo`'s workload, the cluster dump
`berth simulate` reads in the README, the metric configurations), so an installed wheel has
them; a source checkout sees the same files through the top-level `examples/` link."""

from __future__ import annotations

from importlib.resources import files
from importlib.resources.abc import Traversable

# name -> what it is, in the order `berth examples` lists them
DESCRIPTIONS = {
    "workload.yaml": "the pods `berth demo` creates (the default of --workload)",
    "cluster.yaml": "a small cluster dump for `berth simulate` (two zones, a taint, a cordon)",
    "metrics-price.yaml": "configuration: score by the sim.berth.io/price node annotation",
    "metrics-prometheus.yaml": "configuration: score by a Prometheus latency query",
    "metrics-latency.yaml": "configuration: score by the sim.berth.io/latency node annotation",
    "deployment.yaml": "walkthrough: a Deployment of 3 scheduled by Berth",
    "replicationcontroller.yaml": "walkthrough: a ReplicationController to scale from 3 to 5",
    "priority.yaml": "walkthrough: PriorityClasses and a Deployment of batch pods",
    "priority-critical.yaml": "walkthrough: the critical pod that preempts a batch pod",
    "gang.yaml": "walkthrough: a PodGroup of 3 and the Job of its workers",
    "gang-config.yaml": "configuration: gang scheduling (Coscheduling)",
}


def example(name: str) -> Traversable:
    """The shipped file `name` (one of DESCRIPTIONS); KeyError for any other name."""
    if name not in DESCRIPTIONS:
        raise KeyError(name)
    return files(__name__) / name
