"""Where Berth's decisions and upstream's differ, pod by pod and node by node.

Both sides are `berth simulate -o json`'s lines. What is compared, and what is not:
- the node (upstream follows Berth's pick among equally scored best nodes, so a different node
  means a different best set), or that the pod stayed pending;
- every rejected node and its reasons, in order; the FailedScheduling message;
- each plugin's normalised score and the final score of every scored node, when upstream
  scored at all (it does not score a single feasible node; Berth still explains it);
- the nominated node and the victims of a preemption (as a set), scheduling gates;
- a pod upstream's API validation refuses must be refused by Berth too, and the reverse (the
  wording of the two errors is not compared: Berth names the field in its own words).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Difference:
    pod: str
    what: str  # "node", "reasons", "message", "scores", "pluginScores", "preempted", ...
    berth: Any
    upstream: Any

    def __str__(self) -> str:
        return (
            f"{self.pod}: {self.what}: berth {_show(self.berth)}, upstream {_show(self.upstream)}"
        )


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 300 else text[:297] + "..."


def _node_diffs(
    pod: str, what: str, berth: Mapping[str, Any], upstream: Mapping[str, Any]
) -> Iterable[Difference]:
    for node in sorted(set(berth) | set(upstream)):
        if berth.get(node) != upstream.get(node):
            yield Difference(pod, f"{what}[{node}]", berth.get(node), upstream.get(node))


def compare_decision(berth: Mapping[str, Any], upstream: Mapping[str, Any]) -> list[Difference]:
    """The differences between Berth's and upstream's decision for one pod."""
    pod = str(upstream.get("pod"))
    out: list[Difference] = []
    if upstream.get("invalid") or (berth.get("error") and not upstream.get("error")):
        if bool(berth.get("error")) != bool(upstream.get("error")):
            out.append(Difference(pod, "refused", berth.get("error"), upstream.get("error")))
        return out
    if bool(berth.get("gated")) != bool(upstream.get("gated")):
        out.append(Difference(pod, "gated", berth.get("message"), upstream.get("message")))
        return out
    if bool(berth.get("error")) != bool(upstream.get("error")):
        out.append(Difference(pod, "error", berth.get("error"), upstream.get("error")))
        return out
    if berth.get("node") != upstream.get("node"):
        upstream_view: Any = upstream.get("node")
        if upstream.get("bestNodes") and berth.get("node"):
            upstream_view = {"node": upstream.get("node"), "best": upstream.get("bestNodes")}
        out.append(Difference(pod, "node", berth.get("node"), upstream_view))
    if not upstream.get("error") and berth.get("message") != upstream.get("message"):
        out.append(Difference(pod, "message", berth.get("message"), upstream.get("message")))
    out.extend(
        _node_diffs(pod, "reasons", berth.get("reasons") or {}, upstream.get("reasons") or {})
    )
    if upstream.get("pluginScores"):
        out.extend(_node_diffs(pod, "scores", berth.get("scores") or {}, upstream["scores"]))
        b_plugins: Mapping[str, Mapping[str, int]] = berth.get("pluginScores") or {}
        u_plugins: Mapping[str, Mapping[str, int]] = upstream["pluginScores"]
        for plugin in sorted(set(b_plugins) | set(u_plugins)):
            out.extend(
                _node_diffs(
                    pod,
                    f"pluginScores.{plugin}",
                    b_plugins.get(plugin) or {},
                    u_plugins.get(plugin) or {},
                )
            )
    if (berth.get("nominatedNode") or "") != (upstream.get("nominatedNode") or ""):
        out.append(
            Difference(
                pod, "nominatedNode", berth.get("nominatedNode"), upstream.get("nominatedNode")
            )
        )
    if sorted(berth.get("preempted") or []) != sorted(upstream.get("preempted") or []):
        out.append(
            Difference(
                pod,
                "preempted",
                sorted(berth.get("preempted") or []),
                upstream.get("preempted") or [],
            )
        )
    return out


def compare(
    berth: Sequence[Mapping[str, Any]], upstream: Sequence[Mapping[str, Any]]
) -> list[Difference]:
    """Every difference between two runs over one dump: per pod, then the queue order of the
    pods both tried."""
    by_pod = {str(d.get("pod")): d for d in berth}
    seen: set[str] = set()
    out: list[Difference] = []
    for u in upstream:
        pod = str(u.get("pod"))
        seen.add(pod)
        b = by_pod.get(pod)
        if b is None:
            out.append(Difference(pod, "decision", None, "decided"))
            continue
        out.extend(compare_decision(b, u))
    for pod in by_pod:
        if pod not in seen:
            out.append(Difference(pod, "decision", "decided", None))
    tried_b = [str(d.get("pod")) for d in berth if not d.get("error")]
    tried_u = [str(d.get("pod")) for d in upstream if not d.get("error")]
    if not out and tried_b != tried_u:
        out.append(Difference("*", "queue order", tried_b, tried_u))
    return out
