"""The one error raised when a Kubernetes object cannot be understood."""

from __future__ import annotations


class ObjectError(ValueError):
    """A Kubernetes object is malformed; `field` is the JSON path of the offending value."""

    def __init__(self, *, kind: str, name: str, field: str, reason: str) -> None:
        self.kind = kind
        self.name = name
        self.field = field
        self.reason = reason
        super().__init__(f"{kind} {name}: {field}: {reason}")
