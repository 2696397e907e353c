"""Configuration errors, as kube-scheduler's validation reports them: every problem of a file
in one run, each named by the file and the field path, none hidden by another (a field that
fails does not keep its profile's plugins, args or the checks across fields from being
checked). Rows are files a user could write; each lists every problem it has."""

from __future__ import annotations

from pathlib import Path

import pytest

from berth.config import ConfigError, load_config

ROWS: list[tuple[str, str, list[str]]] = [
    (
        "six problems at the top level, the checks across fields included",
        """
        percentageOfNodesToScore: 120
        podInitialBackoffSeconds: 5
        podMaxBackoffSeconds: 2
        leaderElection: {leaseDuration: 10s, renewDeadline: 10s, retryPeriod: 500ms}
        clientConnection: {qps: -1}
        profiles: [{schedulerName: a}, {schedulerName: a}]
        """,
        [
            "percentageOfNodesToScore: Input should be less than or equal to 100",
            "leaderElection.leaseDuration: must be greater than renewDeadline",
            "leaderElection.retryPeriod: must be at least 1s",
            "clientConnection.qps: Input should be greater than 0",
            "podMaxBackoffSeconds: must be greater than or equal to PodInitialBackoffSeconds",
            "profiles[1].schedulerName: Duplicate value: 'a'",
        ],
    ),
    (
        "a bad weight does not hide the profile's plugins and args",
        """
        profiles:
        - schedulerName: berth
          plugins:
            filter: {enabled: [{name: NodeResourcesBalancedAllocation}]}
            score: {enabled: [{name: Nope, weight: 2}, {name: ImageLocality, weight: -1}]}
          pluginConfig:
          - name: NodeResourcesFit
            args: {scoringStrategy: {type: MostAllocated, resources: [{name: cpu, weight: 0}]}}
          - {name: InterPodAffinity, args: {hardPodAffinityWeight: 101}}
          - {name: Unknown, args: {}}
        """,
        [
            "profiles[0].plugins.score.enabled[1].weight: Input should be greater than or "
            "equal to 0",
            "profiles[0].plugins.filter.enabled[0].name: plugin 'NodeResourcesBalancedAllocation'"
            " does not extend FilterPlugin plugin",
            "profiles[0].plugins.score.enabled[0].name: plugin 'Nope' does not exist; known "
            "plugins: Coscheduling, DefaultBinder,",
            "profiles[0].pluginConfig[2].name: plugin 'Unknown' does not exist",
            "profiles[0].pluginConfig[0].args.scoringStrategy.resources[0].weight: resource "
            "weight of cpu not in valid range (0, 100]",
            "profiles[0].pluginConfig[1].args.hardPodAffinityWeight: Invalid value: 101: not in "
            "valid range [0, 100]",
        ],
    ),
    (
        "metric sources: each one's problems, and a duplicate name among broken ones",
        """
        metricSources:
        - {name: prom, type: prometheus}
        - {name: prom, type: sysdig}
        - {name: ann, type: node-annotation, url: "http://x"}
        - {name: slow, type: prometheus, url: "ftp://x", timeout: 0s, window: 0.5s}
        """,
        [
            "metricSources[0].url: Required value for a prometheus source",
            "metricSources[1].credentials: Required value for a sysdig source (an API token)",
            "metricSources[1].name: Duplicate value: 'prom'",
            "metricSources[2].url: not used by a node-annotation source",
            "metricSources[3].url: must start with http:// or https://",
            "metricSources[3].timeout: must be greater than zero",
            "metricSources[3].window: must be at least 1s",
        ],
    ),
    (
        "MetricScore naming a source that is not defined, beside a broken field",
        """
        podInitialBackoffSeconds: soon
        metricSources: [{name: prom, type: prometheus, url: "http://127.0.0.1:9090"}]
        profiles:
        - schedulerName: berth
          plugins: {multiPoint: {enabled: [{name: MetricScore}]}}
          pluginConfig:
          - name: MetricScore
            args: {metrics: [{name: load, source: missing, query: up, weight: 1}]}
        """,
        [
            "podInitialBackoffSeconds: Input should be a valid integer, unable to parse string "
            "as an integer",
            "profiles[0].pluginConfig[0].args.metrics[0].source: metric source 'missing' is not "
            "defined in metricSources (defined: prom)",
        ],
    ),
    (
        "a KubeSchedulerConfiguration: Berth's own fields refused, the rest checked",
        """
        apiVersion: kubescheduler.config.k8s.io/v1
        kind: KubeSchedulerConfiguration
        parallelism: 16
        metricSources: []
        percentageOfNodesToScore: -1
        profiles:
        - schedulerName: default-scheduler
          plugins: {score: {enabled: [{name: NoSuch}]}}
          pluginConfig:
          - name: DefaultPreemption
            args:
              apiVersion: kubescheduler.config.k8s.io/v1
              kind: DefaultPreemptionArgs
              minCandidateNodesPercentage: 200
        """,
        [
            "metricSources: unknown field (a KubeSchedulerConfiguration has no such field; "
            "Berth's own fields go in a BerthConfiguration)",
            "percentageOfNodesToScore: Input should be greater than or equal to 0",
            "profiles[0].plugins.score.enabled[0].name: plugin 'NoSuch' does not exist",
            "profiles[0].pluginConfig[0].args.minCandidateNodesPercentage: Invalid value: 200: "
            "not in valid range [0, 100]",
        ],
    ),
    (
        "the webhook's profile and a duplicate profile, each said once",
        """
        webhook: {schedulerName: nope}
        profiles: [{schedulerName: berth}, {schedulerName: berth}]
        """,
        [
            "profiles[1].schedulerName: Duplicate value: 'berth'",
            "webhook.schedulerName: 'nope' is not a profile (profiles: berth)",
        ],
    ),
]


@pytest.mark.parametrize(("name", "text", "want"), ROWS, ids=[r[0] for r in ROWS])
def test_every_problem_named_by_file_and_field(
    tmp_path: Path, name: str, text: str, want: list[str]
) -> None:
    path = tmp_path / "config.yaml"
    path.write_text("\n".join(line[8:] for line in text.splitlines()))
    with pytest.raises(ConfigError) as exc:
        load_config(path)
    got = exc.value.problems
    assert all(p.startswith(f"{path}: ") for p in got), got
    fields = [p.removeprefix(f"{path}: ") for p in got]
    for w in want:
        assert sum(1 for f in fields if f.startswith(w)) == 1, (w, fields)
    assert len(fields) == len(want), fields
