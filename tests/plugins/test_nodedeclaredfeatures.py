"""NodeDeclaredFeatures: a pod needing a node feature runs only where the node declares it
(upstream nodedeclaredfeatures_test.go's cases, over Berth's parsed pods and nodes)."""

from __future__ import annotations

from typing import Any

from berth.framework.status import Code
from tests.builders import PluginHarness, make_state, node, pod


def _node(name: str, *features: str) -> dict[str, Any]:
    raw = node(name)
    raw["status"]["declaredFeatures"] = list(features)
    return raw


def _host_network_user_namespaces() -> dict[str, Any]:
    return pod("p", spec={"hostNetwork": True, "hostUsers": False})


def test_pod_without_requirements_skips() -> None:
    h = PluginHarness("NodeDeclaredFeatures", make_state([_node("n1")]))
    assert all(s.ok for s in h.filter(pod("p")).values())


def test_node_missing_a_required_feature_is_unresolvable() -> None:
    state = make_state([_node("old"), _node("new", "UserNamespacesHostNetworkSupport")])
    h = PluginHarness("NodeDeclaredFeatures", state)
    got = h.filter(_host_network_user_namespaces())
    assert got["new"].ok
    assert (got["old"].code, got["old"].reasons) == (
        Code.UNSCHEDULABLE_AND_UNRESOLVABLE,
        ("node(s) didn't match Pod's required features",),
    )


def test_restart_all_containers_rule_needs_its_feature() -> None:
    raw = pod("p")
    raw["spec"]["containers"][0]["restartPolicyRules"] = [
        {"action": "RestartAllContainers", "exitCodes": {"operator": "In", "values": [42]}}
    ]
    state = make_state([_node("a"), _node("b", "RestartAllContainersOnContainerExits")])
    got = PluginHarness("NodeDeclaredFeatures", state).filter(raw)
    assert {n: s.ok for n, s in got.items()} == {"a": False, "b": True}
