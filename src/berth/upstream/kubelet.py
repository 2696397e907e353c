"""A simulated kubelet for the real control plane's fake nodes, as KWOK does it: a pod bound to a
node becomes Running and Ready, and a pod being deleted from a node is finished (deleted with
grace period 0, as a kubelet does once its containers stopped). Without it a deleted bound pod
stays Terminating forever, so preemption victims and namespaces never go away.

It is one process, over the API only: a pod informer (bound pods), a node informer, a work queue
and a few workers. It does not run containers, probe, or ever finish a pod on its own.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from berth.cluster.kubelet import PodAddresses, running, runs_to_completion, succeeded
from berth.kube.client import Connection, quote_path, read_json, status_message
from berth.kube.informer import Informer, ObjectCache
from berth.upstream.controller import InformerController, QueuedKeys

log = logging.getLogger("berth.upstream.kubelet")
Obj = dict[str, Any]


class SimulatedKubelet(InformerController):
    def __init__(
        self, *, connection: Connection, workers: int = 8, job_seconds: float = 1.0
    ) -> None:
        self.connection = connection
        self.job_seconds = job_seconds
        self._started: dict[str, float] = {}  # pod uid -> when this kubelet started it
        keys = QueuedKeys()
        self.nodes = ObjectCache()
        core = connection.core
        self.pods = Informer(
            name="pods",
            call=core.list_pod_for_all_namespaces_without_preload_content,
            handler=keys,
            extra={"field_selector": "spec.nodeName!="},
        )
        self.node_informer = Informer(
            name="nodes", call=core.list_node_without_preload_content, handler=self.nodes
        )
        # a failed update is retried on the pod's next change
        super().__init__(
            informers=[self.node_informer, self.pods],
            watched=self.pods,
            keys=keys,
            workers=workers,
            log=log,
            what="pod update",
        )
        self.addresses = PodAddresses()
        self.started = 0
        self.finished = 0

    async def handle(self, pod: Obj) -> None:
        meta = pod["metadata"]
        path = quote_path("api", "v1", "namespaces", meta["namespace"], "pods", meta["name"])
        if meta.get("deletionTimestamp"):
            body = {"gracePeriodSeconds": 0, "preconditions": {"uid": meta["uid"]}}
            response = await self.connection.request("DELETE", path, body)
            answer = await read_json(response)
            if response.status in (200, 202, 404, 409):
                self.finished += response.status in (200, 202)
                return
            raise RuntimeError(f"delete: {response.status} {status_message(answer)}")
        phase = (pod.get("status") or {}).get("phase", "Pending")
        if phase == "Running" and runs_to_completion(pod):
            await self._complete(pod, path)
            return
        if phase != "Pending":
            return
        node = self.nodes.objects.get(pod["spec"]["nodeName"])
        if node is None:  # not seen yet (or never will be): look again in a second
            asyncio.get_running_loop().call_later(1.0, self.keys.on_add, pod)
            return
        body = running(pod, node, pod_ip=self.addresses.next(node))
        response = await self.connection.request("PUT", f"{path}/status", body)
        answer = await read_json(response)
        if response.status == 200:
            self.started += 1
            if runs_to_completion(pod):  # a Job's pod: it succeeds after job_seconds
                self._started[meta["uid"]] = time.monotonic()
                asyncio.get_running_loop().call_later(self.job_seconds, self.keys.on_add, pod)
        elif response.status not in (404, 409):  # gone, or changed: its next event comes
            raise RuntimeError(f"status: {response.status} {status_message(answer)}")

    async def _complete(self, pod: Obj, path: str) -> None:
        """A Job's pod that ran for job_seconds succeeds, as the embedded kubelet's do."""
        uid = pod["metadata"]["uid"]
        started = self._started.get(uid)
        if started is None:  # started before this kubelet: count from now
            self._started[uid] = started = time.monotonic()
        left = started + self.job_seconds - time.monotonic()
        if left > 0:
            asyncio.get_running_loop().call_later(left, self.keys.on_add, pod)
            return
        response = await self.connection.request("PUT", f"{path}/status", succeeded(pod))
        answer = await read_json(response)
        if response.status == 200:
            self._started.pop(uid, None)
        elif response.status not in (404, 409):
            raise RuntimeError(f"status: {response.status} {status_message(answer)}")
