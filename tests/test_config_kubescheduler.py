"""A KubeSchedulerConfiguration as Berth's input, `berth config view` and `berth config
validate`; the defaults Berth fills in compared with the real kube-scheduler's
(`--write-config-to` of berth-upstream's kube-scheduler personality)."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner

from berth.cli import main
from berth.config import ConfigError, load_config, parse_config
from berth.config.view import effective
from tests.upstream import ci, unavailable_reason

KSC = {"apiVersion": "kubescheduler.config.k8s.io/v1", "kind": "KubeSchedulerConfiguration"}


def ksc(**fields: Any) -> dict[str, Any]:
    return {**KSC, **fields}


@pytest.mark.parametrize(
    ("name", "doc", "warning"),
    [
        ("parallelism is ignored", ksc(parallelism=32), "parallelism: ignored"),
        (
            "extenders are ignored",
            ksc(extenders=[{"urlPrefix": "http://127.0.0.1:1"}]),
            "extenders: ignored: Berth calls no scheduler extenders",
        ),
        ("profiling is ignored", ksc(enableProfiling=True), "enableProfiling: ignored"),
        (
            "protobuf is not spoken",
            ksc(clientConnection={"contentType": "application/vnd.kubernetes.protobuf"}),
            "clientConnection.contentType: ignored",
        ),
        (
            "a profile without schedulerName is berth",
            ksc(profiles=[{}]),
            "profiles[0].schedulerName: not set: 'berth'",
        ),
        (
            "no profiles is one named berth",
            ksc(),
            "profiles: not set: one profile named 'berth'",
        ),
        (
            "default-scheduler is the running kube-scheduler's name",
            ksc(profiles=[{"schedulerName": "default-scheduler"}]),
            "profiles[0].schedulerName: 'default-scheduler' is the running kube-scheduler's",
        ),
        (
            "the lease is berth's",
            ksc(profiles=[{"schedulerName": "berth"}]),
            "leaderElection.resourceName: not set: Berth's lease is kube-system/berth",
        ),
        (
            "a queueSort other than PrioritySort is ignored",
            ksc(
                profiles=[
                    {
                        "schedulerName": "s",
                        "plugins": {"queueSort": {"enabled": [{"name": "Custom"}]}},
                    }
                ]
            ),
            "profiles[0].plugins.queueSort: ignored",
        ),
    ],
)
def test_kube_scheduler_configuration_warnings(
    name: str, doc: dict[str, Any], warning: str
) -> None:
    config = parse_config(doc)
    assert any(w.startswith(warning) for w in config.warnings), config.warnings


def test_kube_scheduler_configuration_carries_over() -> None:
    config = parse_config(
        ksc(
            percentageOfNodesToScore=30,
            podInitialBackoffSeconds=2,
            podMaxBackoffSeconds=20,
            leaderElection={"leaderElect": False, "resourceName": "mine"},
            clientConnection={"qps": 20, "burst": 40},
            profiles=[
                {
                    "schedulerName": "berth",
                    "plugins": {
                        "queueSort": {"enabled": [{"name": "PrioritySort"}]},
                        "multiPoint": {"disabled": [{"name": "ImageLocality"}]},
                        "score": {"enabled": [{"name": "NodeResourcesFit", "weight": 5}]},
                    },
                    "pluginConfig": [
                        {
                            "name": "NodeResourcesFit",
                            "args": {
                                "apiVersion": "kubescheduler.config.k8s.io/v1",
                                "kind": "NodeResourcesFitArgs",
                                "scoringStrategy": {"type": "MostAllocated"},
                            },
                        }
                    ],
                }
            ],
        )
    )
    model = config.model
    assert (model.percentageOfNodesToScore, model.podInitialBackoffSeconds) == (30, 2)
    assert model.podMaxBackoffSeconds == 20
    assert not model.leaderElection.leaderElect and model.leaderElection.resourceName == "mine"
    assert (model.clientConnection.qps, model.clientConnection.burst) == (20, 40)
    profile = config.profiles["berth"]
    assert "ImageLocality" not in profile.points["score"]
    assert profile.weights["NodeResourcesFit"] == 5
    assert profile.args["NodeResourcesFit"].scoringStrategy.type == "MostAllocated"
    assert not config.warnings  # PrioritySort is the queue's order: nothing to say


@pytest.mark.parametrize(
    ("name", "doc", "problem"),
    [
        (
            "an older version",
            {**KSC, "apiVersion": "kubescheduler.config.k8s.io/v1beta3"},
            "apiVersion: Unsupported value: 'kubescheduler.config.k8s.io/v1beta3'",
        ),
        (
            "Berth's own fields stay in BerthConfiguration",
            ksc(metricSources=[]),
            "metricSources: unknown field",
        ),
        (
            "an unknown plugin",
            ksc(
                profiles=[
                    {"schedulerName": "s", "plugins": {"score": {"enabled": [{"name": "X"}]}}}
                ]
            ),
            "profiles[0].plugins.score.enabled[0].name: plugin 'X' does not exist",
        ),
    ],
)
def test_kube_scheduler_configuration_problems(
    name: str, doc: dict[str, Any], problem: str
) -> None:
    with pytest.raises(ConfigError) as exc:
        parse_config(doc)
    assert any(p.startswith(problem) for p in exc.value.problems), exc.value.problems


def test_every_problem_is_reported_in_one_run(tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    path.write_text(
        """\
apiVersion: berth.io/v1alpha1
kind: BerthConfiguration
podInitialBackoffSeconds: 0
bogusField: 1
leaderElection: {leaseDuration: 5s, renewDeadline: 10s}
profiles:
- schedulerName: berth
  plugins:
    score:
      enabled: [{name: NoSuchPlugin}]
  pluginConfig:
  - name: NodeResourcesFit
    args: {scoringStrategy: {type: Nope}}
metricSources:
- {name: prom, type: prometheus, url: "ftp://x", timeout: -1s, refreshInterval: 0s}
"""
    )
    result = CliRunner().invoke(main, ["config", "validate", str(path)])
    assert result.exit_code == 2
    lines = result.output.splitlines()
    want = [
        "podInitialBackoffSeconds: Input should be greater than 0",
        "leaderElection.leaseDuration: must be greater than renewDeadline",
        "metricSources[0].url: must start with http:// or https://",
        "metricSources[0].timeout: invalid duration '-1s'",
        "metricSources[0].refreshInterval: must be greater than zero",
        "bogusField: unknown field",
        "profiles[0].plugins.score.enabled[0].name: plugin 'NoSuchPlugin' does not exist",
        "profiles[0].pluginConfig[0].args.scoringStrategy.type: Input should be",
    ]
    for w in want:
        assert any(line.startswith(f"error: {path}: {w}") for line in lines), (w, lines)
    assert len(lines) == len(want), lines


def test_validate_says_valid_and_warns(tmp_path: Path) -> None:
    path = tmp_path / "ksc.yaml"
    path.write_text(yaml.safe_dump(ksc(parallelism=8, profiles=[{"schedulerName": "a"}])))
    result = CliRunner().invoke(main, ["config", "validate", str(path)])
    assert result.exit_code == 0, result.output
    assert f"{path}: valid (1 profile(s): a)" in result.output
    assert f"warning: {path}: parallelism: ignored" in result.output


def test_view_prints_the_effective_configuration_that_loads_back(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["config", "view"])
    assert result.exit_code == 0, result.output
    doc = yaml.safe_load(result.output)
    assert doc["kind"] == "BerthConfiguration" and doc["leaderElection"]["leaseDuration"] == "15s"
    (profile,) = doc["profiles"]
    names = [p["name"] for p in profile["plugins"]["multiPoint"]["enabled"]]
    assert names[:3] == ["SchedulingGates", "NodeName", "NodeUnschedulable"]
    args = {pc["name"]: pc["args"] for pc in profile["pluginConfig"]}
    assert args["DefaultPreemption"] == {
        "minCandidateNodesPercentage": 10,
        "minCandidateNodesAbsolute": 100,
    }
    # What view prints is a configuration that means the same.
    again = tmp_path / "effective.yaml"
    again.write_text(result.output)
    assert effective(load_config(again)) == doc


# --- the real kube-scheduler's defaults ------------------------------------------------------


def _upstream_defaults(tmp_path: Path, doc: dict[str, Any]) -> dict[str, Any]:
    from berth.upstream.build import find_binary

    kubeconfig = tmp_path / "kubeconfig"  # read, never used: --write-config-to exits first
    kubeconfig.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [{"name": "c", "cluster": {"server": "https://127.0.0.1:1"}}],
                "users": [{"name": "u", "user": {}}],
                "contexts": [{"name": "c", "context": {"cluster": "c", "user": "u"}}],
                "current-context": "c",
            }
        )
    )
    source = tmp_path / "in.yaml"
    source.write_text(yaml.safe_dump({**doc, "clientConnection": {"kubeconfig": str(kubeconfig)}}))
    out = tmp_path / "out.yaml"
    subprocess.run(
        [
            str(find_binary()),
            "kube-scheduler",
            "--config",
            str(source),
            "--write-config-to",
            str(out),
        ],
        check=True,
        capture_output=True,
        timeout=60,
    )
    loaded: dict[str, Any] = yaml.safe_load(out.read_text())
    return loaded


def _comparable(doc: dict[str, Any], *, berth_args: dict[str, set[str]]) -> dict[str, Any]:
    """The fields both schedulers have, in one shape (weights 0 for none, args without their
    apiVersion/kind and limited to the fields Berth's args models have)."""
    election = {k: v for k, v in doc["leaderElection"].items() if k != "resourceName"}
    profiles = []
    for p in doc["profiles"]:
        enabled = [
            (r["name"], r.get("weight") or 0)
            for r in p["plugins"]["multiPoint"].get("enabled", [])
            if r["name"] != "PrioritySort"  # the queue's order in Berth, not a plugin
        ]
        args = {}
        for pc in p.get("pluginConfig", []):
            fields = berth_args.get(pc["name"], set())
            # Go's omitempty: an empty list is not written
            args[pc["name"]] = {k: v for k, v in pc["args"].items() if k in fields and v != []}
        profiles.append({"schedulerName": p["schedulerName"], "multiPoint": enabled, "args": args})
    return {
        "percentageOfNodesToScore": doc.get("percentageOfNodesToScore") or 0,
        "podInitialBackoffSeconds": doc["podInitialBackoffSeconds"],
        "podMaxBackoffSeconds": doc["podMaxBackoffSeconds"],
        "leaderElection": election,
        "qps": float(doc["clientConnection"]["qps"]),
        "burst": doc["clientConnection"]["burst"],
        "profiles": profiles,
    }


@pytest.mark.parametrize(
    ("name", "doc"),
    [
        ("defaults", ksc(profiles=[{"schedulerName": "berth"}])),
        (
            "plugins changed, args given",
            ksc(
                percentageOfNodesToScore=40,
                podMaxBackoffSeconds=30,
                leaderElection={"leaseDuration": "30s", "renewDeadline": "20s"},
                profiles=[
                    {
                        "schedulerName": "berth",
                        "plugins": {
                            "multiPoint": {
                                "enabled": [
                                    {"name": "NodeResourcesFit", "weight": 4},
                                    {"name": "PodTopologySpread", "weight": 1},
                                ],
                                "disabled": [{"name": "ImageLocality"}],
                            }
                        },
                        "pluginConfig": [
                            {
                                "name": "NodeResourcesFit",
                                "args": {"scoringStrategy": {"type": "MostAllocated"}},
                            },
                            {"name": "InterPodAffinity", "args": {"hardPodAffinityWeight": 7}},
                            {
                                "name": "DefaultPreemption",
                                "args": {"minCandidateNodesAbsolute": 50},
                            },
                        ],
                    },
                    {"schedulerName": "second", "percentageOfNodesToScore": 70},
                ],
            ),
        ),
    ],
)
def test_defaults_equal_kube_schedulers(tmp_path: Path, name: str, doc: dict[str, Any]) -> None:
    reason = unavailable_reason()
    if reason is not None:
        if ci():
            pytest.fail(f"CI=true compares with the real kube-scheduler, but: {reason}")
        pytest.skip(f"upstream: {reason}")
    upstream = _upstream_defaults(tmp_path, doc)
    path = tmp_path / "berth.yaml"
    path.write_text(yaml.safe_dump(doc))
    config = load_config(path)
    ours = effective(config)
    berth_args = {
        name: set(type(args).model_fields)
        for resolved in config.profiles.values()
        for name, args in resolved.args.items()
    }
    assert _comparable(ours, berth_args=berth_args) == _comparable(upstream, berth_args=berth_args)
    # and the args Berth has are all there upstream too (nothing Berth-only slipped in)
    for p in upstream["profiles"]:
        assert {pc["name"] for pc in p["pluginConfig"]} >= set(berth_args) - {"MetricScore"}
