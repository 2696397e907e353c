"""Field sets over upstream's schemas: the part of structured-merge-diff server-side apply needs
(sigs.k8s.io/structured-merge-diff typed/ and fieldpath/), in Python.

Types come from the served OpenAPI v3 schemas (openapi.py), read as kube-apiserver's type
converter reads them: a list is associative by `x-kubernetes-list-map-keys` (or by its patch
merge key), a set by `x-kubernetes-list-type: set`, else atomic; a map or struct marked
`x-kubernetes-map-type: atomic` is one leaf. A path is a tuple of path elements spelled as in
FieldsV1 (`f:name`, `k:{"name":"c"}`, `v:"x"`, `i:0`); a set is a Python set of paths.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Iterable
from typing import Any

import orjson

from berth.cluster.openapi import v3_schemas

JSON = dict[str, Any]
Path = tuple[str, ...]
FieldSet = set[Path]


class Type:
    """One schema node: kind is scalar, struct, map, list or untyped (anything, a leaf)."""

    __slots__ = ("_defaults", "atomic", "elem", "fields", "keys", "kind", "list_type", "ref")

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self.atomic = False
        self.fields: dict[str, Type] = {}
        self.elem: Type | None = None
        self.list_type = "atomic"
        self.keys: tuple[str, ...] = ()
        self.ref: str | None = None  # a struct's definition name, resolved on first use
        self._defaults: JSON = {}

    def field(self, name: str) -> Type | None:
        if self.ref is not None:
            self._resolve()
        return self.fields.get(name)

    def _resolve(self) -> None:
        ref, self.ref = self.ref, None
        assert ref is not None
        definition = _definitions().get(ref) or {}
        for name, prop in (definition.get("properties") or {}).items():
            self.fields[name] = _compile(prop)
        self._defaults = {
            name: prop["default"]
            for name, prop in (definition.get("properties") or {}).items()
            if "default" in prop
        }

    def default(self, name: str) -> Any:
        if self.ref is not None:
            self._resolve()
        return self._defaults.get(name)


_SCALAR = Type("scalar")
_UNTYPED = Type("untyped")
# What structured-merge-diff deduces for an object without a schema (a custom resource here):
# maps field by field, everything else one leaf.
DEDUCED = Type("map")
DEDUCED.elem = DEDUCED


@functools.cache
def _definitions() -> dict[str, JSON]:
    defs: dict[str, JSON] = v3_schemas()
    return defs


@functools.cache
def _named(name: str) -> Type:
    definition = _definitions().get(name)
    if definition is None:
        return _UNTYPED
    if "properties" in definition:
        t = Type("struct")
        t.ref = name
        t.atomic = definition.get("x-kubernetes-map-type") == "atomic"
        return t
    return _compile(definition)


def _compile(prop: JSON) -> Type:
    if "$ref" in prop:
        return _named(prop["$ref"].rsplit("/", 1)[-1])
    if prop.get("allOf"):
        return _compile(prop["allOf"][0])
    kind = prop.get("type")
    if kind == "array":
        t = Type("list")
        t.elem = _compile(prop.get("items") or {})
        list_type = prop.get("x-kubernetes-list-type")
        keys = prop.get("x-kubernetes-list-map-keys")
        strategy = str(prop.get("x-kubernetes-patch-strategy") or "")
        if list_type == "map" and keys:
            t.list_type, t.keys = "map", tuple(keys)
        elif list_type == "set":
            t.list_type = "set"
        elif list_type is None and "merge" in strategy and prop.get("x-kubernetes-patch-merge-key"):
            t.list_type, t.keys = "map", (prop["x-kubernetes-patch-merge-key"],)
        return t
    if kind == "object":
        if "additionalProperties" in prop:
            t = Type("map")
            t.elem = _compile(prop["additionalProperties"])
            t.atomic = prop.get("x-kubernetes-map-type") == "atomic"
            return t
        return _UNTYPED
    if kind in ("string", "integer", "number", "boolean"):
        return _SCALAR
    return _UNTYPED


@functools.cache
def root(api_version: str, kind: str) -> Type | None:
    """The type of a served kind, or None (custom resources: no upstream schema)."""
    group, _, version = api_version.rpartition("/")
    for name, definition in _definitions().items():
        for gvk in definition.get("x-kubernetes-group-version-kind") or ():
            if (gvk.get("group"), gvk.get("version"), gvk.get("kind")) == (group, version, kind):
                return _named(name)
    return None


# --- path elements ------------------------------------------------------------------------


def _dumps(value: Any) -> str:
    return orjson.dumps(value).decode()


def item_element(t: Type, item: Any, index: int) -> str:
    """The path element of a list item: by its keys, its value, or its index (atomic)."""
    if t.list_type == "map" and isinstance(item, dict):
        elem = t.elem
        key = {}
        for k in sorted(t.keys):
            v = item.get(k)
            if v is None and elem is not None:
                v = elem.default(k)
            if v is not None:
                key[k] = v
        return "k:" + _dumps(key)
    if t.list_type == "set":
        return "v:" + _dumps(item)
    return f"i:{index}"


def _items(t: Type, value: Any) -> list[tuple[str, Any]]:
    return [(item_element(t, item, i), item) for i, item in enumerate(value or [])]


# --- toFieldSet ---------------------------------------------------------------------------


def fieldset(t: Type, value: Any, path: Path = ()) -> FieldSet:
    """The fields `value` sets (typed/tofieldset.go): leaves, list items, map entries, and
    struct fields that are null or empty maps."""
    out: FieldSet = set()
    _fieldset(t, value, path, out)
    return out


def _fieldset(t: Type, value: Any, path: Path, out: FieldSet) -> None:
    kind = t.kind
    if kind in ("scalar", "untyped") or t.atomic:
        out.add(path)
        return
    if kind == "list":
        if not isinstance(value, list):
            out.add(path)
            return
        if t.list_type == "atomic":
            out.add(path)
            return
        assert t.elem is not None
        for pe, item in _items(t, value):
            child = (*path, pe)
            _fieldset(t.elem, item, child, out)
            out.add(child)
        return
    if not isinstance(value, dict):
        out.add(path)
        return
    for key, item in value.items():
        sub = t.field(key) if kind == "struct" else t.elem
        child = (*path, f"f:{key}")
        if sub is None:
            out.add(child)
            continue
        _fieldset(sub, item, child, out)
        if item is None or (isinstance(item, dict) and not item) or kind == "map":
            out.add(child)


def undeclared(t: Type, value: Any, path: Path = ()) -> list[Path]:
    """The fields of `value` its schema does not declare (what makes structured-merge-diff's
    typed conversion fail: `field not declared in schema`), in order."""
    out: list[Path] = []
    if t.kind == "list" and isinstance(value, list) and t.elem is not None:
        for pe, item in _items(t, value):
            out += undeclared(t.elem, item, (*path, pe))
    elif t.kind == "struct" and isinstance(value, dict) and not t.atomic:
        for key, item in value.items():
            sub = t.field(key)
            if sub is None:
                out.append((*path, f"f:{key}"))
            else:
                out += undeclared(sub, item, (*path, f"f:{key}"))
    elif t.kind == "map" and isinstance(value, dict) and t.elem is not None and t is not DEDUCED:
        for key, item in value.items():
            out += undeclared(t.elem, item, (*path, f"f:{key}"))
    return out


# --- compare ------------------------------------------------------------------------------


def compare(t: Type, old: Any, new: Any, path: Path = ()) -> tuple[FieldSet, FieldSet, FieldSet]:
    """(added, modified, removed) from `old` to `new` (typed/compare.go)."""
    added: FieldSet = set()
    modified: FieldSet = set()
    removed: FieldSet = set()
    _compare(t, old, new, path, added, modified, removed)
    return added, modified, removed


_MISSING = object()


def _compare(
    t: Type,
    old: Any,
    new: Any,
    path: Path,
    added: FieldSet,
    modified: FieldSet,
    removed: FieldSet,
    item: bool = False,
) -> None:
    leaf = t.kind in ("scalar", "untyped") or t.atomic
    if t.kind == "list":
        leaf = (
            leaf or t.list_type == "atomic" or not isinstance(old if new is _MISSING else new, list)
        )
    elif t.kind in ("struct", "map"):
        leaf = leaf or not isinstance(old if new is _MISSING else new, dict)
    if leaf or (old is not _MISSING and new is not _MISSING and type(old) is not type(new)):
        if old is _MISSING:
            added.add(path)
        elif new is _MISSING:
            removed.add(path)
        elif old != new:
            modified.add(path)
        return
    if t.kind == "list":
        assert t.elem is not None
        olds = dict(_items(t, old if isinstance(old, list) else []))
        news = dict(_items(t, new if isinstance(new, list) else []))
        for pe in {**olds, **news}:
            _compare(
                t.elem,
                olds.get(pe, _MISSING),
                news.get(pe, _MISSING),
                (*path, pe),
                added,
                modified,
                removed,
                True,
            )
    else:
        o = old if isinstance(old, dict) else {}
        n = new if isinstance(new, dict) else {}
        for key in {**o, **n}:
            sub = (t.field(key) if t.kind == "struct" else t.elem) or _UNTYPED
            _compare(
                sub,
                o.get(key, _MISSING),
                n.get(key, _MISSING),
                (*path, f"f:{key}"),
                added,
                modified,
                removed,
            )
    # A struct field with fields, and a list, is no member of its own (upstream compares with
    # the zero object, in which non-pointer structs and lists already exist, as {} and null);
    # maps, list items and empty structs are.
    container = t.kind == "list" or (t.kind == "struct" and not item)
    if old is _MISSING:
        if not (container and new):
            added.add(path)
    elif new is _MISSING and not (container and old):
        removed.add(path)


def created(t: Type, value: Any) -> JSON:
    """The FieldsV1 of an object's creator: what `compare` from nothing adds, encoded, in one
    walk (the create path is the hot one: no sets, no sorting, leaves without a call)."""
    kind = t.kind
    if kind == "list":
        elem = t.elem
        if t.list_type == "atomic" or not isinstance(value, list) or elem is None:
            return {}
        out: JSON = {}
        for pe, item in _items(t, value):
            child = created(elem, item) if elem.kind in _NESTED and not elem.atomic else {}
            out[pe] = {".": {}, **child} if child else {}
        return out
    if not isinstance(value, dict) or t.atomic:
        return {}
    out = {}
    struct = kind == "struct"
    if struct:
        if t.ref is not None:
            t._resolve()
        fields = t.fields
    for key, item in value.items():
        sub = fields.get(key) if struct else t.elem
        if sub is None or item is None or sub.atomic or sub.kind not in _NESTED:
            out["f:" + key] = {}
        else:
            out["f:" + key] = created(sub, item)
    if out and not struct:
        out = {".": {}, **out}
    return out


_NESTED = ("struct", "map", "list")


# --- merge and removal --------------------------------------------------------------------


def merge(t: Type, live: Any, config: Any) -> Any:
    """`config` merged into `live` (typed/merge.go): structs and maps field by field, associative
    lists item by key (live's order, new items after), atomic values replaced."""
    if config is None or live is None:
        return config
    if t.kind in ("scalar", "untyped") or t.atomic:
        return config
    if t.kind == "list":
        if t.list_type == "atomic" or not isinstance(live, list) or not isinstance(config, list):
            return config
        assert t.elem is not None
        incoming = dict(_items(t, config))
        out = []
        seen = set()
        for pe, item in _items(t, live):
            seen.add(pe)
            out.append(merge(t.elem, item, incoming[pe]) if pe in incoming else item)
        out.extend(item for pe, item in _items(t, config) if pe not in seen)
        return out
    if not isinstance(live, dict) or not isinstance(config, dict):
        return config
    merged = dict(live)
    for key, item in config.items():
        sub = (t.field(key) if t.kind == "struct" else t.elem) or _UNTYPED
        merged[key] = merge(sub, live[key], item) if key in live else item
    return merged


def remove(t: Type, value: Any, paths: FieldSet, path: Path = ()) -> Any:
    """`value` without the members of `paths` (a removed list item or field goes whole)."""
    if not paths or value is None:
        return value
    if t.kind == "list" and isinstance(value, list) and t.list_type != "atomic":
        assert t.elem is not None
        out = []
        for pe, item in _items(t, value):
            child = (*path, pe)
            if child in paths:
                continue
            out.append(remove(t.elem, item, paths, child))
        return out
    if t.kind in ("struct", "map") and not t.atomic and isinstance(value, dict):
        out_map = {}
        for key, item in value.items():
            child = (*path, f"f:{key}")
            if child in paths:
                continue
            sub = (t.field(key) if t.kind == "struct" else t.elem) or _UNTYPED
            out_map[key] = remove(sub, item, paths, child)
        return out_map
    return value


# --- FieldsV1 -----------------------------------------------------------------------------


def encode(paths: Iterable[Path]) -> JSON:
    """A set as FieldsV1: nested objects, `.` marking a member that also has children."""
    tree: JSON = {}
    members: list[Path] = []
    for p in paths:
        node = tree
        for pe in p:
            node = node.setdefault(pe, {})
        members.append(p)
    for p in members:
        node = tree
        for pe in p:
            node = node[pe]
        if node:
            node["."] = {}
    return _sorted(tree)


def _sorted(node: JSON) -> JSON:
    return {k: _sorted(node[k]) for k in sorted(node)}


def decode(fields: Any, path: Path = ()) -> FieldSet:
    """A FieldsV1 object as a set."""
    out: FieldSet = set()
    if not isinstance(fields, dict):
        return out
    for key, child in fields.items():
        if key == ".":
            out.add(path)
            continue
        p = (*path, key)
        if not child:
            out.add(p)
        else:
            out |= decode(child, p)
    return out


def path_string(path: Path) -> str:
    """A path as structured-merge-diff prints it: `.spec.containers[name="c"].image`."""
    out = []
    for pe in path:
        kind, _, rest = pe.partition(":")
        if kind == "f":
            out.append("." + rest)
        elif kind == "k":
            key = json.loads(rest)
            out.append("[" + ",".join(f"{k}={_dumps(v)}" for k, v in key.items()) + "]")
        elif kind == "v":
            out.append(f"[={rest}]")
        else:
            out.append(f"[{rest}]")
    return "".join(out)
