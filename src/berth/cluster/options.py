"""A write's options, as kube-apiserver reads them from the query: `dryRun`, `fieldValidation`,
`fieldManager` and `force`, validated as upstream validates Create/Update/Patch/DeleteOptions,
and the warnings the write collects for the `Warning` response header.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from berth.cluster import errors

_VALIDATION = ("", "Ignore", "Strict", "Warn")
_OPTIONS_KIND = {
    "create": "CreateOptions",
    "update": "UpdateOptions",
    "patch": "PatchOptions",
    "delete": "DeleteOptions",
    "deletecollection": "DeleteOptions",
}
FIELD_MANAGER_MAX = 128


@dataclass
class WriteOptions:
    """How one write is done. The defaults are a request without options: unknown fields are
    dropped with a warning (the server's default since 1.23; kubectl asks for Strict)."""

    field_validation: str = "Warn"
    dry_run: bool = False
    field_manager: str = ""
    force: bool = False
    user_agent: str = ""
    warnings: list[str] = field(default_factory=list)
    events_api: bool = False  # an Event written through events.k8s.io/v1 (strict validation)

    def unknown_fields(self, *, kind: str, api_version: str, paths: list[str]) -> None:
        """Apply the field validation to the unknown fields of a body (already dropped)."""
        if not paths:
            return
        if self.field_validation == "Strict":
            version = api_version.rsplit("/", 1)[-1]
            listed = ", ".join(f'unknown field "{p}"' for p in paths)
            raise errors.bad_request(
                f'{kind} in version "{version}" cannot be handled as a {kind}: strict decoding '
                f"error: {listed}"
            )
        if self.field_validation == "Warn":
            self.warnings.extend(f'unknown field "{p}"' for p in paths)

    @property
    def manager(self) -> str:
        """The field manager: the request's, else the client's User-Agent up to its first `/`
        (upstream managerOrUserAgent)."""
        if self.field_manager:
            return self.field_manager
        return (self.user_agent.split("/", 1)[0] or "unknown")[:FIELD_MANAGER_MAX]


def parse(query: Mapping[str, str], *, verb: str, user_agent: str = "") -> WriteOptions:
    """The options of a write from its query, or 422 as upstream's options validation."""
    if not query:  # most writes: no options at all
        return WriteOptions(user_agent=user_agent)
    getall = getattr(query, "getall", None)
    dry = list(getall("dryRun", [])) if getall is not None else []
    if not dry and query.get("dryRun") is not None:
        dry = [query["dryRun"]]
    validation = query.get("fieldValidation", "")
    manager = query.get("fieldManager", "")
    causes: list[tuple[str, str, str]] = []
    if len(manager) > FIELD_MANAGER_MAX:
        causes.append(
            (
                "FieldValueTooLong",
                "fieldManager",
                f"Too long: may not be more than {FIELD_MANAGER_MAX} bytes",
            )
        )
    if any(d != "All" for d in dry):
        rendered = "[" + ",".join(f'"{d}"' for d in dry) + "]"
        causes.append(
            (
                "FieldValueNotSupported",
                "dryRun",
                f'Unsupported value: {rendered}: supported values: "All"',
            )
        )
    if verb not in ("delete", "deletecollection") and validation not in _VALIDATION:
        supported = ", ".join(f'"{v}"' for v in _VALIDATION)
        causes.append(
            (
                "FieldValueNotSupported",
                "fieldValidation",
                f'Unsupported value: "{validation}": supported values: {supported}',
            )
        )
    force = _boolean(query.get("force"))
    if causes:
        raise errors.invalid(
            kind=_OPTIONS_KIND.get(verb, "CreateOptions"),
            group="meta.k8s.io",
            name="",
            causes=causes,
        )
    return WriteOptions(
        field_validation=validation or "Warn",
        dry_run=bool(dry),
        field_manager=manager,
        force=force,
        user_agent=user_agent,
    )


def _boolean(value: Any) -> bool:
    return str(value).lower() in ("true", "1") if value is not None else False


def warning_header(message: str) -> str:
    """A `Warning` header value as kube-apiserver writes it (RFC 7234 code 299, agent `-`)."""
    escaped = message.replace("\\", "\\\\").replace('"', '\\"')
    # a header carries printable ASCII only: anything else (a field named "\x1f") is escaped
    safe = "".join(c if " " <= c <= "~" else f"\\u{ord(c):04x}" for c in escaped)
    return f'299 - "{safe}"'
