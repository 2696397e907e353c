"""NodeUnschedulable, NodeName, NodePorts and TaintToleration, as upstream's tables test them."""

from typing import Any

import pytest

from berth.framework.status import Code
from tests.builders import PluginHarness, make_state, node, pod

TAINT_GPU = {"key": "dedicated", "value": "gpu", "effect": "NoSchedule"}


# --- NodeUnschedulable (node_unschedulable_test.go) --------------------------------------------
@pytest.mark.parametrize(
    ("name", "unschedulable", "tolerations", "fits"),
    [
        ("schedulable node", False, [], True),
        ("cordoned node", True, [], False),
        (
            "cordoned node, pod tolerates the unschedulable taint",
            True,
            [
                {
                    "key": "node.kubernetes.io/unschedulable",
                    "operator": "Exists",
                    "effect": "NoSchedule",
                }
            ],
            True,
        ),
        ("cordoned node, pod tolerates everything", True, [{"operator": "Exists"}], True),
        (
            "cordoned node, toleration for another effect",
            True,
            [
                {
                    "key": "node.kubernetes.io/unschedulable",
                    "operator": "Exists",
                    "effect": "NoExecute",
                }
            ],
            False,
        ),
    ],
)
def test_node_unschedulable(
    name: str, unschedulable: bool, tolerations: list[dict[str, str]], fits: bool
) -> None:
    h = PluginHarness("NodeUnschedulable", make_state([node("n1", unschedulable=unschedulable)]))
    status = h.filter(pod(spec={"tolerations": tolerations}))["n1"]
    assert status.ok is fits, name
    if not fits:
        assert status.code == Code.UNSCHEDULABLE_AND_UNRESOLVABLE
        assert status.reasons == ("node(s) were unschedulable",)


# --- NodeName ------------------------------------------------------------------------------------
def test_node_name() -> None:
    h = PluginHarness("NodeName", make_state([node("n1"), node("n2")]))
    assert h.reasons(pod()) == {}
    assert h.reasons(pod(node_name="n2")) == {
        "n1": ["node(s) didn't match the requested node name"]
    }


# --- NodePorts (node_ports_test.go) -------------------------------------------------------------
def port(host_port: int, protocol: str = "TCP", ip: str = "") -> dict[str, Any]:
    p: dict[str, Any] = {"containerPort": host_port, "hostPort": host_port, "protocol": protocol}
    if ip:
        p["hostIP"] = ip
    return p


def with_ports(*ports: dict[str, Any], node_name: str = "") -> dict[str, Any]:
    return pod(
        node_name=node_name,
        containers=[{"name": "c", "image": "busybox", "ports": list(ports)}],
    )


@pytest.mark.parametrize(
    ("name", "existing", "wanted", "fits"),
    [
        ("nothing running", [], [port(8080)], True),
        ("other port", [port(8080)], [port(9090)], True),
        ("same port", [port(8080)], [port(8080)], False),
        ("same port, other protocol", [port(8080, "UDP")], [port(8080, "TCP")], True),
        (
            "same port, different IPs",
            [port(8080, ip="127.0.0.1")],
            [port(8080, ip="127.0.0.2")],
            True,
        ),
        (
            "same port, same IP",
            [port(8080, ip="127.0.0.1")],
            [port(8080, ip="127.0.0.1")],
            False,
        ),
        (
            "0.0.0.0 wanted conflicts with a specific IP",
            [port(8080, ip="127.0.0.1")],
            [port(8080)],
            False,
        ),
        (
            "specific IP wanted conflicts with 0.0.0.0",
            [port(8080)],
            [port(8080, ip="127.0.0.1")],
            False,
        ),
        ("second of two ports conflicts", [port(9090)], [port(8080), port(9090)], False),
    ],
)
def test_node_ports(
    name: str, existing: list[dict[str, Any]], wanted: list[dict[str, Any]], fits: bool
) -> None:
    pods = [with_ports(*existing, node_name="n1")] if existing else []
    h = PluginHarness("NodePorts", make_state([node("n1")], pods))
    status = h.filter(with_ports(*wanted))["n1"]
    assert status.ok is fits, name
    if not fits:
        assert status.code == Code.UNSCHEDULABLE
        assert status.reasons == ("node(s) didn't have free ports for the requested pod ports",)


def test_node_ports_sidecar_ports_count_but_init_ports_do_not() -> None:
    running = pod(
        node_name="n1",
        spec={
            "initContainers": [
                {"name": "side", "image": "x", "restartPolicy": "Always", "ports": [port(7000)]},
                {"name": "init", "image": "x", "ports": [port(7001)]},
            ]
        },
    )
    h = PluginHarness("NodePorts", make_state([node("n1")], [running]))
    assert not h.filter(with_ports(port(7000)))["n1"].ok
    assert h.filter(with_ports(port(7001)))["n1"].ok


# --- TaintToleration (taint_toleration_test.go) -------------------------------------------------
@pytest.mark.parametrize(
    ("name", "taints", "tolerations", "reason"),
    [
        ("no taints", [], [], None),
        (
            "untolerated NoSchedule",
            [TAINT_GPU],
            [],
            "node(s) had untolerated taint(s)",
        ),
        (
            "tolerated by Equal",
            [TAINT_GPU],
            [{"key": "dedicated", "operator": "Equal", "value": "gpu", "effect": "NoSchedule"}],
            None,
        ),
        (
            "tolerated with empty effect",
            [TAINT_GPU],
            [{"key": "dedicated", "value": "gpu"}],
            None,
        ),
        (
            "wrong value",
            [TAINT_GPU],
            [{"key": "dedicated", "value": "cpu"}],
            "node(s) had untolerated taint(s)",
        ),
        (
            "Exists tolerates any value",
            [TAINT_GPU],
            [{"key": "dedicated", "operator": "Exists"}],
            None,
        ),
        (
            "effect mismatch",
            [TAINT_GPU],
            [{"key": "dedicated", "operator": "Exists", "effect": "NoExecute"}],
            "node(s) had untolerated taint(s)",
        ),
        (
            "PreferNoSchedule never filters",
            [{"key": "k", "value": "v", "effect": "PreferNoSchedule"}],
            [],
            None,
        ),
        (
            "NoExecute filters",
            [{"key": "node.kubernetes.io/not-ready", "effect": "NoExecute"}],
            [],
            "node(s) had untolerated taint(s)",
        ),
        (
            "one untolerated taint among tolerated ones",
            [TAINT_GPU, {"key": "b", "value": "2", "effect": "NoSchedule"}],
            [{"key": "dedicated", "operator": "Exists"}],
            "node(s) had untolerated taint(s)",
        ),
    ],
)
def test_taint_toleration_filter(
    name: str, taints: list[dict[str, str]], tolerations: list[dict[str, str]], reason: str | None
) -> None:
    h = PluginHarness("TaintToleration", make_state([node("n1", taints=taints)]))
    status = h.filter(pod(spec={"tolerations": tolerations}))["n1"]
    if reason is None:
        assert status.ok, name
    else:
        assert status.code == Code.UNSCHEDULABLE_AND_UNRESOLVABLE, name
        assert status.reasons == (reason,), name


def prefer(key: str, value: str = "v") -> dict[str, str]:
    return {"key": key, "value": value, "effect": "PreferNoSchedule"}


@pytest.mark.parametrize(
    ("name", "node_taints", "tolerations", "want"),
    [
        ("no taints anywhere: all 100", [[], []], [], [100, 100]),
        (
            "intolerable PreferNoSchedule counts (normalised reverse)",
            [
                [],
                [prefer("a")],
                [prefer("a"), prefer("b")],
                [prefer("a"), prefer("b"), prefer("c")],
            ],
            [],
            [100, 67, 34, 0],
        ),
        (
            "tolerated taints do not count",
            [[prefer("a")], [prefer("b")]],
            [{"key": "a", "operator": "Exists", "effect": "PreferNoSchedule"}],
            [100, 0],
        ),
        (
            "NoSchedule tolerations do not help scoring",
            [[prefer("a")], []],
            [{"key": "a", "operator": "Exists", "effect": "NoSchedule"}],
            [0, 100],
        ),
    ],
)
def test_taint_toleration_score(
    name: str, node_taints: list[list[dict[str, str]]], tolerations: list[Any], want: list[int]
) -> None:
    nodes = [node(f"n{i}", taints=t) for i, t in enumerate(node_taints)]
    h = PluginHarness("TaintToleration", make_state(nodes))
    scores = h.score(pod(spec={"tolerations": tolerations}))
    assert [scores[f"n{i}"] for i in range(len(nodes))] == want, name
