"""Minimal OpenAPI v3 documents: enough for kubectl to see that the server validates fields.

kubectl create/apply first ask `/openapi/v3` whether a kind's PATCH accepts `fieldValidation`; if
it does, validation is left to the server (which Berth does, see validation.py), otherwise kubectl
insists on downloading full schemas. So each group-version document lists its paths with their
verbs, group-version-kind and query parameters, without component schemas.
"""

from __future__ import annotations

import hashlib
from typing import Any

from berth.cluster.resources import RESOURCES, ResourceType

JSON = dict[str, Any]

_PARAMS = ("dryRun", "fieldManager", "fieldValidation", "pretty")


def _gv_path(group: str, version: str) -> str:
    return f"apis/{group}/{version}" if group else f"api/{version}"


def _operation(rt: ResourceType, action: str) -> JSON:
    return {
        "operationId": f"{action}{rt.kind}",
        "x-kubernetes-action": action,
        "x-kubernetes-group-version-kind": {
            "group": rt.group,
            "version": rt.version,
            "kind": rt.kind,
        },
        "parameters": [{"name": p, "in": "query", "schema": {"type": "string"}} for p in _PARAMS],
        "responses": {"200": {"description": "OK"}},
    }


def _paths(rt: ResourceType) -> JSON:
    base = "/" + _gv_path(rt.group, rt.version)
    if rt.namespaced:
        base += "/namespaces/{namespace}"
    collection = f"{base}/{rt.plural}"
    return {
        collection: {"get": _operation(rt, "list"), "post": _operation(rt, "post")},
        collection + "/{name}": {
            "get": _operation(rt, "get"),
            "put": _operation(rt, "put"),
            "patch": _operation(rt, "patch"),
            "delete": _operation(rt, "delete"),
        },
    }


def group_versions() -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    for rt in RESOURCES:
        if (rt.group, rt.version) not in out:
            out.append((rt.group, rt.version))
    return out


def document(path: str) -> JSON | None:
    """The OpenAPI v3 document for `api/v1` or `apis/<group>/<version>`, or None."""
    for group, version in group_versions():
        if _gv_path(group, version) == path:
            paths: JSON = {}
            for rt in RESOURCES:
                if rt.group == group and rt.version == version and rt.plural != "bindings":
                    paths.update(_paths(rt))
            return {
                "openapi": "3.0.0",
                "info": {"title": "Kubernetes (Berth embedded cluster)", "version": "v1.37.0"},
                "paths": paths,
                "components": {"schemas": {}},
            }
    return None


def root() -> JSON:
    """The `/openapi/v3` index of group-version documents."""
    paths = {}
    for group, version in group_versions():
        p = _gv_path(group, version)
        digest = hashlib.sha256(p.encode()).hexdigest()[:16].upper()
        paths[p] = {"serverRelativeURL": f"/openapi/v3/{p}?hash={digest}"}
    return {"paths": paths}
