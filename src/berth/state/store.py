"""What every index of raw objects beside the node table offers the feed: its kinds, upsert and
delete.

The feed (`berth.feed`) hands each added, changed or deleted object to the store that lists its
kind, so a front never loads a store by hand and a new store (a new kind of object some plugin
reads) is fed everywhere once it is one of the engine's ports.
"""

from __future__ import annotations

import abc
from typing import Any, ClassVar

Obj = dict[str, Any]


def object_key(obj: Obj) -> str:
    """ "namespace/name" for a namespaced object, "name" otherwise."""
    meta = obj.get("metadata")
    if not isinstance(meta, dict):
        return "?"
    ns = meta.get("namespace")
    return f"{ns}/{meta.get('name')}" if ns else str(meta.get("name"))


class Store(abc.ABC):
    """An index of the objects of `kinds`, parsed once per change."""

    kinds: ClassVar[tuple[str, ...]]

    @abc.abstractmethod
    def upsert(self, obj: Obj) -> bool:
        """Add or replace `obj` (raises ObjectError if it is malformed); True when a decision
        can see the change (the feed then raises its cluster event)."""

    @abc.abstractmethod
    def delete(self, obj: Obj) -> None:
        """Forget `obj` (unknown objects are ignored)."""
