"""The embedded cluster's time decoding against the real one's: every row of
tests/cluster/data/gotime_cases.json is what metav1.Time / metav1.MicroTime's UnmarshalJSON
(k8s.io/apimachinery, the release Berth follows) answered for a string, recorded by
upstream/gotime/gen_cases.sh: Go's error text, or the value MarshalJSON writes back."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from berth.cluster import gotime
from berth.cluster.timestamps import format_time

CASES: list[dict[str, Any]] = json.loads(
    (Path(__file__).parent / "data" / "gotime_cases.json").read_text()
)
LAYOUTS = {"Time": gotime.RFC3339, "MicroTime": gotime.RFC3339_MICRO}


def test_the_recording_covers_both_outcomes() -> None:
    for kind in LAYOUTS:
        rows = [c for c in CASES if c["type"] == kind]
        assert sum("error" in c for c in rows) >= 20 and sum("encoded" in c for c in rows) >= 5


@pytest.mark.parametrize("case", CASES, ids=[f"{c['type']} {c['value']!r}" for c in CASES])
def test_decoding_is_gos(case: dict[str, Any]) -> None:
    layout = LAYOUTS[case["type"]]
    assert gotime.parse_error(layout, case["value"]) == case.get("error")
    if "encoded" in case and gotime.parse(layout, case["value"]) is not None:
        # what the server stores for a time field it re-encodes
        assert format_time(case["value"], micro=case["type"] == "MicroTime") == case["encoded"]
