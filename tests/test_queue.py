"""The scheduling queue: upstream PriorityQueue behaviour with a fake clock."""

from __future__ import annotations

import asyncio

import pytest

from berth.objects import parse_pod
from berth.queue import ACTIVE, BACKOFF, UNSCHEDULABLE, QueuedPod, SchedulingQueue
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
        assert q.move_all(event="AssignedPodAdd", only_plugins={"InterPodAffinity"}) == 0
        clock.now += 0.5
        assert q.move_all(event="NodeAdd") == 1
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
        q.move_all(event="NodeAdd")  # arrives while the pod is being tried
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
        q.requeue_unschedulable(entry, plugins=set())
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
        q.requeue_unschedulable(entry, plugins=set())
        clock.now += 5
        q.update(p("a", priority=3))
        assert q.get("default/a").where == ACTIVE  # type: ignore[union-attr]
        assert q.get("default/a").pod.priority == 3  # type: ignore[union-attr]
        q.delete("default/a")
        assert "default/a" not in q
        assert q.counts() == {"active": 0, "backoff": 0, "unschedulable": 0, "inFlight": 0}

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


def test_unschedulable_index_follows_every_transition() -> None:
    """move_all/flush_unschedulable scan an index of the unschedulable pods, not every entry;
    random operations must keep it equal to the entries whose `where` is unschedulable."""
    import random

    rng = random.Random(7)
    clock = Clock()
    q = make(clock, max_unschedulable_seconds=50.0)
    names = [f"p{i}" for i in range(12)]
    keys = [f"default/{n}" for n in names]
    in_flight: dict[str, QueuedPod] = {}
    seen: set[str] = set()

    async def step() -> None:
        op = rng.randrange(7)
        name = rng.choice(names)
        if op == 0:
            q.add(p(name, rng.randrange(3)))
        elif op == 1:
            q.update(p(name, rng.randrange(3)))
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
            q.move_all(event="NodeAdd", only_plugins=rng.choice([None, {"A"}, {"B"}]))
        else:
            clock.now += rng.choice([0.5, 5.0, 60.0])
            q.flush_backoff()
            q.flush_unschedulable()
        want = {k for k in keys if (e := q.get(k)) is not None and e.where == UNSCHEDULABLE}
        assert set(q._unschedulable) == want
        seen.update(want)

    async def run() -> None:
        for _ in range(3000):
            await step()

    asyncio.run(run())
    assert len(seen) > 6  # the walk did make pods unschedulable
