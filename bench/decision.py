"""Micro-benchmark: one scheduling decision over a large, loaded cluster state (in-process).

    python bench/decision.py [--nodes 5000] [--pods 10000] [--decisions 500] [--seed 1]

Prints decision latency percentiles in milliseconds for a plain pod (requests only) on a state
with `--pods` pods already placed. No API server is involved: this is the engine's own cost.
"""

from __future__ import annotations

import argparse
import random
import statistics
import time

from berth.config import parse_config
from berth.engine import Engine
from berth.objects import parse_node, parse_pod


def build(nodes: int, pods: int, seed: int) -> Engine:
    rng = random.Random(seed)
    engine = Engine(config=parse_config({}), seed=seed)
    state = engine.state
    zones = ["zone-a", "zone-b", "zone-c"]
    for i in range(nodes):
        labels = {
            "kubernetes.io/hostname": f"node-{i}",
            "topology.kubernetes.io/zone": zones[i % 3],
            "node.kubernetes.io/instance-type": rng.choice(["m5.xlarge", "m5.2xlarge"]),
        }
        taints = (
            [{"key": "dedicated", "value": "gpu", "effect": "NoSchedule"}] if i % 50 == 0 else []
        )
        state.upsert_node(
            parse_node(
                {
                    "metadata": {"name": f"node-{i}", "labels": labels},
                    "spec": {"taints": taints},
                    "status": {"allocatable": {"cpu": "32", "memory": "128Gi", "pods": "110"}},
                }
            )
        )
    for j in range(pods):
        state.add_pod(
            parse_pod(
                {
                    "metadata": {
                        "name": f"run-{j}",
                        "namespace": "bench",
                        "labels": {"app": f"a{j % 20}"},
                    },
                    "spec": {
                        "nodeName": f"node-{rng.randrange(nodes)}",
                        "containers": [
                            {
                                "name": "c",
                                "image": "busybox",
                                "resources": {"requests": {"cpu": "250m", "memory": "512Mi"}},
                            }
                        ],
                    },
                }
            )
        )
    return engine


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--nodes", type=int, default=5000)
    ap.add_argument("--pods", type=int, default=10000)
    ap.add_argument("--decisions", type=int, default=500)
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    t0 = time.perf_counter()
    engine = build(args.nodes, args.pods, args.seed)
    print(f"state: {args.nodes} nodes, {args.pods} pods, built in {time.perf_counter() - t0:.1f}s")
    sched = engine.schedulers["berth"]
    samples = []
    for k in range(args.decisions):
        pod = parse_pod(
            {
                "metadata": {"name": f"new-{k}", "namespace": "bench"},
                "spec": {
                    "containers": [
                        {
                            "name": "c",
                            "image": "busybox",
                            "resources": {"requests": {"cpu": "100m", "memory": "128Mi"}},
                        }
                    ]
                },
            }
        )
        start = time.perf_counter()
        result = sched.schedule(pod)
        samples.append((time.perf_counter() - start) * 1000)
        engine.state.assume_pod(pod, result.node)
    samples.sort()
    q = statistics.quantiles(samples, n=100)
    print(
        f"decision ms: p50 {q[49]:.2f}  p90 {q[89]:.2f}  p99 {q[98]:.2f}  max {samples[-1]:.2f}"
        f"  ({args.decisions} decisions)"
    )


if __name__ == "__main__":
    main()
