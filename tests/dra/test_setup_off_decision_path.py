"""DRA's one-time set-up happens before the decision that needs it, not inside it.

A DeviceClass's CEL selectors are compiled when the informer delivers the class (recompiled on
an update, dropped on a deletion); `prepare` (what the fronts run once their caches have synced
and when idle) builds the device table and what each class's selectors accept, so the decision
after it neither compiles nor evaluates a selector. A class updated after that is not answered
from the table's stale matches. A set-up that fails is logged and left to the decision. Fixtures
are upstream's (dynamicresources_test.go), as in
tests/plugins/test_upstream_dynamicresources.py.
"""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from berth.dra.cel import compile_selector
from berth.framework.status import Code
from tests.plugins.test_upstream_dynamicresources import (
    CLASS,
    DRIVER,
    NODE,
    Harness,
    claim,
    device_class,
    node_slice,
    pod_with_claim_name,
    worker,
)


def fresh(expression: str) -> str:
    """`expression` with a literal no other test uses, so compile_selector's cache misses it."""
    return f'{expression} || "{uuid.uuid4()}" == ""'


SELECT_DRIVER = fresh(f'device.driver == "{DRIVER}"')
SELECT_OTHER = fresh('device.driver == "other-driver"')


@pytest.mark.parametrize(
    ("row", "ops", "want"),
    [
        ("class added: its selectors compiled", [("add", [SELECT_DRIVER])], [SELECT_DRIVER]),
        (
            "class updated: compiled anew",
            [("add", [SELECT_DRIVER]), ("add", [SELECT_OTHER])],
            [SELECT_OTHER],
        ),
        ("class deleted: dropped", [("add", [SELECT_DRIVER]), ("delete", [])], None),
        ("class without selectors", [("add", [])], []),
    ],
)
def test_class_selectors_compiled_on_delivery(
    row: str, ops: list[tuple[str, list[str]]], want: list[str] | None
) -> None:
    h = Harness([worker()], [])
    for op, selectors in ops:
        if op == "add":
            h.dra.upsert(device_class(selectors))
        else:
            h.dra.delete(device_class())
    if want is None:
        assert CLASS not in h.dra.compiled
        return
    compiled = h.dra.compiled[CLASS]
    assert [c.expression for c in compiled] == want
    assert all(c.error is None and c.program is not None for c in compiled)


def test_a_selector_that_does_not_compile_keeps_its_error() -> None:
    h = Harness([worker()], [device_class(["device.driver =="])])
    (compiled,) = h.dra.compiled[CLASS]
    assert compiled.program is None
    assert compiled.error is not None and compiled.error.startswith("compilation failed")


def objects(selector: str) -> list[dict[str, Any]]:
    return [
        claim(),
        device_class([selector]),
        node_slice(NODE, {"name": "instance-1"}, {"name": "instance-2"}),
    ]


@pytest.mark.parametrize(("row", "prepared"), [("prepared", True), ("not prepared", False)])
def test_decision_after_prepare_compiles_and_evaluates_nothing(row: str, prepared: bool) -> None:
    selector = fresh(f'device.driver == "{DRIVER}"')
    misses = compile_selector.cache_info().misses
    h = Harness([worker()], objects(selector))
    assert compile_selector.cache_info().misses == misses + 1  # at delivery
    if prepared:
        h.plugin.prepare()
    evaluations = h.dra.match_cache.evaluations
    misses = compile_selector.cache_info().misses
    assert h.pre_filter(pod_with_claim_name()).ok
    assert h.filter()[NODE].ok
    assert compile_selector.cache_info().misses == misses
    # one distinct device shape: one evaluation, in the decision only when not prepared
    assert h.dra.match_cache.evaluations - evaluations == (0 if prepared else 1)


@pytest.mark.parametrize(("row", "prepare_again"), [("prepared again", True), ("not", False)])
def test_class_updated_after_prepare_is_matched_anew(row: str, prepare_again: bool) -> None:
    h = Harness([worker()], objects(fresh(f'device.driver == "{DRIVER}"')))
    h.plugin.prepare()
    h.dra.upsert(device_class([SELECT_OTHER]))  # no device of the class any more
    if prepare_again:
        h.plugin.prepare()
    assert h.pre_filter(pod_with_claim_name()).ok
    status = h.filter()[NODE]
    assert (status.code, status.reasons) == (
        Code.UNSCHEDULABLE_AND_UNRESOLVABLE,
        ("cannot allocate all claims",),
    )


def test_a_failure_to_compile_ahead_keeps_the_class(monkeypatch: pytest.MonkeyPatch) -> None:
    """A broken CEL environment is a bug, not the class's fault: the class is still served, and
    the decision that needs its selectors compiles them itself."""
    import berth.state.dra as dra_state

    def broken(expression: str) -> Any:
        raise RuntimeError("no CEL environment")

    monkeypatch.setattr(dra_state, "compile_selector", broken)
    h = Harness([worker()], objects(SELECT_DRIVER))
    assert CLASS in h.dra.classes and CLASS not in h.dra.compiled
    monkeypatch.undo()
    assert h.pre_filter(pod_with_claim_name()).ok
    assert h.filter()[NODE].ok


def test_engine_prepare_survives_a_plugin_whose_set_up_fails(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    from berth.engine import Engine
    from berth.plugins.dynamicresources import DynamicResources

    def broken(self: DynamicResources) -> None:
        raise RuntimeError("broken table")

    monkeypatch.setattr(DynamicResources, "prepare", broken)
    engine = Engine()
    with caplog.at_level("ERROR", logger="berth.engine"):
        engine.prepare()  # every other plugin still prepared; nothing raised
        engine.prepare()  # the next idle moment: the same failure is not logged again
    assert [r.getMessage() for r in caplog.records] == ["plugin set-up failed"]
