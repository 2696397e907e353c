"""Gang scheduling offline: `berth simulate` with Coscheduling enabled places a PodGroup whole or
not at all, and two groups competing for the same room never deadlock."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from berth.objects.pod import POD_GROUP_LABEL
from tests.builders import node, pod
from tests.test_simulate import as_list, lines, run

CONFIG = {
    "apiVersion": "berth.io/v1alpha1",
    "kind": "BerthConfiguration",
    "profiles": [
        {
            "schedulerName": "berth",
            "plugins": {"multiPoint": {"enabled": [{"name": "Coscheduling"}]}},
            "pluginConfig": [{"name": "Coscheduling", "args": {"permitWaitingTimeSeconds": 30}}],
        }
    ],
}


def podgroup(name: str, min_member: int, created: str = "2024-01-01T00:00:00Z") -> dict[str, Any]:
    return {
        "apiVersion": "scheduling.x-k8s.io/v1alpha1",
        "kind": "PodGroup",
        "metadata": {"name": name, "namespace": "default", "creationTimestamp": created},
        "spec": {"minMember": min_member},
    }


def member(name: str, group: str, *, cpu: str = "1", created: str = "") -> dict[str, Any]:
    raw = pod(name, cpu=cpu, labels={POD_GROUP_LABEL: group})
    if created:
        raw["metadata"]["creationTimestamp"] = created
    return raw


def simulate(tmp_path: Path, *items: dict[str, Any]) -> dict[str, dict[str, Any]]:
    cfg = tmp_path / "berth.yaml"
    cfg.write_text(yaml.safe_dump(CONFIG))
    result = run(["simulate", "-", "-o", "json", "--config", str(cfg)], stdin=as_list(*items))
    assert result.exit_code == 0, result.output
    return {d["pod"]: d for d in lines(result.output)}


def test_group_of_three_with_room_for_two_places_none(tmp_path: Path) -> None:
    out = simulate(
        tmp_path,
        node("n1", cpu="2"),
        podgroup("g", 3),
        *(member(f"g-{i}", "g") for i in range(3)),
    )
    assert [d["node"] for d in out.values()] == [None, None, None]
    # The member that fit nowhere says why; the two held at Permit were released by PostFilter.
    assert "PodGroup default/g gets rejected due to Pod g-2" in out["default/g-2"]["message"]
    for name in ("g-0", "g-1"):
        assert out[f"default/{name}"]["message"] == (
            "Coscheduling: optimistic rejection in PostFilter"
        )


def test_group_of_three_with_room_for_three_places_all(tmp_path: Path) -> None:
    out = simulate(
        tmp_path,
        node("n1", cpu="2"),
        node("n2", cpu="1"),
        podgroup("g", 3),
        *(member(f"g-{i}", "g") for i in range(3)),
    )
    assert sorted(d["node"] for d in out.values()) == ["n1", "n1", "n2"]


def test_interleaved_groups_one_whole_the_other_pending(tmp_path: Path) -> None:
    # Room for 4 one-cpu pods; two groups of 3 whose pods were created interleaved.
    items: list[dict[str, Any]] = [node("n1", cpu="2"), node("n2", cpu="2")]
    items += [podgroup("a", 3, "2024-01-01T00:00:00Z"), podgroup("b", 3, "2024-01-01T00:00:01Z")]
    for i in range(3):
        items.append(member(f"b-{i}", "b", created=f"2024-01-01T00:01:0{2 * i}Z"))
        items.append(member(f"a-{i}", "a", created=f"2024-01-01T00:01:0{2 * i + 1}Z"))
    out = simulate(tmp_path, *items)
    placed = {k for k, d in out.items() if d["node"]}
    assert placed == {"default/a-0", "default/a-1", "default/a-2"}
    assert all(out[f"default/b-{i}"]["node"] is None for i in range(3))


def test_group_short_of_members_is_pending_with_coscheduling_reason(tmp_path: Path) -> None:
    out = simulate(tmp_path, node("n1"), podgroup("g", 3), member("g-0", "g"), member("g-1", "g"))
    for d in out.values():
        assert d["node"] is None
        assert d["message"].startswith(
            "0/1 nodes are available: pre-filter pod "
            f"{d['pod'].split('/')[1]} cannot find enough sibling pods, current pods number: 2, "
            "minMember of group: 3."
        )


def test_group_never_completed_releases_its_held_pods(tmp_path: Path) -> None:
    """A member that is not ours (another scheduler) counts as a sibling but is never placed:
    the queue ends with the group short of minMember, so the held pods are released."""
    other = member("g-2", "g")
    other["spec"]["schedulerName"] = "someone-else"
    out = simulate(
        tmp_path, node("n1"), podgroup("g", 3), member("g-0", "g"), member("g-1", "g"), other
    )
    assert set(out) == {"default/g-0", "default/g-1"}
    for d in out.values():
        assert d["node"] is None
        assert d["message"] == (
            "Coscheduling: PodGroup default/g did not reach minMember 3 (2 pods could be placed) "
            "before the simulation's queue ended"
        )


def test_pods_without_group_are_unaffected(tmp_path: Path) -> None:
    out = simulate(tmp_path, node("n1"), pod("plain", cpu="1"))
    assert out["default/plain"]["node"] == "n1"
