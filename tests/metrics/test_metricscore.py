"""MetricScore as upstream plugin tests read: a table of nodes with metric values, the wanted
scores or filter reasons; then staleness, fail-open limits, the herd estimate and bursts."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pytest

from berth.config import ConfigError, parse_config
from berth.engine import Engine
from berth.framework.plugin import CycleState, Handle
from berth.framework.ports import Ports
from berth.framework.status import Code
from berth.metrics.table import MetricKey, MetricTable
from berth.objects import parse_pod
from berth.plugins.metricscore import MetricScore, MetricScoreArgs
from tests.builders import make_state
from tests.builders import pod as make_pod

from .helpers import node, place

NOW = 1_700_000_000.0
NODES = ["node-a", "node-b", "node-c"]


class Clock:
    def __init__(self, now: float = NOW) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def metric(**kw: Any) -> dict[str, Any]:
    return {"name": "latency", "source": "prom", "query": "latency", **kw}


def latency_key(**kw: Any) -> MetricKey:
    return MetricKey("prom", kw.get("query", "latency"), "node", "auto")


@dataclass
class Harness:
    metrics: list[dict[str, Any]]
    values: dict[str, dict[str, float]] = field(default_factory=dict)  # query -> node -> value
    ages: dict[str, float] = field(default_factory=dict)  # node -> age of its samples
    table: MetricTable | None = None

    def __post_init__(self) -> None:
        self.clock = Clock()
        self.state = make_state([node(n) for n in NODES])
        if self.table is None:
            self.table = MetricTable(clock=self.clock)
        for query, values in self.values.items():
            self.table.update(
                MetricKey("prom", query),
                values,
                times={n: NOW - self.ages.get(n, 1.0) for n in values},
            )
        args = MetricScoreArgs.model_validate({"metrics": self.metrics})
        self.plugin = MetricScore(
            args=args, handle=Handle(state=self.state, ports=Ports(metrics=self.table))
        )

    def slots(self) -> Any:
        return self.state.node_indices()

    def scores(self) -> dict[str, int] | None:
        """Scores per node name, None when PreScore says Skip (as the framework would)."""
        pod = parse_pod(make_pod())
        cycle = CycleState()
        if self.plugin.pre_score(cycle, pod, self.slots()).is_skip:
            return None
        raw = self.plugin.score(cycle, pod, self.slots())
        return {self.state.names[i]: int(s) for i, s in zip(self.slots(), raw, strict=True)}

    def rejected(self) -> dict[str, list[str]]:
        pod = parse_pod(make_pod())
        cycle = CycleState()
        ok = self.plugin.filter(cycle, pod, self.slots())
        out = {}
        for i, passed in zip(self.slots(), ok, strict=True):
            if not passed:
                status = self.plugin.explain(cycle, pod, int(i))
                assert status.code == Code.UNSCHEDULABLE_AND_UNRESOLVABLE
                out[self.state.names[i]] = list(status.reasons)
        return out


LAT = {"node-a": 0.1, "node-b": 0.2, "node-c": 0.3}


@pytest.mark.parametrize(
    ("name", "metrics", "values", "ages", "want"),
    [
        ("lowest latency scores highest", [metric()], {"latency": LAT}, {}, [100, 50, 0]),
        (
            "higher is better",
            [metric(direction="higher")],
            {"latency": LAT},
            {},
            [0, 50, 100],
        ),
        (
            "equal values score the same",
            [metric()],
            {"latency": dict.fromkeys(NODES, 0.2)},
            {},
            [100, 100, 100],
        ),
        (
            "target: at or under the objective is best, then linear to 0 at target+span",
            [metric(normalization="target", target=0.2)],
            {"latency": LAT},
            {},
            [100, 100, 50],
        ),
        (
            "target with an explicit span",
            [metric(normalization="target", target=0.1, span=0.4)],
            {"latency": LAT},
            {},
            [100, 75, 50],
        ),
        (
            "target, higher is better (free disk percent)",
            [metric(normalization="target", target=50, direction="higher")],
            {"latency": {"node-a": 80, "node-b": 50, "node-c": 25}},
            {},
            [100, 100, 50],
        ),
        (
            "missing value: worst by default",
            [metric()],
            {"latency": {"node-a": 0.1, "node-b": 0.3}},
            {},
            [100, 0, 0],
        ),
        (
            "missing value: best",
            [metric(missing="best")],
            {"latency": {"node-a": 0.1, "node-b": 0.3}},
            {},
            [100, 0, 100],
        ),
        (
            "missing value: a fixed score",
            [metric(missing=40)],
            {"latency": {"node-a": 0.1, "node-b": 0.3}},
            {},
            [100, 0, 40],
        ),
        (
            "missing value: ignore gives a node with nothing the neutral score",
            [metric(missing="ignore")],
            {"latency": {"node-a": 0.1, "node-b": 0.3}},
            {},
            [100, 0, 50],
        ),
        (
            "a stale value counts as missing; the fresh ones are normalised alone",
            [metric(maxAge="30s")],
            {"latency": {"node-a": 0.2, "node-b": 0.3, "node-c": 0.01}},
            {"node-c": 31.0},
            [100, 0, 0],
        ),
        (
            "weights combine metrics",
            [
                metric(weight=3),
                metric(name="price", query="price", missing="ignore"),
            ],
            {"latency": LAT, "price": {"node-a": 2.0, "node-b": 1.0}},
            {},
            [75, 63, 0],  # b: (3 * 50 + 100) / 4, rounded half up
        ),
    ],
)
def test_scores(
    name: str,
    metrics: list[dict[str, Any]],
    values: dict[str, dict[str, float]],
    ages: dict[str, float],
    want: list[int],
) -> None:
    h = Harness(metrics=metrics, values=values, ages=ages)
    assert h.scores() == dict(zip(NODES, want, strict=True)), name


def test_all_values_stale_drops_the_metric(caplog: pytest.LogCaptureFixture) -> None:
    h = Harness(
        metrics=[metric(maxAge="10s")], values={"latency": LAT}, ages=dict.fromkeys(NODES, 11.0)
    )
    with caplog.at_level(logging.WARNING, logger="berth.metrics"):
        assert h.scores() is None
        h.scores()
    drops = [r for r in caplog.records if "drops out of the score" in r.getMessage()]
    assert len(drops) == 1  # logged on the transition, not per decision
    assert (
        "metric latency has no value younger than maxAge 10s (no recent data)"
        in drops[0].getMessage()
    )
    # score() without PreScore (a score-only profile) is all zeros: it changes no ranking.
    assert h.plugin.score(CycleState(), parse_pod(make_pod()), h.slots()).tolist() == [0, 0, 0]


def test_no_series_yet_and_no_table() -> None:
    assert Harness(metrics=[metric()]).scores() is None
    h = Harness(metrics=[metric(filter={"max": 0.1})], values={"latency": LAT})
    h.plugin.handle.ports = Ports()  # no metric table
    assert h.scores() is None
    assert h.rejected() == {}  # fail open


def test_no_metrics_configured() -> None:
    assert Harness(metrics=[]).scores() is None


@pytest.mark.parametrize(
    ("limits", "values", "ages", "want"),
    [
        ({"max": 0.25}, LAT, {}, {"node-c": ["node(s) had metric latency above 0.25"]}),
        ({"min": 0.15}, LAT, {}, {"node-a": ["node(s) had metric latency below 0.15"]}),
        (
            {"min": 0.15, "max": 0.25},
            LAT,
            {},
            {
                "node-a": ["node(s) had metric latency below 0.15"],
                "node-c": ["node(s) had metric latency above 0.25"],
            },
        ),
        ({"max": 0.25}, LAT, {"node-c": 120.0}, {}),  # stale: fail open
        ({"max": 0.25}, {"node-a": 0.5}, {}, {"node-a": ["node(s) had metric latency above 0.25"]}),
    ],
)
def test_filter_limits(
    limits: dict[str, float], values: dict[str, float], ages: dict[str, float], want: Any
) -> None:
    h = Harness(metrics=[metric(filter=limits)], values={"latency": values}, ages=ages)
    assert h.rejected() == want


def test_filter_without_limits_passes_everything_without_a_snapshot() -> None:
    h = Harness(metrics=[metric()], values={"latency": LAT})
    cycle = CycleState()
    ok = h.plugin.filter(cycle, parse_pod(make_pod()), h.slots())
    assert ok.all() and cycle.read("MetricScore/snapshot") is None


def test_one_snapshot_per_cycle() -> None:
    h = Harness(metrics=[metric(filter={"max": 0.25})], values={"latency": LAT})
    cycle = CycleState()
    pod = parse_pod(make_pod())
    h.plugin.filter(cycle, pod, h.slots())
    snap = cycle.read("MetricScore/snapshot")
    assert h.table is not None
    h.table.update(MetricKey("prom", "latency"), {"node-a": 9.0, "node-b": 0.0}, sample_time=NOW)
    h.plugin.pre_score(cycle, pod, h.slots())
    assert cycle.read("MetricScore/snapshot") is snap
    assert h.plugin.score(cycle, pod, h.slots()).tolist() == [100, 50, 0]  # the cycle's view


# ----- herd estimate -------------------------------------------------------------------------
def test_reserve_adds_the_estimate_until_the_next_sample() -> None:
    h = Harness(
        metrics=[metric(estimatePerPod=0.05, filter={"max": 0.32})],
        values={"latency": LAT},
    )
    assert h.table is not None
    pod = parse_pod(make_pod())
    h.plugin.reserve(CycleState(), pod, "node-a")
    h.plugin.reserve(CycleState(), parse_pod(make_pod()), "node-a")
    assert h.scores() == {"node-a": 100, "node-b": 100, "node-c": 0}  # 0.1 + 2 * 0.05 = 0.2
    h.plugin.unreserve(CycleState(), pod, "node-a")
    assert h.scores() == {"node-a": 100, "node-b": 67, "node-c": 0}  # 0.15
    h.plugin.reserve(CycleState(), parse_pod(make_pod()), "node-b")
    h.plugin.reserve(CycleState(), parse_pod(make_pod()), "node-c")
    assert h.rejected() == {"node-c": ["node(s) had metric latency above 0.32"]}  # 0.35
    # a new sample taken after the placements already includes their load
    h.clock.now += 5
    h.table.update(MetricKey("prom", "latency"), LAT, sample_time=h.clock.now)
    assert h.scores() == {"node-a": 100, "node-b": 50, "node-c": 0}
    assert h.table.recent_placements() == {"node-a": 1, "node-b": 1, "node-c": 1}


def test_pods_added_to_the_state_count_without_reserve() -> None:
    """A profile enabling MetricScore only at score never runs Reserve: the growth of a node's
    pod count since the sample was first used stands in for it."""
    h = Harness(metrics=[metric(estimatePerPod=0.05)], values={"latency": LAT})
    assert h.scores() == {"node-a": 100, "node-b": 50, "node-c": 0}
    for _ in range(3):
        h.state.add_pod(parse_pod(make_pod()), "node-a")
    assert h.scores() == {"node-a": 50, "node-b": 100, "node-c": 0}  # a: 0.25


def test_placements_before_the_sample_do_not_count() -> None:
    h = Harness(metrics=[metric(estimatePerPod=0.1)], values={})
    assert h.table is not None
    h.table.note_placement("node-a", "p1", at=NOW - 10)
    h.table.update(MetricKey("prom", "latency"), LAT, sample_time=NOW - 5)
    assert h.scores() == {"node-a": 100, "node-b": 50, "node-c": 0}
    h.table.note_placement("node-a", "p2", at=NOW)
    assert h.scores() == {"node-a": 100, "node-b": 100, "node-c": 0}  # a: 0.1 + 0.1


def _engine(config: dict[str, Any], table: MetricTable, nodes: int = 3) -> Engine:
    state = make_state([node(f"node-{i}", cpu="32", memory="128Gi") for i in range(nodes)])
    return Engine(config=parse_config(config), state=state, seed=1, ports=Ports(metrics=table))


def _config(metrics: list[dict[str, Any]], *, multipoint: bool) -> dict[str, Any]:
    point = "multiPoint" if multipoint else "score"
    return {
        "metricSources": [{"name": "prom", "type": "prometheus", "url": "http://127.0.0.1:1"}],
        "profiles": [
            {
                "schedulerName": "berth",
                "plugins": {point: {"enabled": [{"name": "MetricScore", "weight": 10}]}},
                "pluginConfig": [{"name": "MetricScore", "args": {"metrics": metrics}}],
            }
        ],
    }


@pytest.mark.parametrize("multipoint", [False, True])
def test_burst_of_50_pods_spreads_with_the_estimate(multipoint: bool) -> None:
    table = MetricTable()
    table.update(MetricKey("prom", "latency"), {"node-0": 0.05, "node-1": 0.10, "node-2": 0.20})
    engine = _engine(_config([metric(estimatePerPod=0.01)], multipoint=multipoint), table)
    chosen = place(engine, count=50)
    counts = {n: chosen.count(n) for n in sorted(set(chosen))}
    assert len(counts) == 3, counts
    assert counts["node-0"] > counts["node-1"] > counts["node-2"] >= 5, counts
    if multipoint:  # Reserve recorded each placement
        assert sum(table.recent_placements().values()) == 50


def test_without_the_estimate_a_burst_piles_onto_the_best_node() -> None:
    table = MetricTable()
    table.update(MetricKey("prom", "latency"), {"node-0": 0.05, "node-1": 0.10, "node-2": 0.20})
    engine = _engine(_config([metric()], multipoint=False), table)
    assert set(place(engine, count=20)) == {"node-0"}


def test_stale_metrics_leave_the_decision_to_the_other_plugins() -> None:
    clock = Clock()
    table = MetricTable(clock=clock)
    table.update(MetricKey("prom", "latency"), {"node-0": 0.05, "node-1": 0.5, "node-2": 0.5})
    engine = _engine(_config([metric(maxAge="30s")], multipoint=True), table)
    assert place(engine, count=3, cpu="4") == ["node-0"] * 3
    clock.now += 31
    # LeastAllocated now prefers the emptier nodes
    assert set(place(engine, count=2, cpu="4")) == {"node-1", "node-2"}


# ----- configuration -------------------------------------------------------------------------
def _problems(config: dict[str, Any]) -> list[str]:
    with pytest.raises(ConfigError) as exc:
        parse_config(config)
    return exc.value.problems


def test_config_errors_name_the_field() -> None:
    cfg = _config([metric(source="nope")], multipoint=False)
    assert _problems(cfg) == [
        "profiles[0].pluginConfig[0].args.metrics[0].source: metric source 'nope' is not "
        "defined in metricSources (defined: prom)"
    ]
    cfg = _config([metric(source="ms", query="disk")], multipoint=False)
    cfg["metricSources"].append({"name": "ms", "type": "metrics-api"})
    assert _problems(cfg) == [
        "profiles[0].pluginConfig[0].args.metrics[0].query: Unsupported value: 'disk': a "
        "metrics-api source answers cpu, memory, cpu-cores, memory-bytes"
    ]
    cfg = _config([metric(), metric()], multipoint=False)
    assert _problems(cfg) == [
        "profiles[0].pluginConfig[0].args.metrics[1].name: Duplicate value: 'latency'"
    ]
    cfg = _config([metric(normalization="target")], multipoint=False)
    assert _problems(cfg) == [
        "profiles[0].pluginConfig[0].args.metrics[0].target: Required value when "
        "normalization is target"
    ]
    cfg = _config([metric(filter={})], multipoint=False)
    assert _problems(cfg) == [
        "profiles[0].pluginConfig[0].args.metrics[0].filter: set max, min or both"
    ]
    cfg = _config([metric(missing=101)], multipoint=False)
    assert _problems(cfg) == [
        "profiles[0].pluginConfig[0].args.metrics[0].missing: a fixed score must be in [0, 100]"
    ]
    cfg = _config([metric()], multipoint=False)
    cfg["metricSources"].append(dict(cfg["metricSources"][0]))
    assert _problems(cfg) == ["metricSources[1].name: Duplicate value: 'prom'"]


@pytest.mark.parametrize(
    ("source", "problem"),
    [
        ({"type": "prometheus"}, "metricSources[0].url: Required value for a prometheus source"),
        (
            {"type": "sysdig"},
            "metricSources[0].credentials: Required value for a sysdig source (an API token)",
        ),
        (
            {"type": "node-annotation", "url": "http://x"},
            "metricSources[0].url: not used by a node-annotation source",
        ),
        (
            {"type": "prometheus", "url": "127.0.0.1:9090"},
            "metricSources[0].url: must start with http:// or https://",
        ),
        (
            {"type": "prometheus", "url": "http://x", "timeout": "soon"},
            "metricSources[0].timeout: invalid duration 'soon'",
        ),
        (
            {"type": "prometheus", "url": "http://x", "credentials": {}},
            "metricSources[0].credentials.tokenFile: set exactly one of tokenFile or tokenEnv",
        ),
        ({"type": "graphite", "url": "http://x"}, "metricSources[0].type: Input should be"),
    ],
)
def test_source_config_errors(source: dict[str, Any], problem: str) -> None:
    problems = _problems({"metricSources": [{"name": "s", **source}]})
    assert len(problems) == 1 and problems[0].startswith(problem), problems


def test_source_defaults_and_address_alias() -> None:
    cfg = parse_config(
        {
            "metricSources": [
                {"name": "p", "type": "prometheus", "address": "http://127.0.0.1:9090/"},
                {"name": "s", "type": "sysdig", "credentials": {"tokenEnv": "SYSDIG_TOKEN"}},
                {"name": "price", "type": "node-annotation", "refreshInterval": "1m"},
            ]
        }
    )
    p, s, price = cfg.model.metricSources
    assert (p.url, p.timeout, p.refreshInterval) == ("http://127.0.0.1:9090", 5.0, 15.0)
    assert s.url == "https://app.sysdigcloud.com" and s.window == 60.0
    assert price.refreshInterval == 60.0
    assert "SYSDIG_TOKEN" in repr(s)  # only the variable's name is ever held


def test_the_example_configuration_loads_as_written() -> None:
    from pathlib import Path

    from berth.config import load_config
    from berth.metrics.refresher import keys_from_config

    root = Path(__file__).resolve().parents[2]
    cfg = load_config(root / "examples" / "metrics-prometheus.yaml")
    profile = cfg.profiles["berth"]
    assert profile.weights["MetricScore"] == 10
    assert "MetricScore" in profile.points["score"]
    assert keys_from_config(cfg) == [
        MetricKey("prom", "max by (node) (berth_sim_http_request_seconds)", "node", "auto")
    ]
    spec = profile.args["MetricScore"].metrics[0]
    assert (spec.direction, spec.maxAge, spec.weight) == ("lower", 30.0, 1.0)
    assert np.isclose(cfg.model.metricSources[0].timeout, 2.0)


# ----- set-up ahead of the decisions ---------------------------------------------------------
@pytest.mark.parametrize(
    "name, refresh, placements_after",
    [
        ("prepared before the first decision", False, 0),
        ("prepared after a refresh of the table", True, 0),
        ("placements noted after the set-up still count", True, 2),
    ],
)
def test_prepare_builds_the_column_a_decision_reads(
    name: str, refresh: bool, placements_after: int
) -> None:
    """Engine.prepare between decisions: the decision reads the column prepare built (no rebuild
    in the cycle) and scores exactly as without it."""
    del name

    def run(prepared: bool) -> tuple[dict[str, int] | None, object]:
        h = Harness(metrics=[metric(estimatePerPod=0.05)], values={"latency": LAT})
        assert h.table is not None
        h.scores()
        if refresh:
            h.clock.now += 5
            h.table.update(MetricKey("prom", "latency"), LAT, sample_time=h.clock.now)
        if prepared:
            h.plugin.prepare()
        built = h.plugin._columns[0]
        for k in range(placements_after):
            h.table.note_placement("node-a", f"p{k}", at=h.clock.now + 1)
        scores = h.scores()
        if prepared:
            assert h.plugin._columns[0] is built  # not rebuilt inside the decision
        return scores, built

    with_prepare, built = run(prepared=True)
    assert built is not None
    assert with_prepare == run(prepared=False)[0]


def test_prepare_without_a_table_or_a_series_does_nothing() -> None:
    h = Harness(metrics=[metric()])  # a table without the series yet
    h.plugin.prepare()
    assert h.plugin._columns == [None]
    bare = MetricScore(
        args=MetricScoreArgs.model_validate({"metrics": [metric()]}),
        handle=Handle(state=h.state, ports=Ports()),
    )
    bare.prepare()
    assert bare._columns == [None]
