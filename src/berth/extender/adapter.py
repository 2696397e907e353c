"""The extender verbs on Berth's engine: the same plugins, over exactly the nodes sent.

kube-scheduler has already run its own filters and sends the survivors; Berth answers for those
nodes only (returning a node that was not sent is an error upstream). Node objects come from one
of two places:

- `Nodes` (a full v1 NodeList, `nodeCacheCapable: false`): each node is parsed once per
  resourceVersion and upserted into the engine's node table. Parsing whole nodes is what makes
  this mode slow upstream (kubernetes/kubernetes #72634), so unchanged nodes cost one dict lookup.
  Nodes that were not sent for `node_ttl` seconds are dropped, so deleted nodes do not linger.
- `NodeNames` (`nodeCacheCapable: true`): the names are looked up in the node table the nodes
  informer keeps, exactly like `berth run`'s cache.

Bound pods come from the pods informer in both modes (`berth.extender.server`); without a
cluster connection the node table holds no pods, so only per-node facts (allocatable, taints,
labels, cordons) decide. Every verb runs synchronously on the event loop, between informer
updates, so a decision reads a consistent snapshot.
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

import numpy as np

from berth.engine import Engine
from berth.extender.wire import (
    MAX_EXTENDER_PRIORITY,
    ExtenderArgs,
    ExtenderBindingArgs,
    ExtenderBindingResult,
    ExtenderFilterResult,
    ExtenderPreemptionArgs,
    ExtenderPreemptionResult,
    HostPriority,
    MetaVictims,
    Obj,
)
from berth.feed import Feed
from berth.framework.algorithm import Scheduler
from berth.framework.runtime import FrameworkError
from berth.framework.status import Code, Status, unresolvable
from berth.kube.binder import Binder
from berth.objects import parse_node, parse_pod
from berth.objects.errors import ObjectError
from berth.objects.node import NodeInfo
from berth.objects.pod import PodInfo, pod_stub
from berth.state.whatif import what_if

NODE_NOT_FOUND = "node(s) not found in berth's node cache"
DEFAULT_NODE_TTL = 600.0
RECENT_PODS = 1024  # pods of recent filter/prioritize calls kept for the bind verb


class PodError(ValueError):
    """The Pod in the request cannot be parsed; the message names the field."""


@dataclass
class ParseStats:
    parsed: int = 0  # nodes parsed (new name or new resourceVersion)
    reused: int = 0  # nodes whose resourceVersion was already parsed


class ExtenderAdapter:
    """Filter, prioritize, preempt and bind for one Engine."""

    def __init__(
        self,
        engine: Engine,
        *,
        binder: Binder | None = None,
        nodes_from_informer: bool = False,
        node_ttl: float = DEFAULT_NODE_TTL,
        bind_timeout: float = 4.0,
    ) -> None:
        self.engine = engine
        # Bound pods, namespaces and workloads from the informers, nodes from the informer or
        # the payloads: every pod is the extender's to judge (kube-scheduler asks about its own).
        self.feed = Feed(state=engine.state, ports=engine.ports, responsible=lambda _: True)
        self.binder = binder
        self.nodes_from_informer = nodes_from_informer
        self.node_ttl = node_ttl
        self.bind_timeout = bind_timeout
        # name -> (resourceVersion, NodeInfo) of nodes learnt from NodeList payloads.
        self._parsed: dict[str, tuple[str, NodeInfo]] = {}
        self._last_sent: dict[str, float] = {}
        self._last_prune = time.monotonic()
        self.stats = ParseStats()
        self._recent_pods: OrderedDict[str, PodInfo] = OrderedDict()

    # ----- shared ------------------------------------------------------------------------------
    def scheduler_for(self, pod: PodInfo) -> Scheduler:
        """The profile named by the pod's schedulerName, else the first configured profile
        (kube-scheduler calls the extender for its own pods, usually `default-scheduler`)."""
        schedulers = self.engine.schedulers
        return schedulers.get(pod.scheduler_name) or next(iter(schedulers.values()))

    def parse_pod(self, raw: Obj) -> PodInfo:
        """The request's pod, parsed; remembered (a bounded LRU) so a later bind can count it on
        its node at once instead of waiting for the pods watch."""
        try:
            pod = parse_pod(raw)
        except ObjectError as exc:
            raise PodError(f"invalid pod: {exc}") from exc
        recent = self._recent_pods
        recent[pod.key] = pod
        recent.move_to_end(pod.key)
        while len(recent) > RECENT_PODS:
            recent.popitem(last=False)
        return pod

    def _nodes(self, args: ExtenderArgs) -> tuple[list[str], dict[str, Obj], dict[str, Status]]:
        """The sent node names in order (deduplicated), the raw items by name (Nodes mode), and
        a status for each sent node Berth cannot evaluate (malformed, or unknown)."""
        state = self.engine.state
        problems: dict[str, Status] = {}
        raw_by_name: dict[str, Obj] = {}
        names: list[str] = []
        if args.nodes is not None:
            now = time.monotonic()
            for raw in args.nodes.items:
                meta_raw = raw.get("metadata")
                meta: Obj = meta_raw if isinstance(meta_raw, dict) else {}
                name = meta.get("name") if isinstance(meta.get("name"), str) else None
                if not name:
                    continue  # nameless: nothing to answer for (upstream keys results by name)
                if name in raw_by_name:
                    continue
                raw_by_name[name] = raw
                names.append(name)
                rv = str(meta.get("resourceVersion") or "")
                cached = self._parsed.get(name)
                if (rv and cached is not None and cached[0] == rv and name in state.index) or (
                    self.nodes_from_informer and name in state.index
                ):
                    # Unchanged, or watched: the informer's copy is at least as fresh.
                    self.stats.reused += 1
                else:
                    try:
                        node = parse_node(raw)
                    except ObjectError as exc:
                        problems[name] = unresolvable(f"invalid node: {exc}")
                        continue
                    self.stats.parsed += 1
                    self.feed.upsert_node(node)
                    self._parsed[name] = (rv, node)
                self._last_sent[name] = now
            self._prune(now)
        else:
            seen: set[str] = set()
            for name in args.node_names or []:
                if name not in seen:
                    seen.add(name)
                    names.append(name)
        for name in names:
            if name not in problems and name not in state.index:
                problems[name] = unresolvable(NODE_NOT_FOUND)
        return names, raw_by_name, problems

    def _prune(self, now: float) -> None:
        """Forget payload nodes not sent for `node_ttl` seconds (checked at most every 10 s)."""
        if self.nodes_from_informer or now - self._last_prune < 10.0:
            return
        self._last_prune = now
        for name, seen in list(self._last_sent.items()):
            if now - seen > self.node_ttl:
                del self._last_sent[name]
                self._parsed.pop(name, None)
                self.feed.remove_node(name)

    # ----- filter ------------------------------------------------------------------------------
    def filter(self, args: ExtenderArgs) -> ExtenderFilterResult:
        """PreFilter + Filter for the pod over the sent nodes; rejected nodes carry the first
        rejecting plugin's reasons (UnschedulableAndUnresolvable ones in
        FailedAndUnresolvableNodes, as upstream's framework would classify them)."""
        try:
            pod = self.parse_pod(args.pod)
        except PodError as exc:
            return self._empty_filter(args, error=str(exc))
        names, raw_by_name, statuses = self._nodes(args)
        try:
            statuses.update(self._filter_statuses(pod, [n for n in names if n not in statuses]))
        except FrameworkError as exc:
            return self._empty_filter(args, error=str(exc))
        result = self._empty_filter(args)
        passing = [n for n in names if n not in statuses]
        for name in names:
            status = statuses.get(name)
            if status is None:
                continue
            target = (
                result.failed_and_unresolvable_nodes
                if status.code == Code.UNSCHEDULABLE_AND_UNRESOLVABLE
                else result.failed_nodes
            )
            target[name] = status.message
        if args.nodes is not None:
            result.nodes = args.nodes.to_wire([raw_by_name[n] for n in passing])
        else:
            result.node_names = passing
        return result

    @staticmethod
    def _empty_filter(args: ExtenderArgs, *, error: str = "") -> ExtenderFilterResult:
        result = ExtenderFilterResult(error=error)
        if error:
            return result  # kube-scheduler reads nothing else when Error is set
        if args.nodes is not None:
            result.nodes = args.nodes.to_wire([])
        else:
            result.node_names = []
        return result

    def _filter_statuses(self, pod: PodInfo, names: list[str]) -> dict[str, Status]:
        """The engine's PreFilter, Filter and nominated-pods check over the sent nodes: each
        rejected node's status."""
        if not names:
            return {}
        state = self.engine.state
        slots = np.array([state.index[n] for n in names], dtype=np.intp)
        _, diagnosis = self.scheduler_for(pod).find_feasible(pod, slots)
        return diagnosis.node_statuses()

    # ----- prioritize --------------------------------------------------------------------------
    def prioritize(self, args: ExtenderArgs) -> list[HostPriority]:
        """Berth's weighted Score over the sent nodes, mapped onto 0..10.

        Each score plugin gives 0..100 (after NormalizeScore) times its weight, so the best a
        node can get is 100 x (sum of the weights of the plugins that scored). The extender
        score is that fraction of 10, rounded half up: `round(10 x total / max_total)`.
        kube-scheduler then adds `score x extender weight x 10` to its own 0..100-per-plugin
        totals. Nodes Berth cannot evaluate (unknown, malformed) get 0.
        """
        pod = self.parse_pod(args.pod)
        names, _, problems = self._nodes(args)
        known = [n for n in names if n not in problems]
        scores = dict.fromkeys(names, 0)
        if known:
            state = self.engine.state
            slots = np.array([state.index[n] for n in known], dtype=np.intp)
            total, max_total = self.scheduler_for(pod).prioritize(pod, slots)
            for name, value in zip(known, total.tolist(), strict=True):
                scores[name] = scale_score(int(value), max_total)
        return [HostPriority(host=n, score=scores[n]) for n in names]

    # ----- preempt -----------------------------------------------------------------------------
    def preempt(self, args: ExtenderPreemptionArgs) -> ExtenderPreemptionResult:
        """Keep the candidate nodes where Berth's filters pass once the proposed victims are
        gone; drop the others. Victims are left as kube-scheduler chose them (Berth does not
        propose fewer or other victims). A node Berth does not know is kept unchanged."""
        pod = self.parse_pod(args.pod)
        fwk = self.scheduler_for(pod).framework
        state = self.engine.state
        out: dict[str, MetaVictims] = {}
        for node_name, victims in args.victims.items():
            idx = state.index.get(node_name)
            if idx is None:
                out[node_name] = victims
                continue
            on_node = {p.uid: p.key for p in state.node_pods[idx].values() if p.uid}
            with what_if(state) as hypothesis:
                for uid in victims.uids:
                    if uid in on_node:
                        hypothesis.remove(on_node[uid])
                status = fwk.run_filters_on_node(pod, idx)
            if status.ok:
                out[node_name] = victims
        return ExtenderPreemptionResult(node_name_to_meta_victims=out)

    # ----- bind --------------------------------------------------------------------------------
    async def bind(self, args: ExtenderBindingArgs) -> ExtenderBindingResult:
        """POST the Binding through Berth's Binder (retries, 409 resolution); any failure is
        reported in Error, as kube-scheduler expects. The whole call is bounded by
        `bind_timeout` so the answer beats kube-scheduler's httpTimeout."""
        if self.binder is None:
            return ExtenderBindingResult(
                error="berth extender has no cluster connection: start it with --kubeconfig "
                "(or in a cluster) to serve the bind verb"
            )
        stub = pod_stub(
            namespace=args.pod_namespace or "default", name=args.pod_name, uid=args.pod_uid
        )
        try:
            status = await asyncio.wait_for(
                self.binder.bind(stub, args.node), timeout=self.bind_timeout
            )
        except TimeoutError:
            return ExtenderBindingResult(
                error=f"binding {stub.key} to {args.node}: no answer within {self.bind_timeout}s"
            )
        if status.ok:
            self._assume(stub, args.node)
            return ExtenderBindingResult()
        return ExtenderBindingResult(error=f"binding {stub.key} to {args.node}: {status.message}")

    def _assume(self, stub: PodInfo, node_name: str) -> None:
        """Count a pod Berth filtered and just bound on its node now: the pods watch confirms
        it moments later (add_pod replaces this copy), and the next filter must not see the
        node as emptier than it is in the meantime."""
        pod = self._recent_pods.pop(stub.key, None)
        state = self.engine.state
        if pod is None or (stub.uid and pod.uid != stub.uid) or state.node_of(pod.key):
            return
        state.add_pod(pod, node_name)


def scale_score(total: int, max_total: int) -> int:
    """`total` out of `max_total` as an integer 0..10, rounded half up (0 when nothing scored)."""
    if max_total <= 0 or total <= 0:
        return 0
    scaled = (2 * total * MAX_EXTENDER_PRIORITY + max_total) // (2 * max_total)
    return max(0, min(MAX_EXTENDER_PRIORITY, scaled))


def describe(adapter: ExtenderAdapter) -> dict[str, Any]:
    """Counters for the log line at shutdown."""
    return {"nodes_parsed": adapter.stats.parsed, "nodes_reused": adapter.stats.reused}
