"""PodDisruptionBudgets, parsed once per change, for preemption's victim choice."""

from __future__ import annotations

from berth.objects.pdb import PDB, parse_pdb
from berth.state.store import Obj, Store, object_key


class DisruptionBudgets(Store):
    kinds = ("PodDisruptionBudget",)

    def __init__(self) -> None:
        self._by_key: dict[str, PDB] = {}

    def upsert(self, obj: Obj) -> bool:
        pdb = parse_pdb(obj)
        if pdb is None:
            self._by_key.pop(object_key(obj), None)  # matches no pod: as good as absent
        else:
            self._by_key[object_key(obj)] = pdb
        return False  # no plugin registers PDB events

    def delete(self, obj: Obj) -> None:
        self._by_key.pop(object_key(obj), None)

    def all(self) -> list[PDB]:
        return list(self._by_key.values())
