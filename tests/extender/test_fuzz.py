"""kube-scheduler's calls with malformed payloads: every verb answers JSON (200 with `Error`
where upstream reads it so, or a 4xx), never a 500 or a dropped connection."""

from __future__ import annotations

import asyncio
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.builders import node
from tests.extender.conftest import args, post, serving
from tests.fuzzing import mutated, rich_node, rich_pod

BASE: dict[str, Any] = {
    **args(rich_pod(), rich_node(), node("m")),
    "NodeNameToVictims": {"n": {"Pods": [rich_pod()], "NumPDBViolations": 0}},
    "PodName": "p",
    "PodNamespace": "default",
    "PodUID": "u",
    "Node": "n",
}


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(["filter", "prioritize", "preempt", "bind"]), st.data())
def test_a_mutated_call_gets_json_never_a_500(verb: str, data: st.DataObject) -> None:
    body = mutated(data, BASE)

    async def main() -> tuple[int, Any]:
        async with serving() as (url, _):
            return await post(f"{url}/{verb}", body)

    code, out = asyncio.run(main())
    assert code < 500, out
    assert isinstance(out, dict | list), out
