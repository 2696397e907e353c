"""Carrying out the engine's preemption decisions through the API, off the scheduling loop.

The engine's cycle has already nominated the preemptor and counts its victims as terminating
(`berth.framework.cycle.Nominated`); here the nominations are written to the pods' status and the
victims deleted (upstream prepareCandidate, asynchronously as kube-scheduler does since 1.33). A
victim that could not be deleted stops counting as terminating; the preemptor, retried after its
backoff, may then choose others.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from typing import Any

from berth.framework.cycle import Nominated
from berth.kube.evictor import Evictor
from berth.objects.pod import PodInfo
from berth.state.cluster import ClusterState

log = logging.getLogger("berth.scheduler")


class Preemptions:
    """The API side of preemption: one task per nominated pod, awaited on the way out."""

    def __init__(self, *, evictor: Evictor | None, state: ClusterState) -> None:
        self.evictor = evictor
        self.state = state
        self.tasks: set[asyncio.Task[None]] = set()

    def carry_out(self, nominated: Nominated) -> None:
        """Delete the victims and write the nominations."""
        pod, node, victims = nominated.pod, nominated.node, nominated.victims
        log.info(
            "preempting", extra={"pod": pod.key, "node": node, "victims": [v.key for v in victims]}
        )
        self._spawn(self._carry_out(pod, node, victims, nominated.cleared))

    def clear(self, pod: PodInfo) -> None:
        """The engine took an earlier nomination of `pod` back: clear it on the pod too."""
        if self.evictor is not None:
            self._spawn(self.evictor.nominate(pod, ""))

    def _spawn(self, coro: Coroutine[Any, Any, Any]) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def _carry_out(
        self,
        pod: PodInfo,
        node: str,
        victims: tuple[PodInfo, ...],
        lower: tuple[PodInfo, ...],
    ) -> None:
        evictor = self.evictor
        if evictor is None:
            log.warning("no evictor: victims not deleted", extra={"pod": pod.key})
            return
        evictions = [evictor.preempt(v, preemptor=pod, node=node) for v in victims]
        _, evicted, _ = await asyncio.gather(
            evictor.nominate(pod, node),
            asyncio.gather(*evictions),
            asyncio.gather(*(evictor.nominate(p, "") for p in lower)),
        )
        state = self.state
        for victim, result in zip(victims, evicted, strict=True):
            current = state.pods.get(victim.key)
            if not result.deleted and current is not None and current.preempted_by_scheduler:
                state.replace_pod(victim)  # not deleted after all: no longer terminating
        if not all(r.deleted for r in evicted):
            # Upstream moves the preemptor back to the active queue when a victim could not
            # be preempted; it is retried after its backoff here and may pick other victims.
            log.warning("some victims were not preempted", extra={"pod": pod.key, "node": node})
