"""Deferred histogram series: the same exposition as observing each value directly."""

import pytest
from prometheus_client import CollectorRegistry, Histogram, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from berth import telemetry
from berth.telemetry import DeferredHistogram, SchedulerMetrics

BUCKETS = (0.001, 0.002, 0.004, 1.0)
# below, on and between the bounds, above the last (+Inf), zero and negative
VALUES = [0.0005, 0.001, 0.0010001, 0.002, 0.003, 0.004, 0.5, 1.0, 7.0, 0.0, -1.0]


def _samples(registry: CollectorRegistry) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    out = {}
    for family in text_string_to_metric_families(generate_latest(registry).decode()):
        for s in family.samples:
            if not s.name.endswith("_created"):
                out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


@pytest.mark.parametrize("labelled", [False, True])
def test_deferred_series_expose_what_direct_observation_does(labelled: bool) -> None:
    direct, deferred = CollectorRegistry(), CollectorRegistry()
    names = ["point"] if labelled else []
    plain = Histogram("h", "help", names, buckets=BUCKETS, registry=direct)
    wrapped = DeferredHistogram(Histogram("h", "help", names, buckets=BUCKETS, registry=deferred))
    for i, v in enumerate(VALUES * 3):
        label = ("a", "b")[i % 2]
        (plain.labels(label) if labelled else plain).observe(v)
        (wrapped.labels(label) if labelled else wrapped).observe(v)
    assert _samples(deferred) != _samples(direct)  # nothing added until the flush
    wrapped.flush()
    want, got = _samples(direct), _samples(deferred)
    assert want.keys() == got.keys()
    for key, value in want.items():
        assert got[key] == pytest.approx(value, abs=1e-12), key


def test_a_series_flushes_itself_when_it_holds_the_most_it_may(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(telemetry, "DEFERRED_MAX", 5)
    registry = CollectorRegistry()
    wrapped = DeferredHistogram(Histogram("h", "help", buckets=BUCKETS, registry=registry))
    for _ in range(12):
        wrapped.observe(0.003)
    assert registry.get_sample_value("h_count") == 10.0  # two flushes of 5; 2 still held


def test_exposition_adds_the_held_observations_first() -> None:
    metrics = SchedulerMetrics()
    metrics.algorithm_duration.observe(0.0015)
    metrics.sli_duration.labels("1").observe(0.02)
    text = metrics.expose().decode()
    assert "scheduler_scheduling_algorithm_duration_seconds_count 1.0" in text
    assert (
        'scheduler_pod_scheduling_sli_duration_seconds_bucket{attempts="1",le="0.02"} 1.0' in text
    )
