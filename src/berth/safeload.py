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

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import orjson
import yaml

try:
    from yaml import CSafeLoader as _SafeLoader
except ImportError:  # pragma: no cover - depends on how PyYAML was built
    from yaml import SafeLoader as _SafeLoader  # type: ignore[assignment]


class _Loader(_SafeLoader):
    """PyYAML's safe loader, reading scalars and keys as sigs.k8s.io/yaml (go-yaml v2, then
    JSON) reads them, so a file means to Berth what it means to kubectl and kube-apiserver:
    an unquoted timestamp stays its text (PyYAML builds a date, which no string field takes),
    `y`/`Y`/`n`/`N` are booleans as the other YAML 1.1 words are, `!!binary` gives the decoded
    text, and a key that is not a string becomes the text JSON would need (`true`, `1`)."""


def _scalar_text(loader: _Loader, node: yaml.Node) -> Any:
    return loader.construct_scalar(node)  # type: ignore[arg-type]


_TRUE = ("y", "Y", "yes", "Yes", "YES", "true", "True", "TRUE", "on", "On", "ON")
_FALSE = ("n", "N", "no", "No", "NO", "false", "False", "FALSE", "off", "Off", "OFF")
_GO_BOOLS = {**dict.fromkeys(_TRUE, True), **dict.fromkeys(_FALSE, False)}


def _go_bool(loader: _Loader, node: yaml.Node) -> bool:
    return _GO_BOOLS[str(loader.construct_scalar(node))]  # type: ignore[arg-type]


def _binary_text(loader: _Loader, node: yaml.Node) -> str:
    data: bytes = loader.construct_yaml_binary(node)  # type: ignore[arg-type]
    return data.decode("utf-8", "replace")  # JSON has only text; Go's encoder replaces too


def _key_text(key: Any, mark: yaml.Mark | None) -> str:
    """sigs.k8s.io/yaml's convertToJSONableObject for a key that is not a string."""
    if isinstance(key, str):
        return key
    if isinstance(key, bool):
        return "true" if key else "false"
    if isinstance(key, int):
        return str(key)
    if isinstance(key, float):
        if key != key:
            return ".nan"
        if key in (float("inf"), float("-inf")):
            return ".inf" if key > 0 else "-.inf"
        return f"{key:g}"
    where = f"line {mark.line + 1}: " if mark is not None else ""
    raise InputError(f"not valid YAML or JSON: {where}unsupported map key {key!r}")


def _go_mapping(loader: _Loader, node: yaml.MappingNode) -> Iterator[dict[str, Any]]:
    # Keys are made text before they meet in a dict: Python's 1 and True are one key, Go's
    # are two ("1" and "true").
    data: dict[str, Any] = {}
    yield data
    loader.flatten_mapping(node)  # merge keys (<<)
    construct = loader.construct_object
    for key_node, value_node in node.value:
        key = construct(key_node)
        if type(key) is not str:
            key = _key_text(key, key_node.start_mark)
        data[key] = construct(value_node)


_Loader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:bool"]
    for first, resolvers in _SafeLoader.yaml_implicit_resolvers.items()
}
_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:bool", re.compile("^(?:" + "|".join(_GO_BOOLS) + ")$"), list("yYnNtTfFoO")
)
_Loader.add_constructor("tag:yaml.org,2002:bool", _go_bool)
_Loader.add_constructor("tag:yaml.org,2002:timestamp", _scalar_text)
_Loader.add_constructor("tag:yaml.org,2002:binary", _binary_text)
_Loader.add_constructor("tag:yaml.org,2002:map", _go_mapping)

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
