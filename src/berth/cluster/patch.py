"""The three patch formats of PATCH requests: JSON merge patch (RFC 7386), strategic merge patch
and JSON patch (RFC 6902).

Merge patches build new dicts and never mutate their inputs (stored objects are shared). The
strategic merge patch knows the merge keys of the lists kubectl's commands touch (containers by
name, conditions by type, ...) and its directives (`$patch`, `$setElementOrder`, `$retainKeys`,
`$deleteFromPrimitiveList`); lists without a strategy upstream (taints, tolerations) are replaced.
"""

from __future__ import annotations

from typing import Any

import orjson

from berth.cluster.errors import ApiError, bad_request
from berth.cluster.limits import Limits

JSON = dict[str, Any]

# Field name → merge key, for lists with patchStrategy "merge" upstream.
MERGE_KEYS: dict[str, str] = {
    "containers": "name",
    "initContainers": "name",
    "ephemeralContainers": "name",
    "env": "name",
    "volumes": "name",
    "volumeMounts": "mountPath",
    "volumeDevices": "devicePath",
    "imagePullSecrets": "name",
    "hostAliases": "ip",
    "ports": "containerPort",
    "conditions": "type",
    "addresses": "type",
    "ownerReferences": "uid",
    "resourceClaims": "name",
    "reservedFor": "uid",  # ResourceClaim status.reservedFor
    "topologySpreadConstraints": "topologyKey",
}
# Primitive lists merged as sets upstream.
MERGE_PRIMITIVE = frozenset({"finalizers"})


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386 JSON merge patch; returns a new value."""
    if not isinstance(patch, dict):
        return patch
    out = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            out.pop(key, None)
        elif isinstance(value, dict):
            out[key] = merge_patch(out.get(key), value)
        else:
            out[key] = value
    return out


def strategic_merge_patch(target: Any, patch: Any) -> Any:
    """Strategic merge patch with upstream's directives for the lists Berth knows."""
    if not isinstance(patch, dict):
        return patch
    directive = patch.get("$patch")
    if directive == "replace":
        return {k: v for k, v in patch.items() if k != "$patch"}
    if directive == "delete":
        return None
    out = dict(target) if isinstance(target, dict) else {}
    retain = patch.get("$retainKeys")
    for key, value in patch.items():
        if key.startswith("$setElementOrder/") or key in ("$retainKeys", "$patch"):
            continue
        if key.startswith("$deleteFromPrimitiveList/"):
            field = key.split("/", 1)[1]
            if isinstance(out.get(field), list) and isinstance(value, list):
                out[field] = [x for x in out[field] if x not in value]
            continue
        if value is None:
            out.pop(key, None)
        elif isinstance(value, dict):
            merged = strategic_merge_patch(out.get(key), value)
            if merged is None:
                out.pop(key, None)
            else:
                out[key] = merged
        elif isinstance(value, list) and key in MERGE_KEYS:
            out[key] = _merge_list(out.get(key), value, MERGE_KEYS[key])
        elif isinstance(value, list) and key in MERGE_PRIMITIVE:
            base = list(out.get(key) or [])
            out[key] = base + [x for x in value if x not in base]
        else:
            out[key] = value
    if isinstance(retain, list):
        out = {k: v for k, v in out.items() if k in retain}
    return out


def _merge_list(target: Any, patch: list[Any], key: str) -> list[Any]:
    base = list(target) if isinstance(target, list) else []
    if any(isinstance(p, dict) and p.get("$patch") == "replace" for p in patch):
        return [p for p in patch if not (isinstance(p, dict) and "$patch" in p)]
    for item in patch:
        if not isinstance(item, dict) or key not in item:
            if not (isinstance(item, dict) and item.get("$patch")):
                base.append(item)
            continue
        index = next(
            (i for i, b in enumerate(base) if isinstance(b, dict) and b.get(key) == item[key]),
            None,
        )
        if item.get("$patch") == "delete":
            if index is not None:
                del base[index]
            continue
        if index is None:
            base.append({k: v for k, v in item.items() if k != "$patch"})
        else:
            base[index] = strategic_merge_patch(base[index], item)
    return base


def _pointer(path: str) -> list[str]:
    if path == "":
        return []
    if not path.startswith("/"):
        raise bad_request(f"json patch: invalid path {path!r}")
    return [p.replace("~1", "/").replace("~0", "~") for p in path[1:].split("/")]


def _parent(doc: Any, parts: list[str]) -> Any:
    cur = doc
    for p in parts[:-1]:
        if isinstance(cur, dict) and p in cur:
            cur = cur[p]
        elif isinstance(cur, list) and p.isdigit() and int(p) < len(cur):
            cur = cur[int(p)]
        else:
            raise ApiError(
                code=422,
                reason="Invalid",
                message=f"the server rejected our request due to an error in our request: "
                f"json patch: path /{'/'.join(parts)} does not exist",
            )
    return cur


def _get(doc: Any, parts: list[str]) -> Any:
    if not parts:
        return doc
    parent = _parent(doc, parts)
    last = parts[-1]
    if isinstance(parent, dict) and last in parent:
        return parent[last]
    if isinstance(parent, list) and last.isdigit() and int(last) < len(parent):
        return parent[int(last)]
    raise ApiError(
        code=422,
        reason="Invalid",
        message=f"json patch: path /{'/'.join(parts)} does not exist",
    )


def _remove(doc: Any, parts: list[str]) -> Any:
    value = _get(doc, parts)
    parent = _parent(doc, parts)
    if isinstance(parent, dict):
        del parent[parts[-1]]
    else:
        del parent[int(parts[-1])]
    return value


def _add(doc: Any, parts: list[str], value: Any, *, replace: bool) -> Any:
    if not parts:
        return value
    parent = _parent(doc, parts)
    last = parts[-1]
    if isinstance(parent, dict):
        if replace and last not in parent:
            _get(doc, parts)  # raises
        parent[last] = value
    elif isinstance(parent, list):
        if last == "-":
            parent.append(value)
        elif last.isdigit() and int(last) <= len(parent):
            if replace:
                _get(doc, parts)
                parent[int(last)] = value
            else:
                parent.insert(int(last), value)
        else:
            raise bad_request(f"json patch: invalid index {last!r}")
    else:
        raise bad_request("json patch: cannot add to a scalar")
    return doc


def _copy(value: Any) -> tuple[Any, int]:
    """A deep copy of a JSON value and its encoded size (what a copy adds to the document)."""
    try:
        data = orjson.dumps(value)
    except orjson.JSONEncodeError:
        raise bad_request("json patch: the value to copy nests too deep") from None
    return orjson.loads(data), len(data)


def json_patch(
    target: JSON,
    ops: Any,
    *,
    max_copy_bytes: int = Limits.json_patch_max_copy_bytes,
    max_operations: int = Limits.json_patch_max_operations,
) -> Any:
    """RFC 6902 JSON patch on a copy of `target`, with upstream's bounds: at most
    `max_operations` operations (413) and `max_copy_bytes` added by "copy" operations (422),
    so a small patch cannot build a huge object."""
    if not isinstance(ops, list):
        raise bad_request("json patch: the patch must be a list of operations")
    if len(ops) > max_operations:
        raise ApiError(
            code=413,
            reason="RequestEntityTooLarge",
            message="Request entity too large: The allowed maximum operations in a JSON patch "
            f"is {max_operations}, got {len(ops)}",
        )
    doc, _ = _copy(target)
    copied = 0
    for i, op in enumerate(ops):
        if not isinstance(op, dict) or "op" not in op or "path" not in op:
            raise bad_request(f"json patch: operation {i} is not an object with op and path")
        kind, parts = op["op"], _pointer(str(op["path"]))
        if kind == "add":
            doc = _add(doc, parts, op.get("value"), replace=False)
        elif kind == "remove":
            _remove(doc, parts)
        elif kind == "replace":
            doc = _add(doc, parts, op.get("value"), replace=True)
        elif kind == "move":
            value = _remove(doc, _pointer(str(op.get("from", ""))))
            doc = _add(doc, parts, value, replace=False)
        elif kind == "copy":
            value, size = _copy(_get(doc, _pointer(str(op.get("from", "")))))
            copied += size
            if copied > max_copy_bytes:
                # evanphx/json-patch's AccumulatedCopySizeError, answered 422 upstream
                raise ApiError(
                    code=422,
                    reason="Invalid",
                    message="Unable to complete the copy, the accumulated size increase of copy "
                    f"is {copied}, exceeding the limit {max_copy_bytes}",
                )
            doc = _add(doc, parts, value, replace=False)
        elif kind == "test":
            if _get(doc, parts) != op.get("value"):
                raise ApiError(
                    code=422,
                    reason="Invalid",
                    message=f"json patch: test operation for path {op['path']} failed",
                )
        else:
            raise bad_request(f"json patch: operation {i}: unknown op {str(kind)[:40]!r}")
    return doc
