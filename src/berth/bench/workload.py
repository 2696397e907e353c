"""Benchmark workloads: YAML descriptions in the spirit of upstream's scheduler_perf, and the
Kubernetes objects they expand to (nodes, pods already running, pods to schedule).

A workload names its node shape and groups (labels, taints, annotations by share of the nodes),
pod templates for the running pods and for the pods to schedule (each with a share of the count),
and the Berth configuration to run. Counts come from the size (tiny, quick, full), so one file
describes a workload at every size. Templates may use `{i}` (index within the template) and
`{group}` (`i % groups`, with `groups = ceil(count / podsPerGroup)`) in any string.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterator
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from berth.bench.dra import DRASpec, parse_dra
from berth.bench.volumes import VolumeSpec, parse_volumes
from berth.safeload import InputError, load_one

JSON = dict[str, Any]
NAMESPACE = "bench"
CEILING_NAMESPACE = "bench-ceiling"
CEILING_SCHEDULER = "bench-ceiling"  # nobody schedules these: the ceiling client binds them
ZONE_LABEL = "topology.kubernetes.io/zone"
HOSTNAME_LABEL = "kubernetes.io/hostname"
DEFAULT_CEILING_CONCURRENCY = 32  # bindings in flight for the bare client (the ceiling)


class WorkloadError(Exception):
    """A workload file that cannot be used; the message names the file and the field."""


@dataclass(frozen=True)
class Size:
    """How big a run is: nodes, pods already running, pods to schedule."""

    name: str
    nodes: int
    running: int
    pods: int


SIZES: dict[str, Size] = {
    "tiny": Size("tiny", nodes=20, running=20, pods=60),
    "quick": Size("quick", nodes=500, running=500, pods=1000),
    "full": Size("full", nodes=5000, running=5000, pods=10000),
}


@dataclass(frozen=True)
class NodeGroup:
    share: float
    labels: dict[str, str] = field(default_factory=dict)
    annotations: dict[str, str] = field(default_factory=dict)
    taints: tuple[JSON, ...] = ()
    random_annotations: dict[str, tuple[float, float]] = field(default_factory=dict)


@dataclass(frozen=True)
class PodTemplate:
    share: float
    template: JSON
    pods_per_group: int = 0  # 0: one group


@dataclass(frozen=True)
class Workload:
    name: str
    description: str
    zones: int
    capacity: dict[str, str]
    node_groups: tuple[NodeGroup, ...]
    running: tuple[PodTemplate, ...]
    pods: tuple[PodTemplate, ...]
    config: JSON
    source: str
    dra: DRASpec | None = None  # DRA devices and claims (berth.bench.dra)
    volumes: VolumeSpec | None = None  # local volumes and a claim per pod (berth.bench.volumes)

    # ----- expansion ---------------------------------------------------------------------------
    def nodes(self, size: Size, *, seed: int = 1) -> list[JSON]:
        """The workload's Node objects (names node-00001..., zones round-robin)."""
        rng = random.Random(seed)
        counts = _split(size.nodes, [g.share for g in self.node_groups])
        width = max(5, len(str(size.nodes)))
        groups: list[NodeGroup] = []
        for g, c in zip(self.node_groups, counts, strict=True):
            groups.extend([g] * c)
        # Interleave groups over the node list so each zone gets its share of every group.
        order = sorted(range(size.nodes), key=lambda i: (i * 7919) % size.nodes)
        out = []
        for i in range(size.nodes):
            group = groups[order[i]] if groups else NodeGroup(share=1)
            name = f"node-{i + 1:0{width}d}"
            labels = {
                HOSTNAME_LABEL: name,
                ZONE_LABEL: f"zone-{chr(ord('a') + i % self.zones)}",
                "topology.kubernetes.io/region": "region-1",
                "kubernetes.io/os": "linux",
                "kubernetes.io/arch": "amd64",
                **group.labels,
            }
            annotations = dict(group.annotations)
            for key, (lo, hi) in group.random_annotations.items():
                annotations[key] = f"{rng.uniform(lo, hi):.3f}"
            resources_ = {**self.capacity}
            out.append(
                {
                    "apiVersion": "v1",
                    "kind": "Node",
                    "metadata": {"name": name, "labels": labels, "annotations": annotations},
                    "spec": {"taints": [dict(t) for t in group.taints]} if group.taints else {},
                    "status": {
                        "capacity": dict(resources_),
                        "allocatable": dict(resources_),
                        "conditions": [{"type": "Ready", "status": "True"}],
                    },
                }
            )
        return out

    def running_pods(self, size: Size, nodes: list[JSON]) -> list[JSON]:
        """Pods already bound (`spec.nodeName` set), spread round-robin over nodes they tolerate."""
        plain = [n["metadata"]["name"] for n in nodes if not n["spec"].get("taints")]
        out = []
        for k, raw in enumerate(_expand(self.running, size.running, prefix="run")):
            raw["spec"]["nodeName"] = plain[(k * 7) % len(plain)]
            out.append(raw)
        return out

    def pending_pods(self, size: Size, *, namespace: str = NAMESPACE) -> list[JSON]:
        """The pods Berth schedules, in creation order."""
        pods = list(_expand(self.pods, size.pods, prefix="pod"))
        for p in pods:
            p["metadata"]["namespace"] = namespace
        return pods


def ceiling_pods(count: int) -> list[JSON]:
    """Plain pods for the binding ceiling: no scheduler will touch them."""
    return [
        {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": f"ceil-{i:06d}", "namespace": CEILING_NAMESPACE},
            "spec": {
                "schedulerName": CEILING_SCHEDULER,
                "containers": [
                    {"name": "c", "image": "registry.k8s.io/pause:3.10", "resources": {}}
                ],
            },
        }
        for i in range(count)
    ]


# ----- templates --------------------------------------------------------------------------------
def _split(total: int, shares: list[float]) -> list[int]:
    """Largest-remainder split of `total` by `shares` (every count sums exactly to total)."""
    if not shares:
        return []
    whole = sum(shares)
    raw = [total * s / whole for s in shares]
    counts = [math.floor(r) for r in raw]
    rest = total - sum(counts)
    for i in sorted(range(len(raw)), key=lambda i: counts[i] - raw[i])[:rest]:
        counts[i] += 1
    return counts


def _fill(value: Any, params: dict[str, Any]) -> Any:
    if isinstance(value, str):
        return value.format_map(params) if "{" in value else value
    if isinstance(value, dict):
        return {_fill(k, params): _fill(v, params) for k, v in value.items()}
    if isinstance(value, list):
        return [_fill(v, params) for v in value]
    return value


def _expand(templates: tuple[PodTemplate, ...], total: int, *, prefix: str) -> Iterator[JSON]:
    """Pods from `templates`, interleaved in creation order (a mixed queue, not blocks)."""
    counts = _split(total, [t.share for t in templates])
    streams: list[Iterator[JSON]] = []
    for t_index, (t, count) in enumerate(zip(templates, counts, strict=True)):
        groups = math.ceil(count / t.pods_per_group) if t.pods_per_group else 1
        streams.append(_stream(t, count, max(groups, 1), f"{prefix}-{t_index}"))
    # Round-robin weighted by count, deterministic.
    emitted = [0] * len(streams)
    for _ in range(total):
        k = min(
            (k for k in range(len(streams)) if emitted[k] < counts[k]),
            key=lambda k: (emitted[k] + 1) / counts[k],
        )
        emitted[k] += 1
        yield next(streams[k])


def _stream(t: PodTemplate, count: int, groups: int, prefix: str) -> Iterator[JSON]:
    for i in range(count):
        raw = _fill(t.template, {"i": i, "group": i % groups})
        meta = raw.setdefault("metadata", {})
        meta["name"] = f"{prefix}-{i:06d}"
        meta["namespace"] = NAMESPACE
        spec = raw.setdefault("spec", {})
        spec.setdefault("schedulerName", "berth")
        raw["apiVersion"] = "v1"
        raw["kind"] = "Pod"
        yield raw


# ----- loading ------------------------------------------------------------------------------------
def _require(cond: bool, source: str, where: str, reason: str) -> None:
    if not cond:
        raise WorkloadError(f"{source}: {where}: {reason}")


def _templates(raw: Any, source: str, where: str) -> tuple[PodTemplate, ...]:
    _require(isinstance(raw, list) and bool(raw), source, where, "must be a non-empty list")
    out = []
    for i, item in enumerate(raw):
        w = f"{where}[{i}]"
        _require(isinstance(item, dict), source, w, "must be a mapping")
        tpl = item.get("template")
        _require(isinstance(tpl, dict), source, f"{w}.template", "must be a pod (a mapping)")
        spec = tpl.get("spec")
        _require(
            isinstance(spec, dict) and bool(spec.get("containers")),
            source,
            f"{w}.template.spec.containers",
            "required",
        )
        share = item.get("share", 1)
        _require(isinstance(share, int | float) and share > 0, source, f"{w}.share", "must be > 0")
        per = item.get("podsPerGroup", 0)
        _require(isinstance(per, int) and per >= 0, source, f"{w}.podsPerGroup", "must be >= 0")
        out.append(PodTemplate(share=float(share), template=tpl, pods_per_group=per))
    return tuple(out)


def _node_groups(raw: Any, source: str) -> tuple[NodeGroup, ...]:
    if raw is None:
        return (NodeGroup(share=1),)
    _require(isinstance(raw, list), source, "nodes.groups", "must be a list")
    out = []
    for i, g in enumerate(raw):
        w = f"nodes.groups[{i}]"
        _require(isinstance(g, dict), source, w, "must be a mapping")
        share = g.get("share", 1)
        _require(isinstance(share, int | float) and share > 0, source, f"{w}.share", "must be > 0")
        rnd: dict[str, tuple[float, float]] = {}
        for key, spec in (g.get("randomAnnotations") or {}).items():
            ok = isinstance(spec, dict) and {"min", "max"} <= set(spec)
            _require(ok, source, f"{w}.randomAnnotations.{key}", "needs min and max")
            rnd[str(key)] = (float(spec["min"]), float(spec["max"]))
        out.append(
            NodeGroup(
                share=float(share),
                labels={str(k): str(v) for k, v in (g.get("labels") or {}).items()},
                annotations={str(k): str(v) for k, v in (g.get("annotations") or {}).items()},
                taints=tuple(g.get("taints") or ()),
                random_annotations=rnd,
            )
        )
    return tuple(out)


def parse_workload(raw: Any, *, source: str) -> Workload:
    _require(isinstance(raw, dict), source, "(top)", "must be a mapping")
    name = raw.get("name")
    _require(isinstance(name, str) and bool(name), source, "name", "required")
    nodes = raw.get("nodes") or {}
    _require(isinstance(nodes, dict), source, "nodes", "must be a mapping")
    zones = nodes.get("zones", 3)
    _require(isinstance(zones, int) and 1 <= zones <= 26, source, "nodes.zones", "1..26")
    capacity = {"cpu": "32", "memory": "128Gi", "pods": "110"}
    capacity.update({str(k): str(v) for k, v in (nodes.get("capacity") or {}).items()})
    config = raw.get("config") or {}
    _require(isinstance(config, dict), source, "config", "must be a mapping")
    try:
        dra = parse_dra(raw.get("dra"))
        volumes = parse_volumes(raw.get("volumes"))
    except ValueError as exc:
        raise WorkloadError(f"{source}: {exc}") from None
    return Workload(
        name=name,
        description=str(raw.get("description") or "").strip(),
        zones=zones,
        capacity=capacity,
        node_groups=_node_groups(nodes.get("groups"), source),
        running=_templates(raw.get("runningPods"), source, "runningPods"),
        pods=_templates(raw.get("pods"), source, "pods"),
        config=config,
        source=source,
        dra=dra,
        volumes=volumes,
    )


def load_workload(path: Path) -> Workload:
    try:
        raw = load_one(path.read_bytes())
    except OSError as exc:
        raise WorkloadError(f"{path}: cannot read: {exc.strerror}") from None
    except InputError as exc:
        raise WorkloadError(f"{path}: {exc}") from None
    return parse_workload(raw, source=str(path))


def builtin_workloads() -> dict[str, Workload]:
    """The workloads shipped in berth/bench/workloads/, by name, in file order."""
    out: dict[str, Workload] = {}
    folder = resources.files("berth.bench").joinpath("workloads")
    for entry in sorted(folder.iterdir(), key=lambda e: e.name):
        if entry.name.endswith(".yaml"):
            w = parse_workload(load_one(entry.read_text()), source=entry.name)
            out[w.name] = w
    return out
