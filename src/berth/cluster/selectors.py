"""Label and field selectors, parsed once per request into predicates over raw object dicts.

Label selectors follow apimachinery's grammar (`=`, `==`, `!=`, `in`, `notin`, `key`, `!key`,
`>`/`<`); field selectors follow upstream's fields package exactly (escapes, `=`, `==`, `!=`) over
the field labels each resource declares, and report unsupported labels as upstream does (400,
"field label not supported"). The authorizer reads field selectors with the same parser.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

from berth.cluster.errors import ApiError, bad_request

JSON = dict[str, Any]
Predicate = Callable[[JSON], bool]

_SPLIT = re.compile(r",(?![^()]*\))")
_SET_EXPR = re.compile(r"^\s*([^\s!=<>()]+)\s+(in|notin)\s*\((.*)\)\s*$")


def _always(_obj: JSON) -> bool:
    return True


def _labels(obj: JSON) -> dict[str, str]:
    labels = obj.get("metadata", {}).get("labels")
    return labels if labels else {}


def _clause(text: str) -> Callable[[dict[str, str]], bool]:
    text = text.strip()
    m = _SET_EXPR.match(text)
    if m:
        key, op, raw = m.group(1), m.group(2), m.group(3)
        values = frozenset(v.strip() for v in raw.split(",") if v.strip())
        if op == "in":
            return lambda labels: labels.get(key) in values
        return lambda labels: key not in labels or labels[key] not in values
    for op in ("!=", "==", "=", ">", "<"):
        if op in text:
            key, _, value = text.partition(op)
            key, value = key.strip(), value.strip()
            if not key:
                break
            if op == "!=":
                return lambda labels: labels.get(key) != value
            if op in ("==", "="):
                return lambda labels: labels.get(key) == value
            try:
                bound = int(value)
            except ValueError as exc:
                raise bad_request(
                    f'unable to parse requirement: for "{op}" operator, the value must be an '
                    f"integer: {value}"
                ) from exc
            if op == ">":
                return lambda labels: _int(labels.get(key)) > bound
            return lambda labels: _int(labels.get(key)) < bound
    if text.startswith("!"):
        key = text[1:].strip()
        _check_key(key)
        return lambda labels: key not in labels
    _check_key(text)
    return lambda labels: text in labels


def _int(value: str | None) -> float:
    if value is None:
        return float("nan")
    try:
        return int(value)
    except ValueError:
        return float("nan")


def _check_key(key: str) -> None:
    if not key or not re.fullmatch(r"([a-zA-Z0-9.\-]+/)?[A-Za-z0-9]([\w.\-]*[A-Za-z0-9])?", key):
        raise bad_request(f"unable to parse requirement: invalid label key {key!r}")


def parse_label_selector(text: str | None) -> Predicate:
    """A predicate over objects for a label selector string (empty or None matches everything)."""
    if not text or not text.strip():
        return _always
    clauses = [_clause(part) for part in _SPLIT.split(text) if part.strip()]

    def match(obj: JSON) -> bool:
        labels = _labels(obj)
        return all(c(labels) for c in clauses)

    return match


def label_selector_matches(
    selector: JSON | None, labels: Mapping[str, str], *, unknown_operator: bool = True
) -> bool:
    """A metav1.LabelSelector (matchLabels + matchExpressions) against `labels`.

    As upstream, a null selector matches nothing and an empty one matches everything. An
    expression with an operator it does not know is passed over (`unknown_operator` True, what
    the embedded API server's PDB matching has always done: it does not validate selectors) or
    fails the match (False: the placement verifier, which must not pass what it cannot read)."""
    if selector is None:
        return False
    for k, v in (selector.get("matchLabels") or {}).items():
        if labels.get(k) != v:
            return False
    for e in selector.get("matchExpressions") or []:
        key, op, values = e.get("key", ""), e.get("operator", ""), e.get("values") or []
        if op == "In":
            if labels.get(key) not in values:
                return False
        elif op == "NotIn":
            if key in labels and labels[key] in values:
                return False
        elif op == "Exists":
            if key not in labels:
                return False
        elif op == "DoesNotExist":
            if key in labels:
                return False
        elif not unknown_operator:
            return False
    return True


def label_selector_string(selector: JSON) -> str:
    """A LabelSelector as labels.Selector.String() prints it: requirements sorted by key."""
    reqs: list[tuple[str, str]] = []
    for k, v in (selector.get("matchLabels") or {}).items():
        reqs.append((k, f"{k}={v}"))
    for e in selector.get("matchExpressions") or []:
        key, op = str(e.get("key", "")), e.get("operator", "")
        values = ",".join(sorted(str(v) for v in e.get("values") or []))
        text = {
            "In": f"{key} in ({values})",
            "NotIn": f"{key} notin ({values})",
            "Exists": key,
            "DoesNotExist": f"!{key}",
        }.get(op, key)
        reqs.append((key, text))
    return ",".join(t for _, t in sorted(reqs, key=lambda r: r[0]))


def selector_from_label_selector(selector: JSON | None) -> Predicate:
    """A predicate over objects' labels for a structured `LabelSelector`
    (`label_selector_matches`)."""
    return lambda obj: label_selector_matches(selector, _labels(obj))


def field_value(obj: JSON, path: str) -> str:
    """The string form of a field as upstream's field-selector index sees it."""
    cur: Any = obj
    for part in path.split("."):
        if not isinstance(cur, dict):
            cur = None
            break
        cur = cur.get(part)
    if path == "source" and isinstance(cur, dict):
        return str(cur.get("component", ""))
    if cur is None:
        return "false" if path in ("spec.unschedulable", "spec.hostNetwork") else ""
    if isinstance(cur, bool):
        return "true" if cur else "false"
    return str(cur)


FieldTerm = tuple[str, str, str]  # field, operator ("=" or "!="), unescaped value


def _split_terms(text: str) -> list[str]:
    """upstream fields.splitTerms: commas split terms unless backslash-escaped."""
    terms, start, escaped = [], 0, False
    for i, c in enumerate(text):
        if escaped:
            escaped = False
        elif c == "\\":
            escaped = True
        elif c == ",":
            terms.append(text[start:i])
            start = i + 1
    terms.append(text[start:])
    return terms


def _unescape(value: str) -> str:
    """upstream fields.UnescapeValue: `\\`, `\\,` and `\\=` are escapes; bare `,`/`=` are errors."""
    if not any(c in value for c in "\\,="):
        return value
    out, escaped = [], False
    for c in value:
        if escaped:
            if c not in "\\,=":
                raise bad_request(f"invalid field selector: invalid escape sequence: \\{c}")
            out.append(c)
            escaped = False
        elif c == "\\":
            escaped = True
        elif c in ",=":
            # upstream prints the rune with %v, i.e. its code point
            raise bad_request(f"invalid field selector: unescaped character in value: {ord(c)}")
        else:
            out.append(c)
    if escaped:
        raise bad_request("invalid field selector: invalid escape sequence: \\")
    return "".join(out)


def parse_field_terms(text: str | None) -> list[FieldTerm]:
    """A field selector's terms exactly as upstream's fields.ParseSelector reads them (sorted,
    the first operator from the left splits a term, no whitespace trimming), so the authorizer
    and the list handler can never read one selector two ways; raises 400."""
    if not text:
        return []
    out: list[FieldTerm] = []
    for part in sorted(_split_terms(text)):
        if not part:
            continue
        for i in range(len(part)):
            op = next((o for o in ("!=", "==", "=") if part.startswith(o, i)), None)
            if op is not None:
                out.append((part[:i], "!=" if op == "!=" else "=", _unescape(part[i + len(op) :])))
                break
        else:
            raise bad_request(f"invalid selector: '{text}'; can't understand '{part}'")
    return out


def requires_exact_match(terms: list[FieldTerm], field: str) -> str | None:
    """upstream Selector.RequiresExactMatch: the value of the first `field=value` term."""
    return next((v for f, op, v in terms if f == field and op == "="), None)


def parse_field_selector(text: str | None, *, supported: tuple[str, ...], kind: str) -> Predicate:
    """A predicate for a field selector; unsupported field labels raise 400 as upstream."""
    terms = parse_field_terms(text)
    if not terms:
        return _always
    for path, _, _ in terms:
        if path not in ("metadata.name", "metadata.namespace") and path not in supported:
            raise ApiError(
                code=400,
                reason="BadRequest",
                message=f"field label not supported: {path}",
            )
    tests = [(path, op == "!=", value) for path, op, value in terms]

    def match(obj: JSON) -> bool:
        return all((field_value(obj, path) == value) != negate for path, negate, value in tests)

    return match


def combine(*predicates: Predicate) -> Predicate:
    """All predicates at once, skipping the trivial ones."""
    real = [p for p in predicates if p is not _always]
    if not real:
        return _always
    if len(real) == 1:
        return real[0]
    return lambda obj: all(p(obj) for p in real)


def is_trivial(predicate: Predicate) -> bool:
    return predicate is _always
