"""Label selectors and node selector terms, compiled once and matched many times.

Semantics are apimachinery's `labels.Selector` (metav1.LabelSelector: matchLabels and
matchExpressions In/NotIn/Exists/DoesNotExist) and component-helpers' node selector terms (also
Gt/Lt on integers, and matchFields on `metadata.name`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from berth.objects.errors import ObjectError

LABEL_OPERATORS = frozenset({"In", "NotIn", "Exists", "DoesNotExist"})
NODE_OPERATORS = LABEL_OPERATORS | {"Gt", "Lt"}


@dataclass(frozen=True, slots=True)
class Requirement:
    """One `key op values` requirement."""

    key: str
    operator: str
    values: frozenset[str]

    def matches(self, labels: Mapping[str, str]) -> bool:
        op = self.operator
        if op == "In":
            return labels.get(self.key) in self.values
        if op == "NotIn":
            # apimachinery: a missing key satisfies NotIn.
            return labels.get(self.key) not in self.values
        if op == "Exists":
            return self.key in labels
        if op == "DoesNotExist":
            return self.key not in labels
        value = labels.get(self.key)
        have = go_int(value) if value is not None else None
        # A value that is not an integer matches no node (component-helpers parses it lazily).
        want = go_int(next(iter(self.values)))
        if have is None or want is None:
            return False
        return have > want if op == "Gt" else have < want


_INT64 = 2**63


def go_int(text: str) -> int | None:
    """The integer strconv.ParseInt(text, 10, 64) reads, or None where it fails (Python's int()
    also takes spaces and underscores)."""
    body = text[1:] if text[:1] in ("+", "-") else text
    if not body.isascii() or not body.isdigit():
        return None
    value = int(text)
    return value if -_INT64 <= value < _INT64 else None


@dataclass(frozen=True, slots=True)
class LabelSelector:
    """A compiled metav1.LabelSelector. `None` selectors are represented by `NOTHING`."""

    requirements: tuple[Requirement, ...]
    matches_nothing: bool = False

    def matches(self, labels: Mapping[str, str]) -> bool:
        if self.matches_nothing:
            return False
        return all(r.matches(labels) for r in self.requirements)

    @property
    def is_everything(self) -> bool:
        return not self.matches_nothing and not self.requirements


NOTHING = LabelSelector((), matches_nothing=True)
EVERYTHING = LabelSelector(())


def _requirement(
    raw: Any,
    *,
    operators: frozenset[str],
    where: str,
    kind: str,
    name: str,
    lazy_integers: bool = False,
) -> Requirement:
    if not isinstance(raw, dict):
        raise ObjectError(kind=kind, name=name, field=where, reason="must be an object")
    key = raw.get("key")
    op = raw.get("operator")
    values = raw.get("values") or []
    if not isinstance(key, str) or not key:
        raise ObjectError(kind=kind, name=name, field=f"{where}.key", reason="must be non-empty")
    if not isinstance(op, str) or op not in operators:
        raise ObjectError(
            kind=kind,
            name=name,
            field=f"{where}.operator",
            reason=f"unsupported operator {op!r}, must be one of {sorted(operators)}",
        )
    if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
        raise ObjectError(
            kind=kind, name=name, field=f"{where}.values", reason="must be a list of strings"
        )
    if op in ("In", "NotIn") and not values:
        raise ObjectError(
            kind=kind,
            name=name,
            field=f"{where}.values",
            reason="must be specified when `operator` is 'In' or 'NotIn'",
        )
    if op in ("Exists", "DoesNotExist") and values:
        raise ObjectError(
            kind=kind,
            name=name,
            field=f"{where}.values",
            reason="may not be specified when `operator` is 'Exists' or 'DoesNotExist'",
        )
    if op in ("Gt", "Lt"):
        if len(values) != 1:
            raise ObjectError(
                kind=kind,
                name=name,
                field=f"{where}.values",
                reason="must be specified single value when `operator` is 'Lt' or 'Gt'",
            )
        if not lazy_integers and go_int(values[0]) is None:
            raise ObjectError(
                kind=kind,
                name=name,
                field=f"{where}.values[0]",
                reason="must be an integer when `operator` is 'Lt' or 'Gt'",
            )
    return Requirement(key, op, frozenset(values))


def parse_label_selector(raw: Any, *, where: str, kind: str, name: str) -> LabelSelector:
    """Compile a metav1.LabelSelector; a missing (null) selector matches nothing, `{}` all."""
    if raw is None:
        return NOTHING
    if not isinstance(raw, dict):
        raise ObjectError(kind=kind, name=name, field=where, reason="must be an object")
    reqs: list[Requirement] = []
    match_labels = raw.get("matchLabels") or {}
    if not isinstance(match_labels, dict):
        raise ObjectError(
            kind=kind, name=name, field=f"{where}.matchLabels", reason="must be a map"
        )
    for key, value in match_labels.items():
        if not isinstance(value, str):
            raise ObjectError(
                kind=kind,
                name=name,
                field=f"{where}.matchLabels.{key}",
                reason="must be a string",
            )
        reqs.append(Requirement(key, "In", frozenset((value,))))
    exprs = raw.get("matchExpressions") or []
    if not isinstance(exprs, list):
        raise ObjectError(
            kind=kind, name=name, field=f"{where}.matchExpressions", reason="must be a list"
        )
    for i, expr in enumerate(exprs):
        reqs.append(
            _requirement(
                expr,
                operators=LABEL_OPERATORS,
                where=f"{where}.matchExpressions[{i}]",
                kind=kind,
                name=name,
            )
        )
    return LabelSelector(tuple(reqs))


@dataclass(frozen=True, slots=True)
class NodeSelectorTerm:
    """matchExpressions over labels and matchFields over `metadata.name`, ANDed."""

    expressions: tuple[Requirement, ...]
    fields: tuple[Requirement, ...]

    def matches(self, labels: Mapping[str, str], node_name: str) -> bool:
        # component-helpers: a term with neither expressions nor fields matches no node.
        if not self.expressions and not self.fields:
            return False
        if not all(r.matches(labels) for r in self.expressions):
            return False
        fields = {"metadata.name": node_name}
        return all(r.matches(fields) for r in self.fields)


def parse_node_selector_term(
    raw: Any, *, where: str, kind: str, name: str, lazy_integers: bool = False
) -> NodeSelectorTerm:
    """`lazy_integers`: a Gt/Lt value that is not an integer makes the term match nothing
    instead of refusing the object. API validation does not parse it (core/validation
    ValidateNodeSelectorRequirement); a pod's required node affinity meets the parse error
    only when matched, and ignores it (nodeaffinity.go RequiredNodeAffinity.Match)."""
    if not isinstance(raw, dict):
        raise ObjectError(kind=kind, name=name, field=where, reason="must be an object")
    for part in ("matchExpressions", "matchFields"):
        if not isinstance(raw.get(part) or [], list):
            raise ObjectError(
                kind=kind, name=name, field=f"{where}.{part}", reason="must be a list"
            )
    exprs = tuple(
        _requirement(
            e,
            operators=NODE_OPERATORS,
            where=f"{where}.matchExpressions[{i}]",
            kind=kind,
            name=name,
            lazy_integers=lazy_integers,
        )
        for i, e in enumerate(raw.get("matchExpressions") or [])
    )
    fields = []
    for i, f in enumerate(raw.get("matchFields") or []):
        req = _requirement(
            f,
            operators=NODE_OPERATORS,
            where=f"{where}.matchFields[{i}]",
            kind=kind,
            name=name,
        )
        if req.key != "metadata.name":
            raise ObjectError(
                kind=kind,
                name=name,
                field=f"{where}.matchFields[{i}].key",
                reason=f"not a valid field selector key: {req.key!r}",
            )
        if req.operator not in ("In", "NotIn") or len(req.values) != 1:
            raise ObjectError(
                kind=kind,
                name=name,
                field=f"{where}.matchFields[{i}]",
                reason="metadata.name supports only In/NotIn with exactly one value",
            )
        fields.append(req)
    return NodeSelectorTerm(exprs, tuple(fields))
