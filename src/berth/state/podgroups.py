"""PodGroups (scheduler-plugins' `scheduling.x-k8s.io/v1alpha1` CRD) and the pods of each group.

Gang scheduling (Coscheduling) counts a group's pods on every decision and orders the queue by
the group's creation time; both come from here. Membership counts every non-terminal pod that
carries the group label, whatever its scheduler (upstream's pod lister), as the feed reports it.
"""

from __future__ import annotations

from berth.state.store import Obj, Store, object_key


class PodGroupIndex(Store):
    kinds = ("PodGroup",)

    def __init__(self) -> None:
        self._groups: dict[str, Obj] = {}  # "namespace/name" -> the raw PodGroup
        self._members: dict[str, set[str]] = {}  # group key -> pod keys
        self._group_of: dict[str, str] = {}  # pod key -> group key

    # ----- PodGroup objects ---------------------------------------------------------------------
    def upsert(self, obj: Obj) -> bool:
        key = object_key(obj)
        old = self._groups.get(key)
        self._groups[key] = obj
        # Only a new group or a new spec can help its pods (status is the controller's count).
        return old is None or old.get("spec") != obj.get("spec")

    def delete(self, obj: Obj) -> None:
        self._groups.pop(object_key(obj), None)

    def get(self, key: str) -> Obj | None:
        """The PodGroup "namespace/name", if it exists."""
        return self._groups.get(key)

    # ----- members ------------------------------------------------------------------------------
    def join(self, pod_key: str, group: str) -> bool:
        """Record the pod's group ("namespace/name", "" for none); True if it newly joined one."""
        old = self._group_of.get(pod_key, "")
        if old == group:
            return False
        if old:
            self.leave(pod_key)
        if not group:
            return False
        self._group_of[pod_key] = group
        self._members.setdefault(group, set()).add(pod_key)
        return True

    def leave(self, pod_key: str) -> None:
        group = self._group_of.pop(pod_key, None)
        if group is None:
            return
        members = self._members.get(group)
        if members is not None:
            members.discard(pod_key)
            if not members:
                del self._members[group]

    def size(self, group: str) -> int:
        """The non-terminal pods labelled with the group "namespace/name"."""
        return len(self._members.get(group, ()))
