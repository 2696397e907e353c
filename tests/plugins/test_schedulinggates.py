"""SchedulingGates at PreEnqueue, as upstream's scheduling_gates_test.go tables it, plus the
framework's PreEnqueue run and the config that places it (default set, preEnqueue.disabled)."""

from __future__ import annotations

from typing import Any

import pytest

from berth.config import parse_config
from berth.config.errors import ConfigError
from berth.engine import Engine
from berth.framework.status import SUCCESS, Code, Status
from berth.objects import ObjectError, parse_pod
from berth.plugins.schedulinggates import SchedulingGates
from tests.builders import PluginHarness, make_state, pod


def gated(*gates: str, **kw: Any) -> dict[str, Any]:
    return pod("p", spec={"schedulingGates": [{"name": g} for g in gates]}, **kw)


# --- TestPreEnqueue ---------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("name", "raw", "want"),
    [
        ("pod does not carry scheduling gates", pod("p"), SUCCESS),
        ("empty schedulingGates list", pod("p", spec={"schedulingGates": []}), SUCCESS),
        (
            "pod carries scheduling gates",
            gated("foo", "bar"),
            Status(
                Code.UNSCHEDULABLE_AND_UNRESOLVABLE, ("waiting for scheduling gates: [foo bar]",)
            ),
        ),
        (
            "one qualified gate",
            gated("example.com/quota"),
            Status(
                Code.UNSCHEDULABLE_AND_UNRESOLVABLE,
                ("waiting for scheduling gates: [example.com/quota]",),
            ),
        ),
    ],
)
def test_pre_enqueue(name: str, raw: dict[str, Any], want: Status) -> None:
    plugin = PluginHarness("SchedulingGates", make_state([])).plugin
    assert isinstance(plugin, SchedulingGates)
    assert plugin.pre_enqueue(parse_pod(raw)) == want, name


@pytest.mark.parametrize(
    ("gates", "where"),
    [
        ("nope", "spec.schedulingGates"),
        (["x"], "spec.schedulingGates[0]"),
        ([{"name": ""}], "spec.schedulingGates[0].name"),
        ([{"name": "a"}, {}], "spec.schedulingGates[1].name"),
    ],
)
def test_malformed_gates_name_the_field(gates: Any, where: str) -> None:
    with pytest.raises(ObjectError) as exc:
        parse_pod(pod("p", spec={"schedulingGates": gates}))
    assert exc.value.field == where


# --- the framework and the configuration -------------------------------------------------------
# 1.37's default PreEnqueue plugins, in multiPoint order: SchedulingGates, then DynamicResources
# (which holds pods whose claims do not exist yet; a pod without claims passes it).
@pytest.mark.parametrize(
    ("name", "plugins", "want_point", "gated_status"),
    [
        (
            "default profile",
            {},
            ["SchedulingGates", "DynamicResources"],
            Code.UNSCHEDULABLE_AND_UNRESOLVABLE,
        ),
        (
            "disabled at preEnqueue",
            {"preEnqueue": {"disabled": [{"name": "SchedulingGates"}]}},
            ["DynamicResources"],
            Code.SUCCESS,
        ),
        (
            "disabled in multiPoint",
            {"multiPoint": {"disabled": [{"name": "SchedulingGates"}]}},
            ["DynamicResources"],
            Code.SUCCESS,
        ),
        (
            "all preEnqueue disabled, re-enabled by name",
            {"preEnqueue": {"disabled": [{"name": "*"}], "enabled": [{"name": "SchedulingGates"}]}},
            ["SchedulingGates"],
            Code.UNSCHEDULABLE_AND_UNRESOLVABLE,
        ),
    ],
)
def test_profile_pre_enqueue(
    name: str, plugins: dict[str, Any], want_point: list[str], gated_status: Code
) -> None:
    config = parse_config({"profiles": [{"schedulerName": "berth", "plugins": plugins}]})
    assert config.profiles["berth"].points["preEnqueue"] == want_point, name
    fwk = Engine(config=config).schedulers["berth"].framework
    assert fwk.plugin_names()["preEnqueue"] == want_point
    status = fwk.run_pre_enqueue(parse_pod(gated("a", "b")))
    assert status.code == gated_status
    if not status.ok:
        assert status.plugin == "SchedulingGates"
        assert status.message == "waiting for scheduling gates: [a b]"
    assert fwk.run_pre_enqueue(parse_pod(pod("free"))).ok


def test_a_plugin_without_pre_enqueue_is_refused_there() -> None:
    with pytest.raises(ConfigError) as exc:
        parse_config(
            {"profiles": [{"plugins": {"preEnqueue": {"enabled": [{"name": "NodeName"}]}}}]}
        )
    assert (
        "profiles[0].plugins.preEnqueue.enabled[0].name: plugin 'NodeName' does not extend "
        "PreEnqueuePlugin plugin"
    ) in str(exc.value)


def test_schedule_itself_ignores_gates() -> None:
    """PreEnqueue is the queue's business (upstream schedulePod never runs it), so the extender,
    which kube-scheduler only calls for ungated pods, decides a gated pod like any other."""
    from tests.builders import node

    engine = Engine(config=parse_config({}), state=make_state([node("n1")]))
    result = engine.schedulers["berth"].schedule(parse_pod(gated("g")))
    assert result.node == "n1"
