"""The one error raised when a Kubernetes object cannot be understood."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, ParamSpec, TypeVar


class ObjectError(ValueError):
    """A Kubernetes object is malformed; `field` is the JSON path of the offending value."""

    def __init__(self, *, kind: str, name: str, field: str, reason: str) -> None:
        self.kind = kind
        self.name = name
        self.field = field
        self.reason = reason
        super().__init__(f"{kind} {name}: {self.where}")

    @property
    def where(self) -> str:
        """`field: reason`, or the reason alone when no single field is to blame."""
        return f"{self.field}: {self.reason}" if self.field else self.reason


P = ParamSpec("P")
R = TypeVar("R")


def reports_malformed(kind: str) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """A parser's safety net: a shape it does not check field by field (a number where a list
    belongs, ...) becomes an ObjectError naming the object, never a TypeError that would stop
    an informer or `berth simulate`. The precise field paths come from the parser itself."""

    def wrap(parse: Callable[P, R]) -> Callable[P, R]:
        @functools.wraps(parse)
        def checked(*args: P.args, **kwargs: P.kwargs) -> R:
            try:
                return parse(*args, **kwargs)
            except ObjectError:
                raise
            except (TypeError, AttributeError, ValueError, KeyError, IndexError) as exc:
                raw = args[0] if args else None
                meta = raw.get("metadata") if isinstance(raw, dict) else None
                name = meta.get("name") if isinstance(meta, dict) else None
                namespace = meta.get("namespace") if isinstance(meta, dict) else None
                shown = f"{namespace}/{name}" if isinstance(namespace, str) and namespace else name
                raise ObjectError(
                    kind=kind,
                    name=str(shown or "?"),
                    field="",
                    reason=f"malformed object ({type(exc).__name__}: {exc})",
                ) from exc

        return checked

    return wrap


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
