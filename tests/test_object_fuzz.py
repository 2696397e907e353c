"""Malformed objects are reported, never crash: parse_pod / parse_node on mutated real-shaped
objects either parse or raise ObjectError (what `berth run` turns into a FailedScheduling event
and `berth simulate` into an error line) — never TypeError, KeyError, AttributeError..."""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from berth.objects import ObjectError, parse_node, parse_pod
from tests.fuzzing import STORAGE, mutated, rich_node, rich_pod

POD, NODE = rich_pod(), rich_node()


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_a_mutated_pod_parses_or_raises_object_error(data: st.DataObject) -> None:
    try:
        parse_pod(mutated(data, POD))
    except ObjectError as exc:
        assert exc.field is not None and exc.reason


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_a_mutated_node_parses_or_raises_object_error(data: st.DataObject) -> None:
    try:
        parse_node(mutated(data, NODE))
    except ObjectError as exc:
        assert exc.field is not None and exc.reason


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(sorted(STORAGE)), st.data())
def test_a_mutated_storage_object_is_ignored_with_a_warning_not_a_crash(
    kind: str, data: st.DataObject
) -> None:
    """The informers and `berth simulate` hand storage objects to the feed, which reports and
    drops what the volume store cannot parse; a malformed object must never raise out of it."""
    from berth.feed import Feed, FeedListener
    from berth.framework.ports import Ports
    from berth.state.cluster import ClusterState

    reported: list[ObjectError] = []

    class Listener(FeedListener):
        def malformed(
            self, kind: str, raw: dict[str, Any], error: ObjectError, *, pending: bool = False
        ) -> None:
            reported.append(error)

    feed = Feed(
        state=ClusterState(), ports=Ports(), responsible=lambda _: True, listener=Listener()
    )
    raw = mutated(data, STORAGE[kind])
    feed.apply(kind, None, raw)
    for error in reported:
        assert error.kind == kind and error.reason
