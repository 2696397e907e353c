"""The benchmark's proof that Berth's placements are valid, not only fast.

After Berth's live run, the final state of the embedded cluster (its nodes, its pods, the
bindings its store committed) is checked against the invariants every correct scheduler keeps.
Written independently of Berth's engine: plain Python over the raw objects, only quantities are
parsed with `berth.objects.quantity` and label selectors matched by `berth.cluster.selectors`
(the embedded API server's). Everything is indexed (pods by node, by namespace and label;
selector results by distinct term), so the cost stays linear in the pods.

"Placed" pods are the ones the scheduler bound during the run; the others (the workload's running
pods) were put on their nodes by the benchmark and are only checked against (their own rules were
never enforced by a scheduler). The rules, and why each is exactly what upstream guarantees:

- bindings: every pod to schedule was bound exactly once (one committed change of
  `spec.nodeName`, seen by the store listener), is still there on that node, and the node exists;
  no other pod was bound and no pod deleted (all pods have priority 0, so nothing preempts).
- resources: per node and resource (cpu, memory, ephemeral-storage, hugepages, extended), the sum
  of the pods' effective requests (max(app containers + sidecars, each init container + the
  sidecars before it), pod-level requests for cpu/memory/hugepages, + overhead) is at most the
  allocatable, if a placed pod on the node requests that resource: upstream's Fit skips
  resources a pod does not request, and sums only grow here, so the last placed pod requesting
  it proves the final sum fits. Pod count at most allocatable pods if a placed pod is there.
- nodeSelector and required node affinity match the node; every NoSchedule/NoExecute taint is
  tolerated; a cordoned node (`spec.unschedulable`) only has pods tolerating its taint. (Nodes do
  not change during the run, so their final state is the one each decision saw.)
- required pod anti-affinity: no pod with a term shares the term's topology domain with another
  pod the term matches, when either of the two was placed (upstream checks the incoming pod's
  terms and the existing pods' terms). Required pod affinity: the node has every term's key, and
  each term matches another pod in the domain, or the pod matches all its own terms (upstream's
  first-of-a-series exception; so this side is slightly weaker than upstream's).
- PodTopologySpread, DoNotSchedule: placed pods are grouped by constraint (namespace, selector
  with matchLabelKeys, key, maxSkew, minDomains, node inclusion policies and the node affinity
  they imply). Upstream only checks skew when placing a pod: count[d] + 1 - min <= maxSkew over
  the eligible domains. Each such placement keeps max - min <= max(maxSkew, skew before), so the
  final skew must be <= max(maxSkew, the skew of the pods not placed in this run); with fewer
  domains than minDomains (min taken as 0), the final max must be <= max(maxSkew, the max
  before). A group is skipped (counted, not checked) when a placed pod outside the group matches
  its selector on its eligible nodes, since that pod was not held to the group's constraint.
"""

from __future__ import annotations

import functools
import json
import time
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from berth.bench.errors import BenchError
from berth.cluster.selectors import label_selector_matches
from berth.objects.quantity import resource_value

JSON = dict[str, Any]
Key = tuple[str, str]  # (namespace, name)
HARD_EFFECTS = ("NoSchedule", "NoExecute")
UNSCHEDULABLE_TAINT = {"key": "node.kubernetes.io/unschedulable", "effect": "NoSchedule"}
MAX_REPORTED = 10

# A selector operator the verifier cannot read fails the match: it must not pass what it
# cannot check.
_selects = functools.partial(label_selector_matches, unknown_operator=False)


class PlacementError(BenchError):
    """Berth's final placements break a rule; the message names the workload, pod, node, rule."""

    def __init__(self, workload: str, violations: list[str]) -> None:
        shown = "\n  ".join(violations[:MAX_REPORTED])
        more = len(violations) - MAX_REPORTED
        tail = f"\n  ... and {more} more" if more > 0 else ""
        super().__init__(f"{workload}: {len(violations)} placement violation(s):\n  {shown}{tail}")
        self.workload = workload
        self.violations = violations


@dataclass
class Verification:
    checks: int
    seconds: float
    spread_groups: int
    spread_groups_skipped: int
    violations: list[str] = field(default_factory=list)


# ----- raw-object helpers ------------------------------------------------------------------------
_QUANTITIES: dict[tuple[str, str], int] = {}


def _amount(resource: str, value: Any) -> int:
    key = (resource, str(value))
    got = _QUANTITIES.get(key)
    if got is None:
        got = _QUANTITIES[key] = resource_value(resource, value)
    return got


def _container_requests(c: JSON) -> dict[str, int]:
    res = c.get("resources") or {}
    raw = dict(res.get("requests") or {})
    for k, v in (res.get("limits") or {}).items():  # the API server's defaulting
        raw.setdefault(k, v)
    return {k: _amount(k, v) for k, v in raw.items()}


def _add(into: dict[str, int], other: Mapping[str, int]) -> None:
    for k, v in other.items():
        into[k] = into.get(k, 0) + v


def pod_requests(pod: JSON) -> dict[str, int]:
    """Upstream's effective pod request (resourcehelper.PodRequests): cpu in millicores."""
    spec = pod.get("spec") or {}
    total: dict[str, int] = {}
    for c in spec.get("containers") or []:
        _add(total, _container_requests(c))
    sidecars: dict[str, int] = {}
    init: dict[str, int] = {}
    for c in spec.get("initContainers") or []:
        r = _container_requests(c)
        if c.get("restartPolicy") == "Always":
            _add(total, r)
            _add(sidecars, r)
            effective = dict(sidecars)
        else:
            effective = dict(r)
            _add(effective, sidecars)
        for k, v in effective.items():
            init[k] = max(init.get(k, 0), v)
    for k, v in init.items():
        total[k] = max(total.get(k, 0), v)
    level = spec.get("resources") or {}
    raw_level = dict(level.get("requests") or {})
    for k, v in (level.get("limits") or {}).items():
        raw_level.setdefault(k, v)
    for k, v in raw_level.items():
        if k in ("cpu", "memory") or k.startswith("hugepages-"):
            total[k] = _amount(k, v)
    _add(total, {k: _amount(k, v) for k, v in (spec.get("overhead") or {}).items()})
    return total


def _node_requirement(req: JSON, value: str | None) -> bool:
    op, values = req.get("operator"), req.get("values") or []
    if op == "In":
        return value is not None and value in values
    if op == "NotIn":
        return value is None or value not in values
    if op == "Exists":
        return value is not None
    if op == "DoesNotExist":
        return value is None
    if op in ("Gt", "Lt") and value is not None and len(values) == 1:
        try:
            have, bound = int(value), int(values[0])
        except ValueError:
            return False
        return have > bound if op == "Gt" else have < bound
    return False


def _node_term(term: JSON, name: str, labels: Mapping[str, str]) -> bool:
    exprs = term.get("matchExpressions") or []
    fields = term.get("matchFields") or []
    if not exprs and not fields:
        return False  # an empty term matches no node
    if not all(_node_requirement(r, labels.get(r.get("key", ""))) for r in exprs):
        return False
    return all(r.get("key") == "metadata.name" and _node_requirement(r, name) for r in fields)


def node_affinity_matches(spec: JSON, name: str, labels: Mapping[str, str]) -> bool:
    """nodeSelector and required node affinity (upstream GetRequiredNodeAffinity.Match)."""
    for k, v in (spec.get("nodeSelector") or {}).items():
        if labels.get(k) != v:
            return False
    na = (spec.get("affinity") or {}).get("nodeAffinity") or {}
    required = na.get("requiredDuringSchedulingIgnoredDuringExecution")
    if required is None:
        return True
    return any(_node_term(t, name, labels) for t in required.get("nodeSelectorTerms") or [])


def tolerates(tolerations: Iterable[JSON], taint: JSON) -> bool:
    """Upstream Toleration.ToleratesTaint, for any of `tolerations`."""
    for t in tolerations:
        if t.get("effect") and t.get("effect") != taint.get("effect"):
            continue
        if t.get("key") and t.get("key") != taint.get("key"):
            continue
        op = t.get("operator") or "Equal"
        if op == "Exists" or (
            op == "Equal" and (t.get("value") or "") == (taint.get("value") or "")
        ):
            return True
    return False


# ----- the state ---------------------------------------------------------------------------------
@dataclass(slots=True, eq=False)
class _Pod:
    namespace: str
    name: str
    labels: dict[str, str]
    spec: JSON
    node: str
    placed: bool

    def __str__(self) -> str:
        return f"pod {self.namespace}/{self.name} on {self.node}"


@dataclass(slots=True)
class _Node:
    name: str
    labels: dict[str, str]
    taints: list[JSON]
    unschedulable: bool
    allocatable: dict[str, int]


def _canon(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


class _Checker:
    def __init__(
        self,
        nodes: Iterable[JSON],
        pods: Iterable[_Pod],
        namespace_labels: Mapping[str, Mapping[str, str]],
    ) -> None:
        self.nodes: dict[str, _Node] = {}
        for raw in nodes:
            meta, spec = raw["metadata"], raw.get("spec") or {}
            alloc = (raw.get("status") or {}).get("allocatable") or {}
            self.nodes[meta["name"]] = _Node(
                name=meta["name"],
                labels=dict(meta.get("labels") or {}),
                taints=list(spec.get("taints") or []),
                unschedulable=bool(spec.get("unschedulable")),
                allocatable={k: _amount(k, v) for k, v in alloc.items()},
            )
        self.pods = list(pods)
        self.namespace_labels = namespace_labels
        self.by_node: dict[str, list[_Pod]] = defaultdict(list)
        self.by_ns: dict[str, list[_Pod]] = defaultdict(list)
        self.by_label: dict[tuple[str, str, str], list[_Pod]] = defaultdict(list)
        for p in self.pods:
            self.by_node[p.node].append(p)
            self.by_ns[p.namespace].append(p)
            for k, v in p.labels.items():
                self.by_label[(p.namespace, k, v)].append(p)
        self.checks = 0
        self.violations: list[str] = []
        self._domains: dict[str, dict[str, tuple[list[_Pod], int]]] = {}
        self._eligible: dict[str, set[str]] = {}
        self.spread_groups = 0
        self.spread_skipped = 0

    def fail(self, message: str) -> None:
        self.violations.append(message)

    # --- selection -------------------------------------------------------------------------
    def _namespaces(self, owner: _Pod, term: JSON) -> list[str]:
        names = list(term.get("namespaces") or [])
        ns_selector = term.get("namespaceSelector")
        if ns_selector is not None:
            everywhere = set(self.by_ns) | set(self.namespace_labels)
            names += [
                n for n in everywhere if _selects(ns_selector, self.namespace_labels.get(n, {}))
            ]
        elif not names:
            names = [owner.namespace]
        return sorted(set(names))

    def matching(self, namespaces: Sequence[str], selector: JSON | None) -> list[_Pod]:
        """The pods of `namespaces` that `selector` matches, from the label index."""
        if selector is None:
            return []
        out: list[_Pod] = []
        pairs = list((selector.get("matchLabels") or {}).items())
        for ns in namespaces:
            if pairs:
                candidates = min((self.by_label.get((ns, k, v), []) for k, v in pairs), key=len)
            else:
                candidates = self.by_ns.get(ns, [])
            out.extend(p for p in candidates if _selects(selector, p.labels))
        return out

    def domains(
        self, namespaces: Sequence[str], selector: JSON | None, key: str
    ) -> dict[str, tuple[list[_Pod], int]]:
        """For a pod-affinity term: per value of `key`, the matching pods and how many of them
        were placed in this run. Cached per distinct term."""
        cache_key = _canon([namespaces, selector, key])
        got = self._domains.get(cache_key)
        if got is not None:
            return got
        grouped: dict[str, list[_Pod]] = defaultdict(list)
        for q in self.matching(namespaces, selector):
            node = self.nodes.get(q.node)
            value = node.labels.get(key) if node else None
            if value is not None:
                grouped[value].append(q)
        got = {v: (ps, sum(q.placed for q in ps)) for v, ps in grouped.items()}
        self._domains[cache_key] = got
        return got

    # --- rules -----------------------------------------------------------------------------
    def check_nodes(self) -> None:
        for node_name, pods in self.by_node.items():
            placed = [p for p in pods if p.placed]
            node = self.nodes.get(node_name)
            if node is None:
                for p in placed:
                    self.checks += 1
                    self.fail(f"{p}: bound to a node that does not exist")
                continue
            if not placed:
                continue
            self.checks += 1
            allowed = node.allocatable.get("pods", 0)
            if len(pods) > allowed:
                self.fail(
                    f"node {node_name}: {len(pods)} pods > allocatable pods {allowed} "
                    f"(last placed: {placed[-1]})"
                )
            requests = [(p, pod_requests({"spec": p.spec})) for p in pods]
            totals: dict[str, int] = {}
            for _, r in requests:
                _add(totals, r)
            for resource, total in totals.items():
                self.checks += 1
                have = node.allocatable.get(resource, 0)
                asking = [p for p, r in requests if p.placed and r.get(resource, 0) > 0]
                if total > have and asking:
                    self.fail(
                        f"node {node_name}: requests of {resource} {total} > allocatable {have} "
                        f"(cpu in millicores; placed there asking for it: {asking[-1]}"
                        f"{f' and {len(asking) - 1} more' if len(asking) > 1 else ''})"
                    )

    def check_pod(self, p: _Pod) -> None:
        node = self.nodes.get(p.node)
        if node is None:
            return  # reported by check_nodes
        self.checks += 1
        if not node_affinity_matches(p.spec, node.name, node.labels):
            self.fail(f"{p}: nodeSelector / required node affinity does not match the node")
        tolerations = p.spec.get("tolerations") or []
        for taint in node.taints:
            if taint.get("effect") in HARD_EFFECTS:
                self.checks += 1
                if not tolerates(tolerations, taint):
                    self.fail(f"{p}: taint {_canon(taint)} of the node is not tolerated")
        if node.unschedulable:
            self.checks += 1
            if not tolerates(tolerations, UNSCHEDULABLE_TAINT):
                self.fail(f"{p}: the node is cordoned (spec.unschedulable)")

    def check_anti_affinity(self, p: _Pod) -> None:
        """Every pod's required anti-affinity terms, for pairs where one side was placed."""
        anti = ((p.spec.get("affinity") or {}).get("podAntiAffinity") or {}).get(
            "requiredDuringSchedulingIgnoredDuringExecution"
        ) or []
        node = self.nodes.get(p.node)
        if not anti or node is None:
            return
        for term in anti:
            key = term.get("topologyKey", "")
            value = node.labels.get(key)
            self.checks += 1
            if value is None:
                continue  # a node without the key is outside every domain
            ns = self._namespaces(p, term)
            selector = term.get("labelSelector")
            pods, placed = self.domains(ns, selector, key).get(value, ([], 0))
            mine = p.namespace in ns and _selects(selector, p.labels)
            others = len(pods) - mine
            others_placed = placed - (mine and p.placed)
            if others > 0 and (p.placed or others_placed > 0):
                q = next(q for q in pods if q is not p and (p.placed or q.placed))
                self.fail(
                    f"{p}: required pod anti-affinity ({key}={value}, selector "
                    f"{_canon(selector)}) violated by {q}"
                )

    def check_affinity(self, p: _Pod) -> None:
        terms = ((p.spec.get("affinity") or {}).get("podAffinity") or {}).get(
            "requiredDuringSchedulingIgnoredDuringExecution"
        ) or []
        node = self.nodes.get(p.node)
        if not terms or not p.placed or node is None:
            return
        self.checks += 1
        all_found = True
        self_matches_all = True
        for term in terms:
            key = term.get("topologyKey", "")
            value = node.labels.get(key)
            if value is None:
                self.fail(f"{p}: required pod affinity: the node has no label {key}")
                return
            ns = self._namespaces(p, term)
            selector = term.get("labelSelector")
            pods, _ = self.domains(ns, selector, key).get(value, ([], 0))
            mine = p.namespace in ns and _selects(selector, p.labels)
            self_matches_all = self_matches_all and mine
            if len(pods) - mine <= 0:
                all_found = False
        if not all_found and not self_matches_all:
            self.fail(f"{p}: required pod affinity: no matching pod in the topology domain")

    def check_spread(self) -> None:
        groups: dict[str, tuple[JSON, _Pod, list[_Pod]]] = {}
        for p in self.pods:
            if not p.placed:
                continue
            constraints = [
                c
                for c in p.spec.get("topologySpreadConstraints") or []
                if (c.get("whenUnsatisfiable") or "DoNotSchedule") == "DoNotSchedule"
            ]
            keys = sorted({c.get("topologyKey", "") for c in constraints})
            for c in constraints:
                selector = json.loads(_canon(c.get("labelSelector")))
                if selector is not None and c.get("matchLabelKeys"):
                    exprs = list(selector.get("matchExpressions") or [])
                    for k in c["matchLabelKeys"]:
                        if k in p.labels:
                            exprs.append({"key": k, "operator": "In", "values": [p.labels[k]]})
                    selector["matchExpressions"] = exprs
                affinity_policy = c.get("nodeAffinityPolicy") or "Honor"
                taints_policy = c.get("nodeTaintsPolicy") or "Ignore"
                eligibility = {
                    "keys": keys,
                    "affinity": (
                        {
                            "nodeSelector": p.spec.get("nodeSelector"),
                            "affinity": (p.spec.get("affinity") or {}).get("nodeAffinity"),
                        }
                        if affinity_policy == "Honor"
                        else None
                    ),
                    "tolerations": p.spec.get("tolerations") if taints_policy == "Honor" else None,
                    "taints": taints_policy == "Honor",
                }
                group = {
                    "namespace": p.namespace,
                    "selector": selector,
                    "key": c.get("topologyKey", ""),
                    "maxSkew": int(c.get("maxSkew") or 1),
                    "minDomains": c.get("minDomains"),
                    "eligibility": eligibility,
                }
                gkey = _canon(group)
                if gkey not in groups:
                    groups[gkey] = (group, p, [])
                groups[gkey][2].append(p)
        for group, first, members in groups.values():
            self._check_spread_group(group, first, members)

    def _eligible_nodes(self, eligibility: JSON) -> set[str]:
        """The names of the nodes a spread constraint counts on (cached per eligibility)."""
        ekey = _canon(eligibility)
        got = self._eligible.get(ekey)
        if got is not None:
            return got
        spec = eligibility["affinity"] or {}
        affinity_spec = {
            "nodeSelector": spec.get("nodeSelector"),
            "affinity": {"nodeAffinity": spec.get("affinity")},
        }
        got = set()
        for node in self.nodes.values():
            if not all(k in node.labels for k in eligibility["keys"]):
                continue
            if eligibility["affinity"] is not None and not node_affinity_matches(
                affinity_spec, node.name, node.labels
            ):
                continue
            if eligibility["taints"] and not all(
                tolerates(eligibility["tolerations"] or [], t)
                for t in node.taints
                if t.get("effect") in HARD_EFFECTS
            ):
                continue
            got.add(node.name)
        self._eligible[ekey] = got
        return got

    def _check_spread_group(self, group: JSON, first: _Pod, members: list[_Pod]) -> None:
        self.spread_groups += 1
        eligible = self._eligible_nodes(group["eligibility"])
        key, max_skew = group["key"], group["maxSkew"]
        for p in members:
            if p.node in self.nodes and key not in self.nodes[p.node].labels:
                self.checks += 1
                self.fail(f"{p}: topology spread: the node has no label {key}")
        domains = {self.nodes[n].labels[key] for n in eligible}
        before = dict.fromkeys(domains, 0)
        after = dict.fromkeys(domains, 0)
        member_ids = {id(p) for p in members}
        for q in self.matching([group["namespace"]], group["selector"]):
            if q.node not in eligible:
                continue
            if q.placed and id(q) not in member_ids:
                self.spread_skipped += 1  # placed without this constraint: no guarantee
                return
            d = self.nodes[q.node].labels[key]
            after[d] += 1
            if not q.placed:
                before[d] += 1
        if not domains:
            return
        self.checks += 1
        min_domains = group["minDomains"]
        what = (
            f"topology spread ({key}, maxSkew {max_skew}, selector "
            f"{_canon(group['selector'])}, counts {dict(sorted(after.items()))}"
        )
        if min_domains is not None and len(domains) < int(min_domains):
            limit = max(max_skew, max(before.values()))
            if max(after.values()) > limit:
                self.fail(
                    f"{first}: {what}): max {max(after.values())} > {limit} with fewer domains "
                    f"than minDomains {min_domains}"
                )
            return
        skew0 = max(before.values()) - min(before.values())
        skew = max(after.values()) - min(after.values())
        limit = max(max_skew, skew0)
        if skew > limit:
            top = max(after, key=lambda d: after[d])
            culprit = next(
                (p for p in reversed(members) if self.nodes[p.node].labels.get(key) == top), first
            )
            self.fail(
                f"{culprit}: {what}): skew {skew} > {limit} (maxSkew, or the skew of the "
                f"pods already running: {skew0})"
            )


def _pods(raw_pods: Iterable[JSON], placed: set[Key]) -> list[_Pod]:
    out = []
    for raw in raw_pods:
        spec = raw.get("spec") or {}
        node = spec.get("nodeName")
        phase = (raw.get("status") or {}).get("phase")
        if not node or phase in ("Succeeded", "Failed"):
            continue
        meta = raw["metadata"]
        key = (meta.get("namespace", ""), meta["name"])
        out.append(
            _Pod(
                namespace=key[0],
                name=key[1],
                labels=dict(meta.get("labels") or {}),
                spec=spec,
                node=node,
                placed=key in placed,
            )
        )
    return out


def verify_placements(
    *,
    workload: str,
    nodes: Iterable[JSON],
    pods: Iterable[JSON],
    expected: Iterable[Key],
    bindings: Mapping[Key, Sequence[str]],
    deleted: Iterable[Key] = (),
    namespaces: Iterable[JSON] = (),
    raise_on_violation: bool = True,
) -> Verification:
    """Check the final state (raw `nodes` and `pods`, every namespace) after a run where the
    scheduler was to bind each pod of `expected`; `bindings` are the nodes the store saw each pod
    bound to, in order. Raises PlacementError listing the violations."""
    started = time.perf_counter()
    raw_pods = list(pods)
    to_schedule = list(expected)
    placed = set(to_schedule)
    checker = _Checker(
        nodes,
        _pods(raw_pods, placed),
        {n["metadata"]["name"]: dict(n["metadata"].get("labels") or {}) for n in namespaces},
    )
    final = {
        (p["metadata"].get("namespace", ""), p["metadata"]["name"]): (p.get("spec") or {}).get(
            "nodeName"
        )
        for p in raw_pods
    }
    for key in to_schedule:
        checker.checks += 1
        name = f"pod {key[0]}/{key[1]}"
        nodes_bound = list(bindings.get(key, ()))
        if key not in final:
            checker.fail(f"{name}: gone from the cluster after the run")
        elif len(nodes_bound) != 1:
            what = "never bound" if not nodes_bound else f"bound {len(nodes_bound)} times"
            checker.fail(f"{name}: {what} {nodes_bound or ''}".rstrip())
        elif final[key] != nodes_bound[0]:
            checker.fail(f"{name}: bound to {nodes_bound[0]} but on {final[key]}")
    for key, targets in bindings.items():
        if key not in placed:
            checker.checks += 1
            checker.fail(f"pod {key[0]}/{key[1]}: not to be scheduled, but bound to {targets}")
    for key in deleted:
        checker.fail(f"pod {key[0]}/{key[1]}: deleted during the run (nothing here preempts)")
    checker.check_nodes()
    for p in checker.pods:
        if p.placed:
            checker.check_pod(p)
            checker.check_affinity(p)
        checker.check_anti_affinity(p)
    checker.check_spread()
    result = Verification(
        checks=checker.checks,
        seconds=time.perf_counter() - started,
        spread_groups=checker.spread_groups,
        spread_groups_skipped=checker.spread_skipped,
        violations=checker.violations,
    )
    if checker.violations and raise_on_violation:
        raise PlacementError(workload, checker.violations)
    return result


__all__ = [
    "PlacementError",
    "Verification",
    "node_affinity_matches",
    "pod_requests",
    "tolerates",
    "verify_placements",
]
