"""Parsing a request path into what it addresses: a discovery document, a collection, an object
or a subresource. Kept apart from the handlers so the grammar of Kubernetes paths is in one place.
"""

from __future__ import annotations

from dataclasses import dataclass

from berth.cluster.errors import NoRoute, page_not_found
from berth.cluster.resources import BY_PATH, NAMESPACES, ResourceType, groups

_SERVED_GROUP_VERSIONS = frozenset({("", "v1"), *groups()})
# Subresources upstream serves through a kubelet or a proxy, which the embedded cluster has not:
# a request for one of an object that exists is a resource the server cannot find.
ELSEWHERE = frozenset({"log", "exec", "attach", "portforward", "proxy", "ephemeralcontainers"})


@dataclass(frozen=True, slots=True)
class Route:
    """A resource path: resource, namespace (None = all or cluster-scoped), name, subresource."""

    rt: ResourceType
    namespace: str | None
    name: str
    subresource: str
    served: bool = True  # False: a subresource served only with a kubelet (`pods/log`)


@dataclass(frozen=True, slots=True)
class Discovery:
    """A discovery path: kind is version, api, apis, group or resources."""

    kind: str
    group: str = ""
    version: str = ""


def parse(path: str) -> Route | Discovery:
    """Route or discovery document for `path`; raises 404 Status for anything else."""
    parts = [p for p in path.split("/") if p]
    if not parts:
        raise NoRoute(path)
    head = parts[0]
    if head == "version" and len(parts) == 1:
        return Discovery("version")
    if head == "api":
        if len(parts) == 1:
            return Discovery("api")
        if parts[1] != "v1":
            raise NoRoute(path)
        group, version, rest = "", "v1", parts[2:]
    elif head == "apis":
        if len(parts) == 1:
            return Discovery("apis")
        if len(parts) == 2:
            return Discovery("group", parts[1])
        group, version, rest = parts[1], parts[2], parts[3:]
    else:
        raise NoRoute(path)
    if (group, version) not in _SERVED_GROUP_VERSIONS:
        raise NoRoute(path)
    if not rest:
        return Discovery("resources", group, version)

    namespace: str | None = None
    scoped = len(rest) >= 3 and rest[0] == "namespaces" and rest[2] not in NAMESPACES.subresources
    if scoped and (group, version, rest[2]) in BY_PATH:
        namespace, rest = rest[1], rest[2:]
    rt = BY_PATH.get((group, version, rest[0]))
    if rt is None or len(rest) > 3:
        raise page_not_found(path)
    if namespace is not None and not rt.namespaced:
        raise page_not_found(path)
    name = rest[1] if len(rest) > 1 else ""
    sub = rest[2] if len(rest) > 2 else ""
    if sub and sub not in rt.subresources:
        if sub in ELSEWHERE and name:
            return Route(rt, namespace, name, sub, served=False)
        raise page_not_found(path)
    return Route(rt, namespace, name, sub)
