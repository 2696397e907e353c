"""PVCandidates: the candidates it keeps across decisions equal FindMatchingVolume's
node-independent walk done afresh over every PV of the class, after each of a random run of
changes (PVs assumed bound and restored, updated by the API: phase, size, claimRef, affinity,
deletion; PVs added and deleted; node labels changed), for claims with and without a
selector; and VolumeBinding's `prepare` builds the candidates of the claims waiting, so their
pods' decisions do not."""

from __future__ import annotations

import random
from typing import Any

import pytest

from berth.objects import parse_node
from berth.objects.volumes import PVCInfo, PVInfo, parse_pv, parse_pvc
from berth.plugins.pvcandidates import PVCandidates, is_volume_bound_to_claim
from berth.plugins.storagehelpers import PVNodeMasks
from berth.state.cluster import ClusterState
from berth.state.volumes import VolumeIndex
from tests.builders import node
from tests.plugins.volume_builders import harness, pod_with_claims, pv, pvc, storage_class

HOST = "kubernetes.io/hostname"
CLASS = "local"


def reference(volumes: VolumeIndex, claim: PVCInfo) -> tuple[list[str], list[str]]:
    """upstream FindMatchingVolume's checks that do not depend on the node, in its order, over
    every PV of the class by name: (pre-bound PVs, the others smallest first)."""
    prebound: list[PVInfo] = []
    others: list[PVInfo] = []
    for v in volumes.pvs_of_class(claim.storage_class):
        if v.claim_ref is not None and not is_volume_bound_to_claim(v, claim):
            continue
        if v.capacity < claim.request or v.volume_mode != claim.volume_mode or v.deleting:
            continue
        if is_volume_bound_to_claim(v, claim):
            prebound.append(v)
            continue
        if v.phase != "Available":
            continue
        if claim.selector is not None and not claim.selector.matches(v.labels):
            continue
        if v.storage_class != claim.storage_class or not claim.access_modes <= v.access_modes:
            continue
        others.append(v)
    others.sort(key=lambda v: v.capacity)
    return [v.name for v in prebound], [v.name for v in others]


def random_pv(rng: random.Random, name: str, claims: list[PVCInfo]) -> dict[str, Any]:
    ref = None
    if rng.random() < 0.15:
        c = rng.choice(claims)
        ref = (c.namespace, c.name, rng.choice(["", c.uid, "other-uid"]))
    return pv(
        name,
        cls=rng.choice([CLASS] * 4 + ["other"]),
        size=f"{rng.choice([1, 5, 10, 20])}Gi",
        labels={"tier": rng.choice(["fast", "slow"])},
        modes=tuple(rng.sample(["ReadWriteOnce", "ReadOnlyMany"], rng.randint(1, 2))),
        phase=rng.choice(["Available"] * 4 + ["Bound", "Released"]),
        claim=ref,
        affinity=[
            {
                "matchExpressions": [
                    {"key": HOST, "operator": "In", "values": [f"n{rng.randrange(6)}"]}
                ]
            }
        ],
    )


@pytest.mark.parametrize("seed", range(8))
def test_kept_candidates_equal_a_fresh_walk(seed: int) -> None:
    rng = random.Random(seed)
    state = ClusterState()
    for i in range(6):
        state.upsert_node(parse_node(node(f"n{i}", labels={HOST: f"n{i}"})))
    volumes = VolumeIndex()
    claims = [
        parse_pvc(pvc("c0", cls=CLASS, size="5Gi", bound=False)),
        parse_pvc(pvc("c1", cls=CLASS, size="5Gi", bound=False)),  # the same shape as c0
        parse_pvc(pvc("c2", cls=CLASS, size="10Gi", bound=False, modes=("ReadOnlyMany",))),
        parse_pvc(
            pvc(
                "c3", cls=CLASS, size="1Gi", bound=False, selector={"matchLabels": {"tier": "fast"}}
            )
        ),
    ]
    for k in range(30):
        volumes.upsert(random_pv(rng, f"pv-{k:02d}", claims))
    candidates = PVCandidates(PVNodeMasks(state))
    names = [f"pv-{k:02d}" for k in range(40)]
    for step in range(120):
        op = rng.random()
        name = rng.choice(names)
        current = volumes.pv(name)
        if op < 0.3 and current is not None:
            # Reserve's assume: bound to a claim (or reverted)
            c = rng.choice(claims)
            volumes.assume_pv(
                parse_pv(
                    {
                        **current.raw,
                        "spec": {
                            **current.raw["spec"],
                            "claimRef": {"namespace": c.namespace, "name": c.name, "uid": c.uid},
                        },
                    }
                )
            )
        elif op < 0.45:
            volumes.restore_pv(name)
        elif op < 0.8:
            volumes.upsert(random_pv(rng, name, claims))  # added, or changed by the API
        elif op < 0.9:
            volumes.delete({"kind": "PersistentVolume", "metadata": {"name": name}})
        elif op < 0.95:
            i = rng.randrange(6)
            state.upsert_node(parse_node(node(f"n{i}", labels={HOST: f"n{i}", "step": str(step)})))
        if rng.random() < 0.5:
            continue  # changes pile up between decisions
        for claim in claims:
            got = candidates.for_claim(volumes, claim)
            alive = [got.pool[r].name for r in range(len(got.pool)) if got.alive[r]]
            want_prebound, want_others = reference(volumes, claim)
            assert ([p.name for p in got.prebound], alive) == (want_prebound, want_others), step
            # the objects are the current ones (Reserve writes them back)
            assert all(got.pool[r] is volumes.pv(n) for n, r in got.rank.items() if got.alive[r])
            walk = got.walk
            assert got.capacity.tolist() == [v.capacity for v in walk]
            masks = candidates.masks
            assert got.gids.tolist() == [masks.group(v) for v in got.pool]


@pytest.mark.parametrize(
    ("row", "claim_before_prepare", "builds_in_decision"),
    [
        ("claim delivered before prepare: its candidates built ahead", True, False),
        ("claim delivered after prepare: built in the decision", False, True),
    ],
)
def test_prepare_builds_the_candidates_of_waiting_claims(
    row: str, claim_before_prepare: bool, builds_in_decision: bool, monkeypatch: Any
) -> None:
    nodes = [node(f"n{i}", labels={HOST: f"n{i}"}) for i in range(3)]
    pvs = [
        pv(
            f"pv-{i}",
            cls=CLASS,
            size="10Gi",
            affinity=[{"matchExpressions": [{"key": HOST, "operator": "In", "values": [f"n{i}"]}]}],
        )
        for i in range(3)
    ]
    claim = pvc("data", cls=CLASS, size="5Gi", bound=False)
    h, index = harness("VolumeBinding", nodes, [storage_class(CLASS), *pvs])
    if claim_before_prepare:
        index.upsert(claim)
    h.plugin.prepare()
    if not claim_before_prepare:
        index.upsert(claim)
    built: list[str] = []
    build = PVCandidates._build

    def counted(self: PVCandidates, volumes: VolumeIndex, pvc: PVCInfo) -> Any:
        built.append(pvc.name)
        return build(self, volumes, pvc)

    monkeypatch.setattr(PVCandidates, "_build", counted)
    assert all(s.ok for s in h.filter(pod_with_claims("data")).values())
    assert built == (["data"] if builds_in_decision else [])
