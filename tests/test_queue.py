"""The scheduling queue: upstream PriorityQueue behaviour with a fake clock."""

from __future__ import annotations

import asyncio

import pytest

from berth.framework.events import (
    ASSIGNED_POD_ADD,
    NODE_ADD,
    UNSCHEDULABLE_POD,
    ActionType,
    ClusterEvent,
)
from berth.objects import parse_pod
from berth.run.queue import (
    ACTIVE,
    BACKOFF,
    GATED,
    PARKED,
    UNSCHEDULABLE,
    QueuedPod,
    SchedulingQueue,
)
from tests.builders import pod


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def make(clock: Clock, **kw: float) -> SchedulingQueue:
    return SchedulingQueue(clock=clock, **kw)


def p(name: str, priority: int = 0):  # type: ignore[no-untyped-def]
    return parse_pod(pod(name, priority=priority))


def pop_now(q: SchedulingQueue) -> str | None:
    entry = asyncio.run(asyncio.wait_for(q.pop(), timeout=1))
    return entry.key if entry else None


def test_active_queue_orders_by_priority_then_age() -> None:
    clock = Clock()
    q = make(clock)
    for name, prio in (("low-old", 0), ("high", 10), ("low-new", 0), ("mid", 5)):
        q.add(p(name, prio))
        clock.now += 1

    async def drain() -> list[str]:
        out = []
        for _ in range(4):
            e = await q.pop()
            assert e is not None
            out.append(e.pod.name)
        return out

    assert asyncio.run(drain()) == ["high", "mid", "low-old", "low-new"]


@pytest.mark.parametrize(
    ("attempts", "want"), [(1, 1.0), (2, 2.0), (3, 4.0), (4, 8.0), (5, 10.0), (9, 10.0)]
)
def test_backoff_doubles_up_to_the_maximum(attempts: int, want: float) -> None:
    q = make(Clock(), initial_backoff=1.0, max_backoff=10.0)
    assert q.backoff_duration(attempts) == want


def test_unschedulable_pod_waits_for_an_event() -> None:
    clock = Clock()
    q = make(clock)
    q.add(p("a"))

    async def run() -> None:
        entry = await q.pop()
        assert entry is not None
        q.requeue_unschedulable(entry, plugins={"NodeResourcesFit"})
        assert q.get("default/a").where == UNSCHEDULABLE  # type: ignore[union-attr]
        # an event for other plugins does not move it
        assert q.move_all(ASSIGNED_POD_ADD, only_plugins={"InterPodAffinity"}) == 0
        clock.now += 0.5
        assert q.move_all(NODE_ADD) == 1
        # still within its 1 s backoff: goes to backoff, not active
        assert q.get("default/a").where == BACKOFF  # type: ignore[union-attr]
        clock.now += 1.0
        q.flush_backoff()
        assert q.get("default/a").where == ACTIVE  # type: ignore[union-attr]

    asyncio.run(run())


def test_event_during_the_cycle_sends_the_pod_to_backoff() -> None:
    clock = Clock()
    q = make(clock)
    q.add(p("a"))

    async def run() -> None:
        entry = await q.pop()
        assert entry is not None
        q.move_all(NODE_ADD)  # arrives while the pod is being tried
        q.requeue_unschedulable(entry, plugins={"NodeResourcesFit"})
        assert q.get("default/a").where == BACKOFF  # type: ignore[union-attr]

    asyncio.run(run())


def test_unschedulable_pods_are_retried_after_the_maximum_wait() -> None:
    clock = Clock()
    q = make(clock, max_unschedulable_seconds=300)
    q.add(p("a"))

    async def run() -> None:
        entry = await q.pop()
        assert entry is not None
        q.requeue_unschedulable(entry, plugins={"NodeResourcesFit"})
        clock.now += 299
        assert q.flush_unschedulable() == 0
        clock.now += 2
        assert q.flush_unschedulable() == 1
        assert q.get("default/a").where == ACTIVE  # type: ignore[union-attr]

    asyncio.run(run())


def test_update_of_an_unschedulable_pod_retries_it_and_delete_forgets_it() -> None:
    clock = Clock()
    q = make(clock)
    q.add(p("a"))

    async def run() -> None:
        entry = await q.pop()
        assert entry is not None
        q.requeue_unschedulable(entry, plugins={"NodeResourcesFit"})
        clock.now += 5
        q.update(p("a", priority=3))
        assert q.get("default/a").where == ACTIVE  # type: ignore[union-attr]
        assert q.get("default/a").pod.priority == 3  # type: ignore[union-attr]
        q.delete("default/a")
        assert "default/a" not in q
        assert q.counts() == {
            "active": 0,
            "backoff": 0,
            "unschedulable": 0,
            "gated": 0,
            "inFlight": 0,
        }

    asyncio.run(run())


def test_a_deleted_pod_is_never_popped() -> None:
    q = make(Clock())
    q.add(p("gone"))
    q.add(p("kept"))
    q.delete("default/gone")
    assert pop_now(q) == "default/kept"


def test_pop_returns_none_once_closed() -> None:
    q = make(Clock())

    async def run() -> None:
        waiter = asyncio.create_task(q.pop())
        await asyncio.sleep(0.01)
        q.close()
        assert await asyncio.wait_for(waiter, timeout=1) is None

    asyncio.run(run())


def test_backoff_pod_becomes_poppable_when_its_time_comes() -> None:
    q = SchedulingQueue(initial_backoff=0.05, max_backoff=0.1)
    q.add(p("a"))

    async def run() -> None:
        entry = await q.pop()
        assert entry is not None
        q.requeue_backoff(entry)
        again = await asyncio.wait_for(q.pop(), timeout=2)
        assert again is entry and again.attempts == 2

    asyncio.run(run())


def test_parked_index_follows_every_transition() -> None:
    """move_all/flush_unschedulable scan an index of the unschedulable and gated pods, not
    every entry; random operations must keep it equal to the entries parked there."""
    import random

    rng = random.Random(7)
    clock = Clock()
    q = _gates_queue(clock)
    q.max_unschedulable_seconds = 50.0
    names = [f"p{i}" for i in range(12)]
    keys = [f"default/{n}" for n in names]
    in_flight: dict[str, QueuedPod] = {}
    seen: set[str] = set()

    async def step() -> None:
        op = rng.randrange(7)
        name = rng.choice(names)
        gates = ("x",) if rng.random() < 0.25 else ()
        if op == 0:
            q.add(g(name, *gates, priority=rng.randrange(3)))
        elif op == 1:
            q.update(g(name, *gates, priority=rng.randrange(3)))
        elif op == 2:
            q.delete(f"default/{name}")
            in_flight.pop(f"default/{name}", None)
        elif op == 3 and q.counts()[ACTIVE]:
            entry = await asyncio.wait_for(q.pop(), timeout=1)
            assert entry is not None
            in_flight[entry.key] = entry
        elif op == 4 and in_flight:
            entry = in_flight.pop(rng.choice(sorted(in_flight)))
            if rng.random() < 0.7:
                q.requeue_unschedulable(entry, plugins={rng.choice(["A", "B"])})
            else:
                q.requeue_backoff(entry)
        elif op == 5:
            only = rng.choice([None, {"A"}, {"B"}, {"SchedulingGates"}])
            q.move_all(NODE_ADD, only_plugins=only)
        else:
            clock.now += rng.choice([0.5, 5.0, 60.0])
            q.flush_backoff()
            q.flush_unschedulable()
        want = {k for k in keys if (e := q.get(k)) is not None and e.where in PARKED}
        assert set(q._parked) == want
        indexed = {(p, k) for p, bucket in q._by_plugin.items() for k in bucket}
        assert indexed == {(p, k) for k in want for p in q._parked[k].indexed}
        for k in want:
            assert q._parked[k].indexed == frozenset(q._parked[k].unschedulable_plugins or {""})
        seen.update(f"{q._parked[k].where}:{k}" for k in want)

    async def run() -> None:
        for _ in range(3000):
            await step()

    asyncio.run(run())
    # the walk did park pods both ways
    assert sum(s.startswith(UNSCHEDULABLE) for s in seen) > 4
    assert sum(s.startswith(GATED) for s in seen) > 4


# --- PreEnqueue: gated pods (upstream moveToActiveQ / runPreEnqueuePlugins) ---------------------
def _gates_queue(clock: Clock) -> SchedulingQueue:
    from berth.config import parse_config
    from berth.engine import Engine

    q = make(clock, max_unschedulable_seconds=300)
    fwk = Engine(config=parse_config({})).schedulers["berth"].framework
    q.pre_enqueue = fwk.run_pre_enqueue
    q.set_registrations({p.name: p.events_to_register() for p in (*fwk.pre_enqueue, *fwk.filter)})
    return q


def g(name: str, *gates: str, priority: int = 0):  # type: ignore[no-untyped-def]
    raw = pod(name, priority=priority)
    if gates:
        raw["spec"]["schedulingGates"] = [{"name": x} for x in gates]
    return parse_pod(raw)


@pytest.mark.parametrize(
    ("name", "steps", "want_where", "want_pops"),
    [
        ("ungated pod enters the active queue", [("add", ())], ACTIVE, ["a"]),
        ("gated pod is held out", [("add", ("x",))], GATED, []),
        (
            "removing one of two gates keeps it gated",
            [("add", ("x", "y")), ("update", ("y",))],
            GATED,
            [],
        ),
        ("removing the last gate lets it in", [("add", ("x",)), ("update", ())], ACTIVE, ["a"]),
        (
            "cluster events do not move a gated pod",
            [("add", ("x",)), ("move_all", ()), ("move_all_gates", ())],
            GATED,
            [],
        ),
        (
            "an event naming the gating plugin re-checks it",
            [("add", ("x",)), ("update_keep", ()), ("move_all_gates", ())],
            GATED,
            [],
        ),
    ],
)
def test_gated_pods(
    name: str, steps: list[tuple[str, tuple[str, ...]]], want_where: str, want_pops: list[str]
) -> None:
    clock = Clock()
    q = _gates_queue(clock)
    for op, gates in steps:
        if op == "add":
            q.add(g("a", *gates))
        elif op == "update":
            q.update(g("a", *gates))
        elif op == "update_keep":
            q.update(q.get("default/a").pod)  # type: ignore[union-attr]
        elif op == "move_all":
            assert q.move_all(NODE_ADD) == 0
        elif op == "move_all_gates":
            gates_gone = ActionType.UPDATE_POD_SCHEDULING_GATES_ELIMINATED
            q.move_all(ClusterEvent(UNSCHEDULABLE_POD, gates_gone))
    entry = q.get("default/a")
    assert entry is not None and entry.where == want_where, name
    counts = q.counts()
    assert counts[GATED] == (1 if want_where == GATED else 0)
    if want_where == GATED:
        assert entry.gate is not None and entry.gate.plugin == "SchedulingGates"
        assert entry.gate.message.startswith("waiting for scheduling gates: [")
        assert entry.attempts == 0  # never tried
    if want_pops:
        assert [pop_now(q)] == [f"default/{n}" for n in want_pops], name
    else:
        assert counts[ACTIVE] == 0, name


def test_gated_pod_is_not_popped_and_others_are() -> None:
    clock = Clock()
    q = _gates_queue(clock)
    q.add(g("high-gated", "x", priority=100))
    q.add(g("low"))
    assert pop_now(q) == "default/low"
    assert q.counts() == {"active": 0, "backoff": 0, "unschedulable": 0, "gated": 1, "inFlight": 1}
    # the periodic flush re-checks a gated pod; it stays gated while its gates are there
    clock.now += 301
    assert q.flush_unschedulable() == 0
    assert q.get("default/high-gated").where == GATED  # type: ignore[union-attr]
    q.update(g("high-gated", priority=100))
    assert pop_now(q) == "default/high-gated"
    q.delete("default/low")
    q.delete("default/high-gated")
    assert sum(q.counts().values()) == 0


def test_gated_pod_deleted_is_forgotten() -> None:
    q = _gates_queue(Clock())
    q.add(g("a", "x"))
    q.delete("default/a")
    assert "default/a" not in q
    q.update(g("a"))  # a late update of a deleted pod adds it anew, ungated
    assert q.get("default/a").where == ACTIVE  # type: ignore[union-attr]


def test_the_sli_starts_when_the_pod_first_enters_the_active_queue() -> None:
    """upstream's InitialAttemptTimestamp (moveToActiveQ): the SLI counts the wait in the
    queue, not only the attempts; gated time is not counted; later attempts keep it."""
    clock = Clock()
    q = _gates_queue(clock)
    q.add(g("a"))
    q.add(g("b", "x"))
    clock.now += 7  # both wait: a in the active queue, b gated
    entry = asyncio.run(asyncio.wait_for(q.pop(), timeout=1))
    assert entry is not None and entry.key == "default/a"
    assert entry.initial_attempt == 1000.0
    q.update(g("b"))  # its last gate removed: it enters the active queue now
    b = q.get("default/b")
    assert b is not None and b.initial_attempt == 1007.0
    clock.now += 1
    q.requeue_backoff(entry)
    clock.now += 5
    q.flush_backoff()
    assert q.get("default/a").initial_attempt == 1000.0  # type: ignore[union-attr]
