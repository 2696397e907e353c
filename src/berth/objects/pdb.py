"""What preemption reads of a PodDisruptionBudget (policy/v1): its selector and budget."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from berth.objects.errors import ObjectError
from berth.objects.selectors import LabelSelector, parse_label_selector


@dataclass(frozen=True, slots=True)
class PDB:
    namespace: str
    selector: LabelSelector
    disruptions_allowed: int
    disrupted_pods: frozenset[str]


def parse_pdb(raw: dict[str, Any]) -> PDB | None:
    """A PDB, or None for one whose selector matches nothing (nil, empty or invalid)."""
    meta, spec, status = (_dict(raw.get(part)) for part in ("metadata", "spec", "status"))
    name = str(meta.get("name") or "")
    try:
        selector = parse_label_selector(
            spec.get("selector"), where="spec.selector", kind="PodDisruptionBudget", name=name
        )
    except ObjectError:
        return None  # upstream: an invalid selector does not match the pod
    if selector.matches_nothing or selector.is_everything:
        return None  # policy/v1: a nil or empty selector matches no pods
    allowed = status.get("disruptionsAllowed")
    disrupted = status.get("disruptedPods")
    return PDB(
        namespace=str(meta.get("namespace") or "default"),
        selector=selector,
        disruptions_allowed=allowed if isinstance(allowed, int) else 0,
        disrupted_pods=frozenset(disrupted) if isinstance(disrupted, dict) else frozenset(),
    )


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}
