"""Every filter plugin's `explain` agrees with its vectorised `filter`, on generated clusters.

Berth's filters answer for all nodes at once and explain one node only when someone reads the
reasons (a FailedScheduling message, `berth simulate`, the extender's FailedNodes). The two are
written separately, so they are held together here: on any cluster, a node passes the filter
exactly when its explanation is Success, a rejected node is explained with a rejection and at
least one reason, and filtering one node alone gives the verdict it got among all nodes.
"""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from berth.framework.plugin import CycleState, FilterPlugin, Handle, Plugin, PreFilterPlugin
from berth.framework.ports import Ports
from berth.metrics.table import MetricKey, MetricTable
from berth.objects import parse_pod
from berth.plugins.metricscore import MetricScoreArgs
from berth.plugins.registry import registry
from tests.builders import make_state
from tests.generated import Cluster, clusters

FILTERS = sorted(name for name, spec in registry().items() if issubclass(spec.cls, FilterPlugin))
LATENCY = MetricKey("prom", "latency", "node", "auto")


def test_every_filter_plugin_is_covered() -> None:
    """The plugins below are all of the registry's filters (a new one is held to this too)."""
    assert {
        "InterPodAffinity",
        "MetricScore",
        "NodeAffinity",
        "NodeName",
        "NodePorts",
        "NodeResourcesFit",
        "NodeUnschedulable",
        "NodeVolumeLimits",
        "PodTopologySpread",
        "TaintToleration",
        "VolumeBinding",
        "VolumeRestrictions",
        "VolumeZone",
    } <= set(FILTERS)


def _plugin(name: str, cluster: Cluster, latency: dict[str, float]) -> Plugin:
    spec = registry()[name]
    args: Any = spec.args_model() if spec.args_model else None
    if name == "MetricScore":  # a hard limit on a metric some nodes have no fresh value of
        metric = {"name": "latency", "source": "prom", "query": "latency", "filter": {"max": 50}}
        args = MetricScoreArgs.model_validate({"metrics": [metric]})
    table = MetricTable()
    table.update(LATENCY, latency)
    ports = Ports(metrics=table)
    for obj in cluster.storage:
        ports.volumes.upsert(obj)
    state = make_state(cluster.nodes, cluster.placed)
    return spec.cls(args=args, handle=Handle(state=state, ports=ports))


@settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    name=st.sampled_from(FILTERS),
    cluster=clusters(pending=(1, 1), volumes=True, node_name=True),
    data=st.data(),
)
def test_explain_agrees_with_filter(name: str, cluster: Cluster, data: st.DataObject) -> None:
    names = [n["metadata"]["name"] for n in cluster.nodes]
    latency = {
        n: data.draw(st.floats(0, 100)) for n in names if data.draw(st.booleans(), label="has")
    }
    plugin = _plugin(name, cluster, latency)
    assert isinstance(plugin, FilterPlugin)
    pod = parse_pod(cluster.pending[0])
    cycle = CycleState()
    if isinstance(plugin, PreFilterPlugin):
        _, status = plugin.pre_filter(cycle, pod)
        if not status.ok:
            event(f"{name}: PreFilter {status.code}")
            return  # Skip (no Filter this cycle) or a rejection before any node is looked at
    state = plugin.state
    nodes = state.node_indices()
    verdicts = plugin.filter(cycle, pod, nodes).tolist()
    event(f"{name}: {'some' if not all(verdicts) else 'no'} node rejected")
    for idx, passed in zip(nodes.tolist(), verdicts, strict=True):
        explained = plugin.explain(cycle, pod, idx)
        where = (name, state.names[idx], explained)
        assert explained.ok == passed, where
        if not passed:
            assert explained.is_rejected and explained.reasons, where
    for idx, passed in zip(nodes.tolist(), verdicts, strict=True):
        alone = plugin.filter(cycle, pod, nodes[nodes == idx])
        assert alone.tolist() == [passed], (name, state.names[idx])
