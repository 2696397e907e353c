"""A simulated kubelet, as kwok does it: bound pods become Running and Ready shortly after binding.

It is cheap by design: a store listener notes pods that got a node, and one task starts all noted
pods in a batch every `interval` seconds (one status write per pod, no per-pod timers or tasks).
It does not run containers, pull images, probe, or ever finish a pod.
"""

from __future__ import annotations

import asyncio
import hashlib
import ipaddress
import time
from typing import Any

from berth.cluster.admission import now
from berth.cluster.nodes import node_ip
from berth.cluster.resources import NODES, PODS
from berth.cluster.store import Change, Store

JSON = dict[str, Any]


class Kubelet:
    """Starts bound pods on the nodes that exist, batching the status writes."""

    def __init__(self, *, store: Store, delay: float = 0.0, interval: float = 0.05) -> None:
        self.store = store
        self.delay = delay
        self.interval = interval
        self._pending: dict[tuple[str, str], tuple[float, str]] = {}
        self._next_ip: dict[str, int] = {}
        self._wake = asyncio.Event()
        store.add_listener(self._on_change)

    def _on_change(self, change: Change) -> None:
        if change.key != PODS.key or change.type == "DELETED":
            return
        pod = change.obj
        node = (pod.get("spec") or {}).get("nodeName")
        if not node or (pod.get("status") or {}).get("phase", "Pending") != "Pending":
            return
        old_node = ((change.old or {}).get("spec") or {}).get("nodeName")
        if change.type == "MODIFIED" and old_node == node:
            return
        meta = pod["metadata"]
        key = (meta["namespace"], meta["name"])
        self._pending[key] = (time.monotonic() + self.delay, meta["uid"])
        self._wake.set()

    async def run(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            self.start_due()
            if self._pending:
                self._wake.set()
            await asyncio.sleep(self.interval)

    def start_due(self) -> int:
        """Start every pending pod whose delay has passed; returns how many were started."""
        t = time.monotonic()
        due = [k for k, (when, _) in self._pending.items() if when <= t]
        started = 0
        for key in due:
            _, uid = self._pending.pop(key)
            pod = self.store.get(PODS, key[0], key[1])
            if pod is None or pod["metadata"]["uid"] != uid:
                continue
            node = self.store.get(NODES, "", pod["spec"]["nodeName"])
            if node is None or (pod.get("status") or {}).get("phase", "Pending") != "Pending":
                continue
            self.store.replace(PODS, self._running(pod, node), pod)
            started += 1
        return started

    def _pod_ip(self, node: JSON) -> str:
        name = node["metadata"]["name"]
        cidr = (node.get("spec") or {}).get("podCIDR") or "10.244.0.0/24"
        n = self._next_ip.get(name, 1) + 1
        net = ipaddress.ip_network(cidr, strict=False)
        if n >= net.num_addresses - 1:
            n = 2
        self._next_ip[name] = n
        return str(net.network_address + n)

    def _running(self, pod: JSON, node: JSON) -> JSON:
        stamp = now()
        pod_ip = self._pod_ip(node)
        host_ip = node_ip(node)
        status = dict(pod.get("status") or {})
        scheduled = next(
            (c for c in status.get("conditions") or [] if c.get("type") == "PodScheduled"),
            {"type": "PodScheduled", "status": "True", "lastTransitionTime": stamp},
        )
        conditions = [
            {"type": t, "status": "True", "lastTransitionTime": stamp}
            for t in ("PodReadyToStartContainers", "Initialized", "Ready", "ContainersReady")
        ]
        conditions.append(scheduled)
        uid = pod["metadata"]["uid"]
        statuses = []
        for c in pod["spec"].get("containers") or []:
            cid = hashlib.sha256(f"{uid}/{c['name']}".encode()).hexdigest()
            image = str(c.get("image", ""))
            statuses.append(
                {
                    "name": c["name"],
                    "image": image,
                    "imageID": f"{image}@sha256:{cid}",
                    "containerID": f"containerd://{cid}",
                    "ready": True,
                    "started": True,
                    "restartCount": 0,
                    "state": {"running": {"startedAt": stamp}},
                    "lastState": {},
                }
            )
        status.update(
            phase="Running",
            conditions=conditions,
            hostIP=host_ip,
            hostIPs=[{"ip": host_ip}],
            podIP=pod_ip,
            podIPs=[{"ip": pod_ip}],
            startTime=stamp,
            containerStatuses=statuses,
        )
        return {**pod, "status": status}
