"""Coscheduling, table-driven, transcribed from scheduler-plugins' pkg/coscheduling/
core/core_test.go (TestPreFilter, TestPermit) and coscheduling_test.go (TestPostFilter,
TestPermit, TestLess), plus Berth's waiting-pods map."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from berth.framework.plugin import CycleState, Handle
from berth.framework.ports import Ports
from berth.framework.status import Code
from berth.framework.waiting import WaitingPod, timeout_message
from berth.objects.pod import POD_GROUP_LABEL, PodInfo
from berth.plugins.coscheduling import Coscheduling, CoschedulingArgs
from berth.run.queue import SchedulingQueue
from tests.builders import make_state, node, parsed, pod


def pg(name: str, min_member: int, *, timeout: int | None = None, **min_res: str) -> dict[str, Any]:
    spec: dict[str, Any] = {"minMember": min_member}
    if timeout is not None:
        spec["scheduleTimeoutSeconds"] = timeout
    if min_res:
        spec["minResources"] = dict(min_res)
    return {
        "apiVersion": "scheduling.x-k8s.io/v1alpha1",
        "kind": "PodGroup",
        "metadata": {"name": name, "namespace": "default"},
        "spec": spec,
    }


def member(name: str, group: str = "pg", *, node_name: str = "", cpu: str = "1") -> dict[str, Any]:
    return pod(name, cpu=cpu, labels={POD_GROUP_LABEL: group}, node_name=node_name)


def plugin(
    groups: list[dict[str, Any]],
    *,
    pods: list[dict[str, Any]] = (),  # type: ignore[assignment]
    total: int | None = None,
    nodes: int = 2,
    cpu: str = "4",
    args: CoschedulingArgs | None = None,
) -> Coscheduling:
    state = make_state([node(f"n{i}", cpu=cpu) for i in range(nodes)], list(pods))
    ports = Ports()
    for g in groups:
        ports.pod_groups.upsert(g)
    for i in range(total or 0):  # the group's pods as the pod lister counts them
        ports.pod_groups.join(f"default/member-{i}", "default/pg")
    return Coscheduling(args=args or CoschedulingArgs(), handle=Handle(state=state, ports=ports))


def plain(name: str) -> PodInfo:
    return parsed(pod(name, cpu="1"))


# ----- PreFilter (core_test.go TestPreFilter) ---------------------------------------------------
PRE_FILTER_CASES = [
    ("pod does not belong to any pg", plain("p"), [pg("pg", 2)], 0, {}, None),
    ("pod belongs to a non-existing pg", parsed(member("p", "wontexist")), [], 0, {}, None),
    (
        "pod count less than minMember",
        parsed(member("p")),
        [pg("pg", 2)],
        1,
        {},
        "pre-filter pod p cannot find enough sibling pods, current pods number: 1, "
        "minMember of group: 2",
    ),
    ("pod count equal minMember", parsed(member("p")), [pg("pg", 2)], 2, {}, None),
    (
        "cluster resource enough, min Resource",
        parsed(member("p")),
        [pg("pg", 2, cpu="4")],
        2,
        {},
        None,
    ),
    (
        "cluster resource not enough, min Resource",
        parsed(member("p")),
        [pg("pg", 2, cpu="20")],
        2,
        {},
        "resource gap: cpu:12000",
    ),
    (
        "cluster pods not enough for minMember",
        parsed(member("p")),
        [pg("pg", 300, cpu="1")],
        300,
        {},
        "resource gap: pods:80",
    ),
]


@pytest.mark.parametrize(
    ("name", "p", "groups", "total", "extra", "want"),
    PRE_FILTER_CASES,
    ids=[c[0] for c in PRE_FILTER_CASES],
)
def test_pre_filter(
    name: str, p: PodInfo, groups: list[dict[str, Any]], total: int, extra: Any, want: str | None
) -> None:
    cs = plugin(groups, total=total)
    _, status = cs.pre_filter(CycleState(), p)
    if want is None:
        assert status.ok, status
    else:
        assert status.code == Code.UNSCHEDULABLE_AND_UNRESOLVABLE
        assert status.message == want


def test_pre_filter_min_resources_ignores_the_groups_own_pods() -> None:
    # 2 nodes x 4 cpu; 3 cpu already used by the group itself: still enough for minResources 8.
    cs = plugin([pg("pg", 2, cpu="8")], pods=[member("a", node_name="n0", cpu="3")], total=2)
    _, status = cs.pre_filter(CycleState(), parsed(member("p")))
    assert status.ok, status


def test_pre_filter_denies_a_group_that_failed_recently() -> None:
    """core_test.go "pg was previously denied"; coscheduling_test.go podGroupBackoff."""
    clock = [100.0]
    cs = plugin([pg("pg", 3)], total=3, args=CoschedulingArgs(podGroupBackoffSeconds=10))
    cs.clock = lambda: clock[0]
    p = parsed(member("p"))
    _, status = cs.post_filter(CycleState(), p, None)
    assert status.code == Code.UNSCHEDULABLE
    _, status = cs.pre_filter(CycleState(), p)
    assert status.code == Code.UNSCHEDULABLE_AND_UNRESOLVABLE
    assert status.message == "podGroup default/pg failed recently"
    clock[0] += 10
    _, status = cs.pre_filter(CycleState(), p)
    assert status.ok


def test_no_backoff_by_default() -> None:
    cs = plugin([pg("pg", 3)], total=3)
    p = parsed(member("p"))
    cs.post_filter(CycleState(), p, None)
    _, status = cs.pre_filter(CycleState(), p)
    assert status.ok


# ----- Permit (core_test.go / coscheduling_test.go TestPermit) ----------------------------------
PERMIT_CASES = [
    ("pod does not belong to any pg, allow", plain("p"), [], [], Code.SUCCESS, 0.0),
    (
        "pod belongs to a non-existing pg",
        parsed(member("p", "wontexist")),
        [],
        [],
        Code.UNSCHEDULABLE,
        0.0,
    ),
    (
        "pod belongs to a pg that doesn't have enough pods",
        parsed(member("p")),
        [pg("pg", 3)],
        [member("a", node_name="n0")],
        Code.WAIT,
        60.0,
    ),
    (
        "pg's scheduleTimeoutSeconds wins over the default",
        parsed(member("p")),
        [pg("pg", 3, timeout=7)],
        [],
        Code.WAIT,
        7.0,
    ),
    (
        "pod belongs to a pg that has enough pods",
        parsed(member("p")),
        [pg("pg", 3)],
        [member("a", node_name="n0"), member("b", node_name="n1")],
        Code.SUCCESS,
        0.0,
    ),
]


@pytest.mark.parametrize(
    ("name", "p", "groups", "placed", "code", "timeout"),
    PERMIT_CASES,
    ids=[c[0] for c in PERMIT_CASES],
)
def test_permit(
    name: str,
    p: PodInfo,
    groups: list[dict[str, Any]],
    placed: list[dict[str, Any]],
    code: Code,
    timeout: float,
) -> None:
    cs = plugin(groups, pods=placed)
    status, wait = cs.permit(CycleState(), p, "n0")
    assert status.code == code
    assert wait == timeout
    if code == Code.UNSCHEDULABLE:
        assert status.message == "PodGroup not found"


def test_permit_allows_the_waiting_siblings() -> None:
    cs = plugin([pg("pg", 2)])
    a = parsed(member("a"))
    cs.state.assume_pod(a, "n0")
    waiting = WaitingPod(pod=a, node="n0", cycle=CycleState(), pending={"Coscheduling": 60.0})
    cs.handle.ports.waiting_pods.add(waiting)
    status, _ = cs.permit(CycleState(), parsed(member("b")), "n1")
    assert status.ok
    assert waiting.result is not None and waiting.result.ok


# ----- PostFilter (coscheduling_test.go TestPostFilter) -----------------------------------------
def _waiting(cs: Coscheduling, name: str, group: str = "pg") -> WaitingPod:
    p = parsed(member(name, group))
    cs.state.assume_pod(p, "n0")
    w = WaitingPod(pod=p, node="n0", cycle=CycleState(), pending={"Coscheduling": 60.0})
    cs.handle.ports.waiting_pods.add(w)
    return w


def test_post_filter_pod_of_no_group() -> None:
    cs = plugin([])
    _, status = cs.post_filter(CycleState(), plain("p"), None)
    assert status.code == Code.UNSCHEDULABLE
    assert status.message == "can not find pod group"


def test_post_filter_enough_pods_assigned_do_not_reject_all() -> None:
    cs = plugin([pg("pg", 1)])
    w = _waiting(cs, "a")
    _, status = cs.post_filter(CycleState(), parsed(member("p")), None)
    assert status.code == Code.UNSCHEDULABLE and not status.reasons
    assert not w.done


def test_post_filter_rejects_all_waiting_pods_of_the_group() -> None:
    cs = plugin([pg("pg", 4), pg("other", 4)])
    a, b, c = _waiting(cs, "a"), _waiting(cs, "b"), _waiting(cs, "c", "other")
    _, status = cs.post_filter(CycleState(), parsed(member("p")), None)
    assert status.message == (
        "PodGroup default/pg gets rejected due to Pod p is unschedulable even after PostFilter"
    )
    for w in (a, b):
        assert w.result is not None and w.result.code == Code.UNSCHEDULABLE
        assert w.result.message == "optimistic rejection in PostFilter"
        assert w.result.plugin == "Coscheduling"
    assert not c.done


def test_post_filter_small_gap_does_not_reject() -> None:
    """9 of minMember 10 assigned: a 10% gap, later pods may complete the group."""
    cs = plugin([pg("pg", 10)])
    ws = [_waiting(cs, f"w{i}") for i in range(9)]
    _, status = cs.post_filter(CycleState(), parsed(member("p")), None)
    assert status.code == Code.UNSCHEDULABLE and not status.reasons
    assert not any(w.done for w in ws)


def test_unreserve_rejects_waiting_siblings() -> None:
    cs = plugin([pg("pg", 3)])
    a = _waiting(cs, "a")
    cs.unreserve(CycleState(), parsed(member("b")), "n1")
    assert a.result is not None and a.result.message == "rejection in Unreserve"


def test_rejected_waiting_pods_are_not_counted_as_assigned() -> None:
    """A sibling rejected but not yet released by its front must not complete the group."""
    cs = plugin([pg("pg", 3)])
    _waiting(cs, "a")
    _waiting(cs, "b")
    cs.reject_waiting("default/pg", "gone")
    status, _ = cs.permit(CycleState(), parsed(member("c")), "n1")
    assert status.code == Code.WAIT


# ----- the waiting-pods map -----------------------------------------------------------------------
def test_waiting_pod_times_out_with_upstreams_message() -> None:
    w = WaitingPod(pod=plain("p"), node="n0", cycle=CycleState(), pending={"Coscheduling": 0.01})
    status = asyncio.run(w.wait())
    assert status.code == Code.UNSCHEDULABLE
    assert status.message == "rejected due to timeout after waiting 0.01s at plugin Coscheduling"
    assert timeout_message(60, "Coscheduling") == (
        "rejected due to timeout after waiting 60s at plugin Coscheduling"
    )


def test_waiting_pod_allowed_while_awaited() -> None:
    w = WaitingPod(pod=plain("p"), node="n0", cycle=CycleState(), pending={"X": 5.0, "Y": 5.0})

    async def scenario() -> Any:
        task = asyncio.ensure_future(w.wait())
        await asyncio.sleep(0)
        w.allow("X")
        await asyncio.sleep(0)
        assert not task.done()  # Y still holds it
        w.allow("Y")
        return await task

    assert asyncio.run(scenario()).ok


# ----- QueueSort (coscheduling_test.go TestLess) ------------------------------------------------
LONE_CREATED = {"creationTimestamp": "2026-01-01T00:00:07Z"}  # between the two groups


def test_group_order_keeps_members_adjacent() -> None:
    """Priority first, then the PodGroup's creation time (the pod's own without a group), then
    the group's name: the queue pops a group's members one after another."""
    groups = [pg("pg1", 2), pg("pg2", 2)]
    groups[0]["metadata"]["creationTimestamp"] = "2026-01-01T00:00:10Z"
    groups[1]["metadata"]["creationTimestamp"] = "2026-01-01T00:00:05Z"
    cs = plugin(groups)
    q = SchedulingQueue()
    q.order = cs.sort_key
    pods = [
        parsed(member("a1", "pg1")),
        parsed(member("b1", "pg2")),
        parsed({**pod("lone", cpu="1"), "metadata": {**pod("lone")["metadata"], **LONE_CREATED}}),
        parsed(member("a2", "pg1")),
        parsed(member("b2", "pg2")),
        parsed({**pod("high", cpu="1", priority=10)}),
    ]
    for p in pods:
        q.add(p)

    async def drain() -> list[str]:
        out = []
        for _ in pods:
            e = await q.pop()
            assert e is not None
            out.append(e.pod.name)
        return out

    assert asyncio.run(drain()) == ["high", "b1", "b2", "lone", "a1", "a2"]
