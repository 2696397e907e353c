"""The kube-scheduler extender wire format: upstream's types, their exact JSON, and decoding.

The types are `k8s.io/kube-scheduler/extender/v1` (types.go). They carry no JSON tags, so the
keys on the wire are the Go field names (`Pod`, `Nodes`, `NodeNames`, `FailedNodes`, ...). Go's
`encoding/json` matches keys case-insensitively when decoding (an exact match first), so we accept
any case on input and always write the exact names. Nil pointers and nil maps marshal as `null`:
kube-scheduler's client (pkg/scheduler/extender.go) reads `NodeNames` only when it is non-null and
the extender is node-cache capable, else `Nodes`, so a result carries the shape it was sent and
`null` for the other one.

Inside Berth these are small dataclasses; the v1 objects (Pod, Node) stay raw JSON dicts and are
parsed by `berth.objects` once, where the adapter needs them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

MIN_EXTENDER_PRIORITY = 0
MAX_EXTENDER_PRIORITY = 10

Obj = dict[str, Any]


class WireError(ValueError):
    """The body is JSON but not the shape upstream's types decode (a 400 for the caller)."""


def get_field(obj: Obj, name: str) -> Any:
    """`obj[name]` as Go decodes a struct field: the exact key first, then any case."""
    if name in obj:
        return obj[name]
    lowered = name.lower()
    for key, value in obj.items():
        if isinstance(key, str) and key.lower() == lowered:
            return value
    return None


def _object(value: Any, where: str, *, required: bool = False) -> Obj | None:
    if value is None:
        if required:
            raise WireError(f"{where}: required")
        return None
    if not isinstance(value, dict):
        raise WireError(f"{where}: must be an object")
    return value


def _root(body: Any, type_name: str) -> Obj:
    if not isinstance(body, dict):
        raise WireError(f"{type_name}: the body must be a JSON object")
    return body


def _string(value: Any, where: str) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        raise WireError(f"{where}: must be a string")
    return value


def _int(value: Any, where: str) -> int:
    if value is None:
        return 0
    if isinstance(value, bool) or not isinstance(value, int):
        raise WireError(f"{where}: must be an integer")
    return value


# ----- ExtenderArgs / ExtenderFilterResult / HostPriorityList -----------------------------------
@dataclass
class NodeList:
    """A v1 NodeList as sent: its envelope (kind, apiVersion, metadata) and raw items."""

    items: list[Obj]
    envelope: Obj = field(default_factory=dict)

    def to_wire(self, items: list[Obj]) -> Obj:
        # ListMeta is a struct field: Go always writes `"metadata": {}`, and `items` even when
        # it is empty (a nil slice would be `null`; an empty list is what an empty filter means).
        return {**self.envelope, "metadata": self.envelope.get("metadata") or {}, "items": items}


@dataclass
class ExtenderArgs:
    pod: Obj
    nodes: NodeList | None = None
    node_names: list[str] | None = None

    @classmethod
    def from_wire(cls, body: Any) -> ExtenderArgs:
        root = _root(body, "ExtenderArgs")
        pod = _object(get_field(root, "Pod"), "Pod", required=True)
        assert pod is not None
        raw_nodes = _object(get_field(root, "Nodes"), "Nodes")
        nodes = None
        if raw_nodes is not None:
            items = raw_nodes.get("items")
            if items is None:
                items = []
            if not isinstance(items, list) or not all(isinstance(i, dict) for i in items):
                raise WireError("Nodes.items: must be a list of Node objects")
            envelope = {k: v for k, v in raw_nodes.items() if k in ("kind", "apiVersion")}
            meta = raw_nodes.get("metadata")
            if isinstance(meta, dict):
                envelope["metadata"] = meta
            nodes = NodeList(items=items, envelope=envelope)
        raw_names = get_field(root, "NodeNames")
        names = None
        if raw_names is not None:
            if not isinstance(raw_names, list) or not all(isinstance(n, str) for n in raw_names):
                raise WireError("NodeNames: must be a list of strings")
            names = list(raw_names)
        return cls(pod=pod, nodes=nodes, node_names=names)

    def to_wire(self) -> Obj:
        return {
            "Pod": self.pod,
            "Nodes": self.nodes.to_wire(self.nodes.items) if self.nodes is not None else None,
            "NodeNames": self.node_names,
        }


@dataclass
class ExtenderFilterResult:
    nodes: Obj | None = None  # the NodeList to send back (same envelope, passing items)
    node_names: list[str] | None = None
    failed_nodes: dict[str, str] = field(default_factory=dict)
    failed_and_unresolvable_nodes: dict[str, str] = field(default_factory=dict)
    error: str = ""

    def to_wire(self) -> Obj:
        return {
            "Nodes": self.nodes,
            "NodeNames": self.node_names,
            "FailedNodes": self.failed_nodes,
            "FailedAndUnresolvableNodes": self.failed_and_unresolvable_nodes,
            "Error": self.error,
        }

    @classmethod
    def from_wire(cls, body: Any) -> ExtenderFilterResult:
        root = _root(body, "ExtenderFilterResult")
        return cls(
            nodes=_object(get_field(root, "Nodes"), "Nodes"),
            node_names=get_field(root, "NodeNames"),
            failed_nodes=dict(get_field(root, "FailedNodes") or {}),
            failed_and_unresolvable_nodes=dict(get_field(root, "FailedAndUnresolvableNodes") or {}),
            error=_string(get_field(root, "Error"), "Error"),
        )


@dataclass
class HostPriority:
    host: str
    score: int

    def to_wire(self) -> Obj:
        return {"Host": self.host, "Score": self.score}

    @classmethod
    def from_wire(cls, body: Any) -> HostPriority:
        root = _root(body, "HostPriority")
        return cls(
            host=_string(get_field(root, "Host"), "Host"),
            score=_int(get_field(root, "Score"), "Score"),
        )


def host_priority_list(items: list[HostPriority]) -> list[Obj]:
    return [h.to_wire() for h in items]


# ----- Bind ---------------------------------------------------------------------------------
@dataclass
class ExtenderBindingArgs:
    pod_name: str
    pod_namespace: str
    pod_uid: str
    node: str

    @classmethod
    def from_wire(cls, body: Any) -> ExtenderBindingArgs:
        root = _root(body, "ExtenderBindingArgs")
        args = cls(
            pod_name=_string(get_field(root, "PodName"), "PodName"),
            pod_namespace=_string(get_field(root, "PodNamespace"), "PodNamespace"),
            pod_uid=_string(get_field(root, "PodUID"), "PodUID"),
            node=_string(get_field(root, "Node"), "Node"),
        )
        # PodUID too: the binding carries it as a precondition, so a bind can only ever bind the
        # pod kube-scheduler decided for, never another one of the same name.
        for name, value in (
            ("PodName", args.pod_name),
            ("PodUID", args.pod_uid),
            ("Node", args.node),
        ):
            if not value:
                raise WireError(f"{name}: required")
        return args

    def to_wire(self) -> Obj:
        return {
            "PodName": self.pod_name,
            "PodNamespace": self.pod_namespace,
            "PodUID": self.pod_uid,
            "Node": self.node,
        }


@dataclass
class ExtenderBindingResult:
    error: str = ""

    def to_wire(self) -> Obj:
        return {"Error": self.error}


# ----- Preempt ------------------------------------------------------------------------------
@dataclass
class MetaVictims:
    """Victims on one node by UID (upstream MetaVictims; `Victims` carry whole pods, which we
    reduce to their UIDs on input since the result is always the Meta form)."""

    uids: list[str]
    num_pdb_violations: int = 0

    def to_wire(self) -> Obj:
        return {
            "Pods": [{"UID": uid} for uid in self.uids],
            "NumPDBViolations": self.num_pdb_violations,
        }


def _victims_map(raw: Any, where: str, *, meta: bool) -> dict[str, MetaVictims]:
    mapping = _object(raw, where)
    if mapping is None:
        return {}
    out: dict[str, MetaVictims] = {}
    for node, victims in mapping.items():
        v = _object(victims, f"{where}[{node}]")
        if v is None:
            out[node] = MetaVictims(uids=[])
            continue
        pods = get_field(v, "Pods") or []
        if not isinstance(pods, list):
            raise WireError(f"{where}[{node}].Pods: must be a list")
        uids: list[str] = []
        for i, p in enumerate(pods):
            item = _object(p, f"{where}[{node}].Pods[{i}]", required=True)
            assert item is not None
            if meta:
                uid = get_field(item, "UID")
            else:
                md = _object(item.get("metadata"), f"{where}[{node}].Pods[{i}].metadata")
                uid = (md or {}).get("uid")
            uids.append(_string(uid, f"{where}[{node}].Pods[{i}].UID"))
        pdb = _int(get_field(v, "NumPDBViolations"), f"{where}[{node}].NumPDBViolations")
        out[node] = MetaVictims(uids=uids, num_pdb_violations=pdb)
    return out


@dataclass
class ExtenderPreemptionArgs:
    pod: Obj
    victims: dict[str, MetaVictims]  # NodeNameToMetaVictims, or NodeNameToVictims reduced
    # Full victim pods by UID when NodeNameToVictims was sent (non-cache-capable mode).
    pods_by_uid: dict[str, Obj] = field(default_factory=dict)

    @classmethod
    def from_wire(cls, body: Any) -> ExtenderPreemptionArgs:
        root = _root(body, "ExtenderPreemptionArgs")
        pod = _object(get_field(root, "Pod"), "Pod", required=True)
        assert pod is not None
        meta = _victims_map(
            get_field(root, "NodeNameToMetaVictims"), "NodeNameToMetaVictims", meta=True
        )
        full_raw = get_field(root, "NodeNameToVictims")
        full = _victims_map(full_raw, "NodeNameToVictims", meta=False)
        pods_by_uid: dict[str, Obj] = {}
        if isinstance(full_raw, dict):
            for victims in full_raw.values():
                for p in (get_field(victims, "Pods") if isinstance(victims, dict) else None) or []:
                    uid = (p.get("metadata") or {}).get("uid")  # shapes checked above
                    if isinstance(uid, str):
                        pods_by_uid[uid] = p
        # upstream sends exactly one of the two; if both come, the Meta form wins.
        return cls(pod=pod, victims={**full, **meta}, pods_by_uid=pods_by_uid)


@dataclass
class ExtenderPreemptionResult:
    node_name_to_meta_victims: dict[str, MetaVictims]

    def to_wire(self) -> Obj:
        return {
            "NodeNameToMetaVictims": {
                node: v.to_wire() for node, v in self.node_name_to_meta_victims.items()
            }
        }
