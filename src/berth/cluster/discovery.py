"""Discovery documents: `/version`, `/api`, `/api/v1`, `/apis`, `/apis/<group>[/<version>]`,
legacy and aggregated (`apidiscovery.k8s.io/v2` APIGroupDiscoveryList for `/api` and `/apis`,
what client-go asks for first: every group, version and resource in one answer).
"""

from __future__ import annotations

from typing import Any

from berth.cluster.resources import RESOURCES, VERBS, ResourceType, groups

JSON = dict[str, Any]

KUBE_VERSION = "v1.37.0"


def version() -> JSON:
    return {
        "major": "1",
        "minor": "37",
        "emulationMajor": "1",
        "emulationMinor": "37",
        "minCompatibilityMajor": "1",
        "minCompatibilityMinor": "36",
        "gitVersion": KUBE_VERSION + "+berth",
        "gitCommit": "0000000000000000000000000000000000000000",
        "gitTreeState": "clean",
        "buildDate": "2026-01-01T00:00:00Z",
        "goVersion": "go1.25.0",
        "compiler": "gc",
        "platform": "linux/amd64",
    }


def api_versions(*, server_address: str) -> JSON:
    return {
        "kind": "APIVersions",
        "versions": ["v1"],
        "serverAddressByClientCIDRs": [
            {"clientCIDR": "0.0.0.0/0", "serverAddress": server_address}
        ],
    }


def _resource_entries(rt: ResourceType) -> list[JSON]:
    if rt.plural == "bindings":
        return [
            {
                "name": "bindings",
                "singularName": "binding",
                "namespaced": True,
                "kind": "Binding",
                "verbs": ["create"],
            }
        ]
    main: JSON = {
        "name": rt.plural,
        "singularName": rt.name_singular,
        "namespaced": rt.namespaced,
        "kind": rt.kind,
        "verbs": VERBS,
    }
    if rt.short_names:
        main["shortNames"] = list(rt.short_names)
    if rt.categories:
        main["categories"] = list(rt.categories)
    out = [main]
    for sub in rt.subresources:
        entry: JSON = {
            "name": f"{rt.plural}/{sub}",
            "singularName": "",
            "namespaced": rt.namespaced,
        }
        if sub == "binding":
            entry.update(kind="Binding", verbs=["create"])
        elif sub == "eviction":
            entry.update(kind="Eviction", verbs=["create"], group="policy", version="v1")
        elif sub == "scale":
            entry.update(kind="Scale", verbs=["get", "patch", "update"], group="autoscaling")
            entry["version"] = "v1"
        elif sub == "finalize":
            entry.update(kind=rt.kind, verbs=["update"])
        else:
            entry.update(kind=rt.kind, verbs=["get", "patch", "update"])
        out.append(entry)
    return out


def resource_list(group: str, version_: str) -> JSON | None:
    entries = [
        e
        for rt in RESOURCES
        if rt.group == group and rt.version == version_
        for e in _resource_entries(rt)
    ]
    if not entries:
        return None
    gv = f"{group}/{version_}" if group else version_
    return {"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": gv, "resources": entries}


def _group(group: str, version_: str) -> JSON:
    gv = {"groupVersion": f"{group}/{version_}", "version": version_}
    return {"name": group, "versions": [gv], "preferredVersion": gv}


def api_group(group: str) -> JSON | None:
    for g, v in groups():
        if g == group:
            return {"kind": "APIGroup", "apiVersion": "v1", **_group(g, v)}
    return None


def api_group_list() -> JSON:
    return {
        "kind": "APIGroupList",
        "apiVersion": "v1",
        "groups": [_group(g, v) for g, v in groups()],
    }


AGGREGATED = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList"


def wants_aggregated(accept: str) -> bool:
    return "as=APIGroupDiscoveryList" in accept and "v=v2" in accept


def _kind(group: str, version_: str, kind: str) -> JSON:
    return {"group": group, "version": version_, "kind": kind}


def _aggregated_resource(rt: ResourceType) -> JSON:
    legacy = _resource_entries(rt)
    main = legacy[0]
    out: JSON = {
        "resource": rt.plural,
        "responseKind": _kind(rt.group, rt.version, main["kind"]),
        "scope": "Namespaced" if rt.namespaced else "Cluster",
        "singularResource": main["singularName"],
        "verbs": main["verbs"],
    }
    for key in ("shortNames", "categories"):
        if key in main:
            out[key] = main[key]
    subresources = []
    for entry in legacy[1:]:
        subresources.append(
            {
                "subresource": entry["name"].split("/", 1)[1],
                "responseKind": _kind(
                    entry.get("group", rt.group), entry.get("version", rt.version), entry["kind"]
                ),
                "verbs": entry["verbs"],
            }
        )
    if subresources:
        out["subresources"] = subresources
    return out


def aggregated(*, core: bool) -> JSON:
    """The APIGroupDiscoveryList of `/api` (`core`) or of `/apis`."""
    items = []
    pairs = [("", "v1")] if core else groups()
    for group, version_ in pairs:
        resources = [
            _aggregated_resource(rt)
            for rt in RESOURCES
            if rt.group == group and rt.version == version_
        ]
        items.append(
            {
                "metadata": {"name": group, "creationTimestamp": None},
                "versions": [{"version": version_, "resources": resources, "freshness": "Current"}],
            }
        )
    return {
        "kind": "APIGroupDiscoveryList",
        "apiVersion": "apidiscovery.k8s.io/v2",
        "metadata": {},
        "items": items,
    }
