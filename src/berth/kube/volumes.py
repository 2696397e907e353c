"""VolumeBinding's PreBind against the API: write the claim bindings, then wait for them.

upstream binder.go BindPodVolumes: each PV chosen for a claim is updated with its `claimRef` (a
PUT carrying the PV's resourceVersion, so a PV taken meanwhile fails with 409 instead of being
stolen), each claim to provision gets the `volume.kubernetes.io/selected-node` annotation (a
merge patch of that one annotation); then the informer caches are polled until the PV controller
and the provisioner report every claim bound (`spec.volumeName` and `pv.kubernetes.io/
bind-completed`), the bind timeout passes, or something undoes the work (claimRef reset,
selected-node removed: the provisioner gave up). Transient API errors are retried.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
import numpy as np

from berth.kube.binder import BindPolicy, Retryable, retrying
from berth.kube.client import Connection, raw_body, read_json, status_message
from berth.objects.pod import PodInfo
from berth.objects.volumes import ANN_SELECTED_NODE
from berth.plugins.storagehelpers import pv_node_mask
from berth.state.cluster import ClusterState
from berth.state.volumes import PodVolumes, VolumeIndex

log = logging.getLogger("berth.volumes")


class ApiVolumeBinder:
    """The `volume-binder` service of `berth run` (see VolumeBinding.pre_bind)."""

    def __init__(
        self,
        *,
        connection: Connection,
        volumes: VolumeIndex,
        state: ClusterState,
        pod_exists: Callable[[str], bool],
        policy: BindPolicy | None = None,
        poll_interval: float = 0.25,
    ) -> None:
        self.connection = connection
        self.volumes = volumes
        self.state = state
        self.pod_exists = pod_exists
        self.policy = policy or BindPolicy()
        self.poll_interval = poll_interval

    async def __call__(
        self, pod: PodInfo, node: str, work: PodVolumes, timeout: float
    ) -> str | None:
        try:
            await self._api_update(work, node)
        except _Failed as exc:
            self._revert(work)
            return str(exc)
        deadline = time.monotonic() + timeout
        while True:
            try:
                if self._check(pod, node, work):
                    log.info("claims bound", extra={"pod": pod.key, "node": node})
                    return None
            except _Failed as exc:
                return f"binding volumes: {exc}"
            if time.monotonic() >= deadline:
                return "binding volumes: timed out waiting for the condition"
            await asyncio.sleep(self.poll_interval)

    def _revert(self, work: PodVolumes) -> None:
        for pv, _ in work.static_bindings:
            self.volumes.restore_pv(pv.name)
        for pvc in work.dynamic_provisions:
            self.volumes.restore_pvc(pvc.key)

    # ----- API writes ----------------------------------------------------------------------------
    async def _api_update(self, work: PodVolumes, node: str) -> None:
        core = self.connection.core
        for pv, pvc in work.static_bindings:
            log.info("binding volume to claim", extra={"pv": pv.name, "pvc": pvc.key})
            await self._retrying(
                core.replace_persistent_volume_without_preload_content,
                what=f'PersistentVolume "{pv.name}"',
                name=pv.name,
                body=raw_body(pv.raw),
            )
        for pvc in work.dynamic_provisions:
            log.info("selecting node for claim", extra={"pvc": pvc.key, "node": node})
            await self._retrying(
                core.patch_namespaced_persistent_volume_claim_without_preload_content,
                what=f'PersistentVolumeClaim "{pvc.key}"',
                name=pvc.name,
                namespace=pvc.namespace,
                body=raw_body({"metadata": {"annotations": {ANN_SELECTED_NODE: node}}}),
                _content_type="application/merge-patch+json",
            )

    async def _retrying(self, call: Callable[..., Awaitable[Any]], *, what: str, **kw: Any) -> None:
        policy = self.policy
        kw["_request_timeout"] = self.connection.request_timeout
        try:
            async for attempt in retrying(policy):
                with attempt:
                    try:
                        response = await call(**kw)
                        answer = await read_json(response)
                    except (TimeoutError, aiohttp.ClientError) as exc:
                        raise Retryable(repr(exc)) from exc
                    code = response.status
                    if code in (200, 201):
                        return
                    if code == 429 or code >= 500:
                        raise Retryable(f"HTTP {code}: {status_message(answer)}")
                    raise _Failed(f"updating {what}: {status_message(answer)}")
        except Retryable as exc:
            raise _Failed(f"updating {what}: {policy.attempts} attempts failed: {exc}") from exc

    # ----- waiting ---------------------------------------------------------------------------
    def _check(self, pod: PodInfo, node: str, work: PodVolumes) -> bool:
        """upstream checkBindings on the informers' (API) objects."""
        if not self.pod_exists(pod.key):
            raise _Failed("pod does not exist any more")
        idx = self.state.index.get(node)
        if idx is None:
            raise _Failed(f'failed to get node "{node}"')
        nodes = np.array([idx], dtype=np.intp)
        v = self.volumes
        for pv_wanted, pvc_wanted in work.static_bindings:
            pv = v.pvs.get(pv_wanted.name)
            pvc = v.pvcs.get(pvc_wanted.key)
            if pv is None:
                raise _Failed(f'failed to check binding: PersistentVolume "{pv_wanted.name}"')
            if pvc is None:
                raise _Failed(f'failed to check binding: PVC "{pvc_wanted.key}"')
            if not pv_node_mask(self.state, pv, nodes)[0]:
                raise _Failed(f'pv "{pv.name}" node affinity doesn\'t match node "{node}"')
            if pv.claim_ref is None or not pv.claim_ref[2]:
                if pv.resource_version <= pv_wanted.resource_version:
                    return False  # our update has not reached the cache yet
                raise _Failed(f'ClaimRef got reset for pv "{pv.name}"')
            if not pvc.fully_bound:
                return False
        for wanted in work.dynamic_provisions:
            pvc = v.pvcs.get(wanted.key)
            if pvc is None:
                raise _Failed(f'failed to check provisioning pvc: PVC "{wanted.key}"')
            selected = pvc.annotations.get(ANN_SELECTED_NODE)
            if selected is None and pvc.resource_version <= wanted.resource_version:
                return False  # our patch has not reached the cache yet
            if selected != node:
                raise _Failed(f'provisioning failed for PVC "{pvc.name}"')
            if pvc.volume_name:
                pv = v.pvs.get(pvc.volume_name)
                if pv is None:
                    return False  # not in the cache yet
                if not pv_node_mask(self.state, pv, nodes)[0]:
                    raise _Failed(f'pv "{pv.name}" node affinity doesn\'t match node "{node}"')
            if not pvc.fully_bound:
                return False
        return True


class _Failed(Exception):
    """Binding the pod's volumes failed; the message says why."""
