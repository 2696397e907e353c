"""A simulated kubelet, as kwok does it: bound pods become Running and Ready shortly after binding.

It is cheap by design: a store listener notes pods that got a node, and one task starts all noted
pods in a batch every `interval` seconds (one status write per pod, no per-pod timers or tasks).
It does not run containers, pull images or probe; the pods of a Job succeed after
`job_seconds`, every other pod runs until it is deleted.
"""

from __future__ import annotations

import asyncio
import ipaddress
import time
from typing import Any

from berth.cluster.admission import now
from berth.cluster.nodes import node_ip
from berth.cluster.reconcile import ObjectErrors
from berth.cluster.resources import NODES, PODS
from berth.cluster.store import Change, Store

JSON = dict[str, Any]


def _dotted(value: int) -> str:
    return f"{value >> 24 & 255}.{value >> 16 & 255}.{value >> 8 & 255}.{value & 255}"


class Kubelet:
    """Starts bound pods on the nodes that exist, batching the status writes."""

    def __init__(
        self,
        *,
        store: Store,
        delay: float = 0.0,
        interval: float = 0.05,
        job_seconds: float = 1.0,
    ) -> None:
        self.store = store
        self.delay = delay
        self.interval = interval
        self.job_seconds = job_seconds
        self._pending: dict[tuple[str, str], tuple[float, str]] = {}
        self._finishing: dict[tuple[str, str], tuple[float, str]] = {}
        self._addresses = PodAddresses()
        self._wake = asyncio.Event()
        self.errors = ObjectErrors("kubelet")
        store.add_listener(self._on_change)

    def _on_change(self, change: Change) -> None:
        if change.key != PODS.key or change.type == "DELETED":
            return
        pod = change.obj
        node = (pod.get("spec") or {}).get("nodeName")
        if not isinstance(node, str) or not node:
            return
        if (pod.get("status") or {}).get("phase", "Pending") != "Pending":
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
            self.finish_due()
            if self._pending or self._finishing:
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
            if pod is not None and pod["metadata"]["uid"] == uid:
                started += self.errors.run(pod, self._start)
        return started

    def _start(self, pod: JSON) -> int:
        node = self.store.get(NODES, "", pod["spec"]["nodeName"])
        if node is None or (pod.get("status") or {}).get("phase", "Pending") != "Pending":
            return 0
        started = self.store.replace(
            PODS, running(pod, node, pod_ip=self._addresses.next(node)), pod
        ).obj
        if runs_to_completion(started):
            meta = started["metadata"]
            due = time.monotonic() + self.job_seconds
            self._finishing[(meta["namespace"], meta["name"])] = (due, meta["uid"])
        return 1

    def finish_due(self) -> int:
        """Complete every running Job pod whose run time has passed; returns how many."""
        t = time.monotonic()
        due = [k for k, (when, _) in self._finishing.items() if when <= t]
        finished = 0
        for key in due:
            _, uid = self._finishing.pop(key)
            pod = self.store.get(PODS, key[0], key[1])
            if pod is not None and pod["metadata"]["uid"] == uid:
                finished += self.errors.run(pod, self._finish)
        return finished

    def _finish(self, pod: JSON) -> int:
        if (pod.get("status") or {}).get("phase") != "Running":
            return 0
        self.store.replace(PODS, succeeded(pod), pod)
        return 1


class PodAddresses:
    """Pod IPs handed out per node from its podCIDR, in turn (wrapping around)."""

    def __init__(self) -> None:
        self._next_ip: dict[str, int] = {}
        self._nets: dict[str, tuple[int, int, int]] = {}

    def next(self, node: JSON) -> str:
        name = node["metadata"]["name"]
        net = self._nets.get(name)
        if net is None:
            cidr = (node.get("spec") or {}).get("podCIDR") or "10.244.0.0/24"
            parsed = ipaddress.ip_network(cidr, strict=False)
            net = (int(parsed.network_address), parsed.num_addresses, parsed.version)
            self._nets[name] = net
        n = self._next_ip.get(name, 1) + 1
        if n >= net[1] - 1:
            n = 2
        self._next_ip[name] = n
        if net[2] == 6:
            return str(ipaddress.ip_address(net[0] + n))
        return _dotted(net[0] + n)


def running(pod: JSON, node: JSON, *, pod_ip: str) -> JSON:
    """`pod` as a kubelet reports it once its containers run on `node`: Running and Ready."""
    stamp = now()
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
    uid = pod["metadata"]["uid"].replace("-", "")
    statuses = []
    for i, c in enumerate(pod["spec"].get("containers") or []):
        cid = f"{uid}{i:032x}"
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


def runs_to_completion(pod: JSON) -> bool:
    """Whether the simulated kubelet completes `pod`: a pod a Job owns (KWOK's pod-complete
    stage); every other pod runs until it is deleted."""
    refs = pod["metadata"].get("ownerReferences") or []
    return any(isinstance(r, dict) and r.get("kind") == "Job" for r in refs)


def succeeded(pod: JSON) -> JSON:
    """`pod` as a kubelet reports it once its containers exited 0: Succeeded, not Ready."""
    stamp = now()
    status = dict(pod.get("status") or {})
    conditions = []
    for c in status.get("conditions") or []:
        if c.get("type") in ("Ready", "ContainersReady", "PodReadyToStartContainers"):
            c = {**c, "status": "False", "lastTransitionTime": stamp}
            if c["type"] != "PodReadyToStartContainers":
                c["reason"] = "PodCompleted"
        conditions.append(c)
    containers = []
    for cs in status.get("containerStatuses") or []:
        started = ((cs.get("state") or {}).get("running") or {}).get("startedAt", stamp)
        terminated = {
            "exitCode": 0,
            "reason": "Completed",
            "startedAt": started,
            "finishedAt": stamp,
            "containerID": cs.get("containerID"),
        }
        containers.append(
            {**cs, "ready": False, "started": False, "state": {"terminated": terminated}}
        )
    status.update(phase="Succeeded", conditions=conditions, containerStatuses=containers)
    return {**pod, "status": status}
