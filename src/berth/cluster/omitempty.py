"""The fields Go's JSON encoder leaves out of a written object. kube-apiserver decodes every
write into its Go type and encodes it again, so a field tagged `omitempty` that holds its zero
value is not in what it stores and serves: `taints: []`, `labels: {}`, `hostPort: 0` and a
pointer field sent as null read back absent. The tags come from proto_types.json (the Go
types' struct tags) and the rule is protobuf.py's `omitted`, the one its protobuf bodies get."""

from __future__ import annotations

import functools
from typing import Any

from berth.cluster.protobuf import go_types, omitted

JSON = dict[str, Any]
Field = tuple[str, str]  # (kind, flags) as in proto_types.json
_DROP: Any = object()  # a field left out


@functools.cache
def _fields(name: str) -> dict[str, Field] | None:
    """Struct `name`'s fields by JSON name, an inlined embedded struct's among them."""
    spec = go_types().get(name)
    if spec is None:
        return None
    out: dict[str, Field] = {}
    for json_name, kind, flags in spec.values():
        if "i" in flags and kind.startswith("msg:"):
            out.update(_fields(kind[4:]) or {})
        elif json_name and json_name != "-":
            out[json_name] = (kind, flags)
    return out


def _struct(name: str, obj: JSON) -> JSON:
    fields = _fields(name)
    if fields is None:
        return obj
    out: JSON | None = None
    for key, value in obj.items():
        field = fields.get(key)
        if field is None:
            continue
        kind, flags = field
        new = value if value is None else _value(kind, value)
        if omitted(kind, flags, new):
            new = _DROP
        if new is not value:
            if out is None:
                out = dict(obj)  # copied only when something changes: parts may be shared
            if new is _DROP:
                del out[key]
            else:
                out[key] = new
    return obj if out is None else out


def _value(kind: str, value: Any) -> Any:
    if kind.startswith("msg:"):
        return _struct(kind[4:], value) if type(value) is dict else value
    if kind.startswith("[]msg:") and type(value) is list:
        items = [_struct(kind[6:], v) if type(v) is dict else v for v in value]
        return value if all(a is b for a, b in zip(items, value, strict=True)) else items
    if kind.startswith("map:msg:") and type(value) is dict:
        entries = {k: _struct(kind[8:], v) if type(v) is dict else v for k, v in value.items()}
        return value if all(entries[k] is v for k, v in value.items()) else entries
    return value


def _go_package(api_version: str) -> str:
    """`apps/v1` -> apps/v1, `v1` -> core/v1, `rbac.authorization.k8s.io/v1` -> rbac/v1."""
    group, _, version = api_version.rpartition("/")
    return f"{group.split('.', 1)[0] or 'core'}/{version}"


def omit_empty(*, api_version: str, kind: str, obj: JSON) -> JSON:
    """`obj` as Go's encoder would give it back (`obj` itself when nothing is left out; else a
    copy of the parts that change, never a change in place)."""
    return _struct(f"{_go_package(api_version)}.{kind}", obj)


__all__ = ["omit_empty"]
