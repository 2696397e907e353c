"""EndpointSlices of Services (upstream pkg/controller/endpointslice): one slice per Service with
a selector, listing the pods it selects that have an IP, with their readiness, node and zone,
and the Service's ports resolved against the pods' named container ports.
"""

from __future__ import annotations

from typing import Any

from berth.cluster.controllers.base import Controller, Key, is_ready, owner_reference
from berth.cluster.errors import ApiError
from berth.cluster.resources import ENDPOINT_SLICES, NODES, PODS, SERVICES
from berth.cluster.store import Change

JSON = dict[str, Any]
SERVICE_NAME = "kubernetes.io/service-name"
MANAGED_BY = "endpointslice.kubernetes.io/managed-by"
MANAGER = "endpointslice-controller.k8s.io"
ZONE = "topology.kubernetes.io/zone"


def _matches(selector: JSON, pod: JSON | None) -> bool:
    if not selector or pod is None:
        return False
    labels = pod["metadata"].get("labels") or {}
    return all(labels.get(k) == v for k, v in selector.items())


def _selects(svc: JSON, pod: JSON | None) -> bool:
    return _matches((svc.get("spec") or {}).get("selector") or {}, pod)


def _target_port(port: JSON, pod: JSON) -> int | None:
    target = port.get("targetPort", port.get("port"))
    if isinstance(target, int):
        return target
    for c in (pod.get("spec") or {}).get("containers") or []:
        for p in c.get("ports") or []:
            if p.get("name") == target and p.get("protocol", "TCP") == port.get("protocol", "TCP"):
                return int(p["containerPort"])
    return None


class EndpointSliceController(Controller):
    name = "endpointslice-controller"
    rt = SERVICES
    watched = (PODS, ENDPOINT_SLICES)

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        # namespace -> Service name -> its selector (Services without one select nothing)
        self._selectors: dict[str, dict[str, JSON]] = {}

    def prime(self) -> None:
        for svc in self.store.items(SERVICES):
            selector = (svc.get("spec") or {}).get("selector")
            if isinstance(selector, dict) and selector:
                meta = svc["metadata"]
                self._selectors.setdefault(meta["namespace"], {})[meta["name"]] = selector
        super().prime()

    def keys(self, change: Change) -> list[Key]:
        ns = change.obj["metadata"].get("namespace", "")
        if change.key == PODS.key:
            selectors = self._selectors.get(ns)
            if not selectors:
                return []
            return [
                (ns, name)
                for name, selector in selectors.items()
                if _matches(selector, change.obj) or _matches(selector, change.old)
            ]
        if change.key == ENDPOINT_SLICES.key:
            return list(self.owner_key(change))
        name = change.obj["metadata"]["name"]
        selector = (change.obj.get("spec") or {}).get("selector")
        if change.type == "DELETED" or not isinstance(selector, dict) or not selector:
            self._selectors.get(ns, {}).pop(name, None)
        else:
            self._selectors.setdefault(ns, {})[name] = selector
        return list(self.own_key(change))

    def sync(self, svc: JSON) -> int:
        meta, spec = svc["metadata"], svc.get("spec") or {}
        ns = meta["namespace"]
        slices = [
            s
            for s in self.owned(ENDPOINT_SLICES, svc)
            if (s["metadata"].get("labels") or {}).get(MANAGED_BY) == MANAGER
        ]
        if not spec.get("selector") or meta.get("deletionTimestamp"):
            for s in slices:
                self.api.delete(ENDPOINT_SLICES, namespace=ns, name=s["metadata"]["name"])
            return len(slices)
        pods = [
            p
            for p in self.store.items(PODS, ns)
            if _selects(svc, p)
            and (p.get("status") or {}).get("podIP")
            and (p.get("status") or {}).get("phase") not in ("Succeeded", "Failed")
        ]
        pods.sort(key=lambda p: p["metadata"]["name"])
        endpoints = []
        ports: list[JSON] = []
        for port in spec.get("ports") or []:
            number = _target_port(port, pods[0]) if pods else None
            entry: JSON = {"name": port.get("name", ""), "protocol": port.get("protocol", "TCP")}
            if number is not None:
                entry["port"] = number
            if port.get("appProtocol"):
                entry["appProtocol"] = port["appProtocol"]
            ports.append(entry)
        for pod in pods:
            pmeta, pspec = pod["metadata"], pod.get("spec") or {}
            ready = is_ready(pod) and not pmeta.get("deletionTimestamp")
            endpoint: JSON = {
                "addresses": [pod["status"]["podIP"]],
                "conditions": {
                    "ready": ready,
                    "serving": is_ready(pod),
                    "terminating": bool(pmeta.get("deletionTimestamp")),
                },
                "targetRef": {
                    "kind": "Pod",
                    "namespace": ns,
                    "name": pmeta["name"],
                    "uid": pmeta["uid"],
                },
            }
            node_name = pspec.get("nodeName")
            if node_name:
                endpoint["nodeName"] = node_name
                node = self.store.get(NODES, "", node_name)
                zone = ((node or {}).get("metadata") or {}).get("labels", {}).get(ZONE)
                if zone:
                    endpoint["zone"] = zone
            if pspec.get("hostname") and pspec.get("subdomain") == meta["name"]:
                endpoint["hostname"] = pspec["hostname"]
            endpoints.append(endpoint)
        labels = {**(meta.get("labels") or {}), SERVICE_NAME: meta["name"], MANAGED_BY: MANAGER}
        if spec.get("clusterIP") == "None":
            labels["service.kubernetes.io/headless"] = ""
        body: JSON = {
            "apiVersion": "discovery.k8s.io/v1",
            "kind": "EndpointSlice",
            "addressType": "IPv4",
            "endpoints": endpoints,
            "ports": ports,
        }
        if not slices:
            body["metadata"] = {
                "generateName": f"{meta['name']}-",
                "namespace": ns,
                "labels": labels,
                "ownerReferences": [owner_reference(SERVICES, svc)],
            }
            try:
                self.api.create(ENDPOINT_SLICES, namespace=ns, body=body)
            except ApiError as err:
                self.event(
                    svc, reason="FailedToUpdateEndpointSlices", message=err.message, kind="Warning"
                )
            return 1
        current, *extra = slices
        for s in extra:
            self.api.delete(ENDPOINT_SLICES, namespace=ns, name=s["metadata"]["name"])
        if (
            current.get("endpoints") == endpoints
            and current.get("ports") == ports
            and current["metadata"].get("labels") == labels
        ):
            return len(extra)
        new = {**current, **body, "metadata": {**current["metadata"], "labels": labels}}
        self.store.replace(ENDPOINT_SLICES, new, current)
        return 1 + len(extra)
