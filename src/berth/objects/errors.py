"""The one error raised when a Kubernetes object cannot be understood."""

from __future__ import annotations

from typing import Any


class ObjectError(ValueError):
    """A Kubernetes object is malformed; `field` is the JSON path of the offending value."""

    def __init__(self, *, kind: str, name: str, field: str, reason: str) -> None:
        self.kind = kind
        self.name = name
        self.field = field
        self.reason = reason
        super().__init__(f"{kind} {name}: {field}: {reason}")


def go_quote(value: Any) -> str:
    """A value as the API server's field errors print it (Go's %q: `"x"`, `""` for none)."""
    import json

    if value is None:
        return '""'
    try:
        return json.dumps(value, ensure_ascii=False)
    except (TypeError, ValueError):
        return json.dumps(str(value), ensure_ascii=False)


def object_meta(raw: Any, *, kind: str) -> tuple[dict[str, Any], str]:
    """The metadata and name of a raw object, or the ObjectError every parser raises."""
    if not isinstance(raw, dict):
        raise ObjectError(kind=kind, name="?", field="", reason="must be an object")
    meta = raw.get("metadata")
    if not isinstance(meta, dict) or not isinstance(meta.get("name"), str) or not meta["name"]:
        raise ObjectError(kind=kind, name="?", field="metadata.name", reason="Required value")
    return meta, meta["name"]
