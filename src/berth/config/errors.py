"""Configuration errors that name the field path and the problem, one line each."""

from __future__ import annotations

from pydantic import ValidationError


class ConfigError(Exception):
    """The configuration is invalid; `problems` are `field.path: reason` lines."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("invalid configuration:\n  " + "\n  ".join(problems))


def _path(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


def format_validation_error(exc: ValidationError, *, prefix: str = "") -> list[str]:
    """Pydantic errors as `path: message`, with Kubernetes-style wording where it differs.

    A model validator that finds several problems raises one ValueError with one
    `field: reason` per line (`several`); each becomes its own problem."""
    lines = []
    for err in exc.errors():
        loc = tuple(p for p in err["loc"] if not (isinstance(p, str) and p.startswith("function-")))
        path = _path(loc)
        full = f"{prefix}.{path}" if prefix and path else (prefix or path)
        msg = err["msg"]
        if err["type"] == "extra_forbidden":
            msg = "unknown field"
        elif err["type"] == "missing":
            msg = "Required value"
        elif msg.startswith("Value error, "):
            msg = msg[len("Value error, ") :]
        for one in msg.split("\n") if err["type"] == "value_error" else [msg]:
            lines.append(_placed(one, full=full, path=path, prefix=prefix, kind=err["type"]))
    return lines


def _placed(msg: str, *, full: str, path: str, prefix: str, kind: str) -> str:
    if kind == "value_error" and ": " in msg and not path:
        # model-level checks put the field name in the message ("field: reason").
        field, _, msg = msg.partition(": ")
        full = f"{prefix}.{field}" if prefix else field
    elif kind == "value_error" and ": " in msg and msg.split(": ")[0].isidentifier():
        field, _, rest = msg.partition(": ")
        full = f"{full}.{field}" if full else field
        msg = rest
    return f"{full or '<root>'}: {msg}"


def several(problems: list[str]) -> ValueError | None:
    """The ValueError a model validator raises for `problems` (None when there are none)."""
    return ValueError("\n".join(problems)) if problems else None
