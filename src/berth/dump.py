"""Reading cluster dumps: `kubectl get ... -o yaml` Lists, multi-document YAML, or JSON.

Objects are returned raw (dicts) and sorted by kind; nothing here interprets them. YAML is read
through `berth.safeload` (safe loader, depth and alias limits).
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from berth.safeload import InputError, load_all

MAX_DUMP_BYTES = 1 << 30


class DumpError(Exception):
    """The dump cannot be read at all (not YAML/JSON, unreadable file)."""


@dataclass
class Dump:
    nodes: list[dict[str, Any]] = field(default_factory=list)
    pods: list[dict[str, Any]] = field(default_factory=list)
    namespaces: list[dict[str, Any]] = field(default_factory=list)
    priority_classes: list[dict[str, Any]] = field(default_factory=list)
    pod_groups: list[dict[str, Any]] = field(default_factory=list)
    other: list[dict[str, Any]] = field(default_factory=list)
    malformed: list[str] = field(default_factory=list)


def _flatten(doc: Any, where: str) -> Iterator[tuple[str, Any]]:
    if doc is None:
        return
    if (
        isinstance(doc, dict)
        and isinstance(doc.get("items"), list)
        and (doc.get("kind") in (None, "List") or str(doc.get("kind", "")).endswith("List"))
    ):
        for i, item in enumerate(doc["items"]):
            yield from _flatten(item, f"{where}.items[{i}]")
        return
    if isinstance(doc, list):
        for i, item in enumerate(doc):
            yield from _flatten(item, f"{where}[{i}]")
        return
    yield where, doc


def parse_dump(text: str | bytes) -> Dump:
    try:
        docs = load_all(text)
    except InputError as exc:
        raise DumpError(str(exc)) from None
    dump = Dump()
    buckets = {
        "Node": dump.nodes,
        "Pod": dump.pods,
        "Namespace": dump.namespaces,
        "PriorityClass": dump.priority_classes,
        "PodGroup": dump.pod_groups,
    }
    seen: dict[tuple[str, str, str], tuple[list[Any], int, str]] = {}
    for d, doc in enumerate(docs):
        for where, obj in _flatten(doc, f"document[{d}]"):
            if not isinstance(obj, dict) or not isinstance(obj.get("kind"), str):
                dump.malformed.append(f"{where}: not a Kubernetes object (no kind)")
                continue
            bucket = buckets.get(obj["kind"], dump.other)
            meta = obj.get("metadata")
            name = meta.get("name") if isinstance(meta, dict) else None
            if not isinstance(meta, dict) or not isinstance(name, str) or not name:
                bucket.append(obj)  # the object's parser reports the missing name
                continue
            key = (obj["kind"], str(meta.get("namespace") or ""), name)
            earlier = seen.get(key)
            if earlier is not None:
                # Two copies of one object (e.g. two dumps concatenated): the API server holds
                # one, so the later copy replaces the earlier rather than counting twice.
                first_list, index, first_where = earlier
                first_list[index] = obj
                dump.malformed.append(
                    f"{first_where}: {obj['kind']} {'/'.join(p for p in key[1:] if p)} appears "
                    f"again at {where}; the later copy is used"
                )
                continue
            seen[key] = (bucket, len(bucket), where)
            bucket.append(obj)
    return dump


def read_dump(path: str) -> Dump:
    """Read and parse DUMP; `-` reads standard input."""
    try:
        if path == "-":
            data = sys.stdin.buffer.read(MAX_DUMP_BYTES + 1)
        else:
            p = Path(path)
            if p.stat().st_size > MAX_DUMP_BYTES:
                raise DumpError(f"{path}: larger than {MAX_DUMP_BYTES} bytes")
            data = p.read_bytes()
    except OSError as exc:
        raise DumpError(f"{path}: cannot read: {exc.strerror}") from None
    if len(data) > MAX_DUMP_BYTES:
        raise DumpError(f"{path}: larger than {MAX_DUMP_BYTES} bytes")
    try:
        return parse_dump(data)
    except DumpError as exc:
        raise DumpError(f"{'standard input' if path == '-' else path}: {exc}") from None
