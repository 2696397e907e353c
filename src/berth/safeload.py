"""Safe loading of YAML and JSON inputs: every front reads its files through here (the
configuration, `--rbac`, dumps, workloads, value files) and the servers check decoded bodies here.

PyYAML's safe loader builds aliases as shared references, so a 500-byte "billion laughs" loads
fine and explodes only when someone walks or serialises it; its composer and constructor recurse,
so a deeply nested document ends in a RecursionError or, in the C extension, a crash. The event
stream is therefore scanned first (the C parser, no recursion): nesting depth, and the node count
each alias expands to, against upstream's YAML library rule (go-yaml's "excessive aliasing"
ratio, which kubectl and kube-apiserver apply). Only a document that passes is constructed.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import orjson
import yaml

try:
    from yaml import CSafeLoader as _Loader
except ImportError:  # pragma: no cover - depends on how PyYAML was built
    from yaml import SafeLoader as _Loader  # type: ignore[assignment]

DEFAULT_MAX_DEPTH = 100
_LIBYAML_MAX_DEPTH = 1000  # libyaml refuses deeper flows itself


class InputError(ValueError):
    """An input that is not safe or not valid to load; the message is one line for users."""


@dataclass(frozen=True)
class YamlLimits:
    """How deep a document may nest and how far its aliases may expand it."""

    max_depth: int = DEFAULT_MAX_DEPTH


# go-yaml (decode.go, allowedAliasRatio): up to 400,000 decoded nodes 99% may come from
# aliases, from 4,000,000 on 10%, in between it falls linearly; the check applies once more than
# 100 nodes came from aliases and more than 1,000 were decoded.
_RATIO_LOW, _RATIO_HIGH = 400_000, 4_000_000


def _allowed_alias_ratio(decoded: int) -> float:
    if decoded <= _RATIO_LOW:
        return 0.99
    if decoded >= _RATIO_HIGH:
        return 0.10
    return 0.99 - 0.89 * (decoded - _RATIO_LOW) / (_RATIO_HIGH - _RATIO_LOW)


def _where(event: yaml.Event) -> str:
    mark = event.start_mark
    return f"line {mark.line + 1}" if mark is not None else "somewhere"


def _scan(text: str | bytes, limits: YamlLimits) -> None:
    """Raise InputError if the document stream nests too deep or aliases too much."""
    # Per anchor: (nodes the anchored node expands to, its height).
    anchors: dict[str, tuple[int, int]] = {}
    # Open collections: (anchor, nodes decoded before it, its depth, deepest level below it).
    open_: list[list[Any]] = []
    decoded = 0
    aliased = 0
    depth = 0

    def check_ratio(event: yaml.Event) -> None:
        if aliased > 100 and decoded > 1000 and aliased / decoded > _allowed_alias_ratio(decoded):
            raise InputError(f"{_where(event)}: the document contains excessive aliasing")

    def reach(level: int, event: yaml.Event) -> None:
        if level > limits.max_depth:
            raise InputError(
                f"{_where(event)}: the document nests deeper than {limits.max_depth} levels"
            )
        if open_ and level > open_[-1][3]:
            open_[-1][3] = level

    try:
        for event in yaml.parse(text, Loader=_Loader):
            if isinstance(event, yaml.AliasEvent):
                size, height = anchors.get(str(event.anchor), (1, 0))
                decoded += size
                aliased += size
                reach(depth + height, event)
                check_ratio(event)
            elif isinstance(event, yaml.ScalarEvent):
                decoded += 1
                if event.anchor is not None:
                    anchors[str(event.anchor)] = (1, 0)
            elif isinstance(event, yaml.CollectionStartEvent):
                decoded += 1
                depth += 1
                reach(depth, event)
                open_.append([event.anchor, decoded - 1, depth, depth])
            elif isinstance(event, yaml.CollectionEndEvent):
                anchor, before, start, deepest = open_.pop()
                if anchor is not None:
                    anchors[str(anchor)] = (decoded - before, deepest - start + 1)
                if open_ and deepest > open_[-1][3]:
                    open_[-1][3] = deepest
                depth -= 1
            elif isinstance(event, yaml.DocumentEndEvent):
                anchors.clear()  # anchors are local to a document
    except yaml.YAMLError as exc:
        if "nesting depth" in str(getattr(exc, "problem", "")):  # libyaml's own bound
            bound = min(limits.max_depth, _LIBYAML_MAX_DEPTH)
            raise InputError(f"the document nests deeper than {bound} levels") from None
        raise InputError(_yaml_message(exc)) from None


def _yaml_message(exc: yaml.YAMLError) -> str:
    """PyYAML's multi-line message as one line."""
    mark = getattr(exc, "problem_mark", None)
    problem = getattr(exc, "problem", None) or str(exc)
    where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark is not None else ""
    return f"not valid YAML or JSON: {where}{' '.join(str(problem).split())}"


def _json_document(text: str | bytes, limits: YamlLimits) -> list[Any] | None:
    """A text that is one JSON document, parsed by orjson (a 5,000-node dump: ~0.1 s instead of
    ~5 s through the YAML scanner and loader); None when it is not JSON, for the YAML path."""
    raw = text.encode() if isinstance(text, str) else text
    if raw.lstrip()[:1] not in (b"{", b"["):
        return None
    try:
        value = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return None  # YAML flow style, or more than one document: the YAML path decides
    if nesting_depth_exceeds(value, limits.max_depth, encoded=raw):
        raise InputError(f"the document nests deeper than {limits.max_depth} levels")
    return [value]


def load_all(text: str | bytes, *, limits: YamlLimits = YamlLimits()) -> list[Any]:
    """Every document of a YAML (or JSON) stream; raises InputError."""
    as_json = _json_document(text, limits)
    if as_json is not None:
        return as_json
    _scan(text, limits)
    try:
        return list(yaml.load_all(text, Loader=_Loader))
    except yaml.YAMLError as exc:
        raise InputError(_yaml_message(exc)) from None


def load_one(text: str | bytes, *, limits: YamlLimits = YamlLimits()) -> Any:
    """The single document of a YAML (or JSON) text (None when empty); raises InputError."""
    docs = load_all(text, limits=limits)
    if len(docs) > 1:
        raise InputError(f"expected one document, found {len(docs)}")
    return docs[0] if docs else None


def nesting_depth_exceeds(value: Any, limit: int, *, encoded: bytes | None = None) -> bool:
    """Whether decoded JSON nests deeper than `limit` (objects and arrays count one level each).

    Iterative, so it is safe on any input orjson accepts (1,024 levels), before anything
    recursive touches it. With `encoded` (the value's JSON), a value with no more opening
    brackets than `limit` is answered without the walk: nearly every Kubernetes object."""
    if encoded is not None and encoded.count(b"{") + encoded.count(b"[") <= limit:
        return False
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        node, level = stack.pop()
        if isinstance(node, dict):
            children: Iterator[Any] = iter(node.values())
        elif isinstance(node, list):
            children = iter(node)
        else:
            continue
        if level > limit:
            return True
        for child in children:
            if isinstance(child, dict | list):
                stack.append((child, level + 1))
    return False
