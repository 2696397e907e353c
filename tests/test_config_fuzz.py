"""A broken configuration is reported field by field (ConfigError, exit 2), never a traceback:
the shipped examples and a configuration using every plugin's args, mutated at random."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from berth.config import parse_config
from berth.config.errors import ConfigError
from tests.fuzzing import mutated

ROOT = Path(__file__).resolve().parent.parent

FULL: dict[str, Any] = {
    "apiVersion": "berth.io/v1alpha1",
    "kind": "BerthConfiguration",
    "percentageOfNodesToScore": 50,
    "leaderElection": {
        "leaderElect": True,
        "leaseDuration": "15s",
        "renewDeadline": "10s",
        "retryPeriod": "2s",
        "resourceName": "berth",
        "resourceNamespace": "kube-system",
    },
    "clientConnection": {"qps": 50, "burst": 100},
    "metricSources": [
        {
            "name": "prom",
            "type": "prometheus",
            "url": "http://127.0.0.1:9090",
            "refreshInterval": "5s",
            "timeout": "2s",
        },
        {"name": "price", "type": "node-annotation"},
    ],
    "profiles": [
        {
            "schedulerName": "berth",
            "plugins": {
                "multiPoint": {"enabled": [{"name": "Coscheduling"}]},
                "score": {
                    "enabled": [{"name": "MetricScore", "weight": 10}],
                    "disabled": [{"name": "ImageLocality"}],
                },
            },
            "pluginConfig": [
                {
                    "name": "NodeResourcesFit",
                    "args": {
                        "scoringStrategy": {
                            "type": "RequestedToCapacityRatio",
                            "resources": [{"name": "cpu", "weight": 1}],
                            "requestedToCapacityRatio": {
                                "shape": [
                                    {"utilization": 0, "score": 0},
                                    {"utilization": 100, "score": 10},
                                ]
                            },
                        }
                    },
                },
                {"name": "InterPodAffinity", "args": {"hardPodAffinityWeight": 1}},
                {
                    "name": "PodTopologySpread",
                    "args": {
                        "defaultingType": "List",
                        "defaultConstraints": [
                            {
                                "maxSkew": 1,
                                "topologyKey": "zone",
                                "whenUnsatisfiable": "ScheduleAnyway",
                            }
                        ],
                    },
                },
                {
                    "name": "MetricScore",
                    "args": {
                        "metrics": [
                            {
                                "name": "latency",
                                "source": "prom",
                                "query": "up",
                                "nodeLabel": "node",
                                "direction": "lower",
                                "weight": 1,
                                "maxAge": "30s",
                            },
                            {
                                "name": "price",
                                "source": "price",
                                "query": "sim.berth.io/price",
                                "direction": "lower",
                                "weight": 2,
                            },
                        ]
                    },
                },
                {"name": "VolumeBinding", "args": {"bindTimeoutSeconds": 60}},
                {"name": "Coscheduling", "args": {"permitWaitingTimeSeconds": 30}},
            ],
        }
    ],
}
SHIPPED = [
    yaml.safe_load((ROOT / "examples" / f).read_text())
    for f in ("metrics-prometheus.yaml", "metrics-price.yaml")
]


def test_the_full_configuration_is_valid() -> None:
    assert "berth" in parse_config(FULL).profiles


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from([FULL, *SHIPPED]), st.data())
def test_a_mutated_configuration_loads_or_names_the_problem(
    base: dict[str, Any], data: st.DataObject
) -> None:
    try:
        parse_config(mutated(data, base))
    except ConfigError as exc:
        assert exc.problems and all(": " in p for p in exc.problems), exc.problems
