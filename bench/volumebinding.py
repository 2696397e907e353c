"""Micro-benchmark: VolumeBinding's Filter for WaitForFirstConsumer pods over local PVs.

    python bench/volumebinding.py [--nodes 1000] [--pvs 1000] [--decisions 300] [--seed 1]

A cluster of `--nodes` nodes and `--pvs` local PersistentVolumes of one WaitForFirstConsumer
class (`kubernetes.io/no-provisioner`), each pinned to one node by a required hostname node
affinity (round robin, so `--pvs 4000 --nodes 1000` gives 4 per node). Each pod to schedule has
its own unbound claim of that class. Per pod: the claim is added, VolumeBinding's PreFilter and
Filter run over all nodes (timed: `filter ms`), then the full decision (timed: `decision ms`),
then Reserve assumes the chosen PV and the pod is assumed, so the pool shrinks as upstream's
would. In-process; no API server.
"""

from __future__ import annotations

import argparse
import random
import statistics
import time
from typing import Any

from berth.config import parse_config
from berth.engine import Engine
from berth.framework.plugin import CycleState
from berth.objects import parse_node, parse_pod

CLASS = "local-storage"


def build(nodes: int, pvs: int, seed: int) -> Engine:
    rng = random.Random(seed)
    engine = Engine(config=parse_config({}), seed=seed)
    zones = ["zone-a", "zone-b", "zone-c"]
    for i in range(nodes):
        labels = {
            "kubernetes.io/hostname": f"node-{i}",
            "topology.kubernetes.io/zone": zones[i % 3],
            "node.kubernetes.io/instance-type": rng.choice(["m5.xlarge", "m5.2xlarge"]),
        }
        engine.state.upsert_node(
            parse_node(
                {
                    "metadata": {"name": f"node-{i}", "labels": labels},
                    "status": {"allocatable": {"cpu": "32", "memory": "128Gi", "pods": "110"}},
                }
            )
        )
    engine.volumes.upsert(
        {
            "apiVersion": "storage.k8s.io/v1",
            "kind": "StorageClass",
            "metadata": {"name": CLASS},
            "provisioner": "kubernetes.io/no-provisioner",
            "volumeBindingMode": "WaitForFirstConsumer",
        }
    )
    for j in range(pvs):
        host = f"node-{j % nodes}"
        term = {
            "matchExpressions": [
                {"key": "kubernetes.io/hostname", "operator": "In", "values": [host]}
            ]
        }
        engine.volumes.upsert(
            {
                "apiVersion": "v1",
                "kind": "PersistentVolume",
                "metadata": {"name": f"local-{j}", "resourceVersion": "1"},
                "spec": {
                    "capacity": {"storage": f"{rng.choice([10, 20, 50])}Gi"},
                    "accessModes": ["ReadWriteOnce"],
                    "storageClassName": CLASS,
                    "local": {"path": f"/mnt/disks/{j}"},
                    "nodeAffinity": {"required": {"nodeSelectorTerms": [term]}},
                },
                "status": {"phase": "Available"},
            }
        )
    return engine


def claim(k: int) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": {
            "name": f"data-{k}",
            "namespace": "bench",
            "uid": f"uid-data-{k}",
            "resourceVersion": "1",
        },
        "spec": {
            "accessModes": ["ReadWriteOnce"],
            "storageClassName": CLASS,
            "resources": {"requests": {"storage": "5Gi"}},
        },
        "status": {"phase": "Pending"},
    }


def quantiles(samples: list[float]) -> str:
    samples = sorted(samples)
    q = statistics.quantiles(samples, n=100)
    return f"p50 {q[49]:.3f}  p90 {q[89]:.3f}  p99 {q[98]:.3f}  max {samples[-1]:.3f}"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--nodes", type=int, default=1000)
    ap.add_argument("--pvs", type=int, default=1000)
    ap.add_argument("--decisions", type=int, default=300)
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    t0 = time.perf_counter()
    engine = build(args.nodes, args.pvs, args.seed)
    built = time.perf_counter() - t0
    print(f"state: {args.nodes} nodes, {args.pvs} local PVs, built in {built:.1f}s")
    sched = engine.schedulers["berth"]
    fwk = sched.framework
    binding = next(p for p in fwk.filter if p.name == "VolumeBinding")
    nodes = engine.state.node_indices()
    filter_ms: list[float] = []
    decision_ms: list[float] = []
    for k in range(args.decisions):
        engine.volumes.upsert(claim(k))
        pod = parse_pod(
            {
                "metadata": {"name": f"new-{k}", "namespace": "bench", "uid": f"uid-new-{k}"},
                "spec": {
                    "containers": [{"name": "c", "image": "busybox"}],
                    "volumes": [
                        {"name": "data", "persistentVolumeClaim": {"claimName": f"data-{k}"}}
                    ],
                },
            }
        )
        cycle = CycleState()
        start = time.perf_counter()
        binding.pre_filter(cycle, pod)
        binding.filter(cycle, pod, nodes)
        filter_ms.append((time.perf_counter() - start) * 1000)
        start = time.perf_counter()
        result = sched.schedule(pod)
        decision_ms.append((time.perf_counter() - start) * 1000)
        status = fwk.run_reserve(result.cycle, pod, result.node)
        assert status.ok, status
        engine.state.assume_pod(pod, result.node)
    print(f"VolumeBinding PreFilter+Filter ms: {quantiles(filter_ms)}  ({args.decisions} pods)")
    print(f"decision ms:                       {quantiles(decision_ms)}")


if __name__ == "__main__":
    main()
