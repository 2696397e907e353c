"""Configuration: upstream's plugin merge and multiPoint expansion, and errors naming fields."""

from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from berth.cli import main
from berth.config import ConfigError, parse_config
from berth.config.model import PluginRef, PluginSet
from berth.config.plugins import merge_plugin_set


def names(s: PluginSet) -> list[tuple[str, int | None]]:
    return [(p.name, p.weight) for p in s.enabled]


def refs(*items: str | tuple[str, int]) -> list[PluginRef]:
    return [
        PluginRef(name=i) if isinstance(i, str) else PluginRef(name=i[0], weight=i[1])
        for i in items
    ]


# Rows from default_plugins_test.go TestMergePlugins, shortened.
@pytest.mark.parametrize(
    ("name", "default", "custom", "want"),
    [
        (
            "custom appended after defaults",
            PluginSet(enabled=refs("A", "B")),
            PluginSet(enabled=refs("C")),
            [("A", None), ("B", None), ("C", None)],
        ),
        (
            "disable one default",
            PluginSet(enabled=refs("A", "B")),
            PluginSet(disabled=refs("A")),
            [("B", None)],
        ),
        (
            "disable all defaults with *, keep custom",
            PluginSet(enabled=refs("A", "B")),
            PluginSet(enabled=refs("C"), disabled=refs("*")),
            [("C", None)],
        ),
        (
            "re-configured default keeps its place with the new weight",
            PluginSet(enabled=refs(("A", 1), ("B", 2))),
            PluginSet(enabled=refs(("A", 5))),
            [("A", 5), ("B", 2)],
        ),
        (
            "disable then enable moves a default to the end",
            PluginSet(enabled=refs("A", "B")),
            PluginSet(enabled=refs("A"), disabled=refs("A")),
            [("B", None), ("A", None)],
        ),
    ],
)
def test_merge_plugin_set(
    name: str, default: PluginSet, custom: PluginSet, want: list[tuple[str, int | None]]
) -> None:
    assert names(merge_plugin_set(default, custom)) == want, name


def profile(plugins: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"profiles": [{"schedulerName": "berth", "plugins": plugins, **extra}]}


def test_defaults() -> None:
    cfg = parse_config({})
    p = cfg.profiles["berth"]
    # upstream 1.37 default_plugins.go: NodeName before NodeUnschedulable
    assert p.points["filter"][:6] == [
        "NodeName",
        "NodeUnschedulable",
        "TaintToleration",
        "NodeAffinity",
        "NodePorts",
        "NodeResourcesFit",
    ]
    assert p.weights["TaintToleration"] == 3
    assert p.weights["NodeAffinity"] == 2
    assert p.weights["NodeResourcesFit"] == 1
    assert p.points["bind"] == ["DefaultBinder"]
    # DynamicResources (weight 2) before DefaultPreemption; NodeDeclaredFeatures last
    assert p.points["postFilter"] == ["DynamicResources", "DefaultPreemption"]
    assert p.weights["DynamicResources"] == 2
    assert p.points["filter"][-2:] == ["DynamicResources", "NodeDeclaredFeatures"]
    assert p.points["reserve"] == ["VolumeBinding", "DynamicResources"]
    assert p.points["preBind"] == ["VolumeBinding", "DynamicResources"]
    assert cfg.model.podInitialBackoffSeconds == 1
    assert cfg.model.podMaxBackoffSeconds == 10
    assert cfg.model.leaderElection.leaseDuration == 15.0


def test_score_point_weight_overrides_multipoint_and_moves_first() -> None:
    cfg = parse_config(profile({"score": {"enabled": [{"name": "ImageLocality", "weight": 7}]}}))
    p = cfg.profiles["berth"]
    assert p.weights["ImageLocality"] == 7
    # A plugin configured at a specific point and in multiPoint runs first there (upstream).
    assert p.points["score"][0] == "ImageLocality"


def test_disable_score_plugin_at_one_point_only() -> None:
    cfg = parse_config(profile({"score": {"disabled": [{"name": "TaintToleration"}]}}))
    p = cfg.profiles["berth"]
    assert "TaintToleration" not in p.points["score"]
    assert "TaintToleration" in p.points["filter"]


def test_disable_all_scores() -> None:
    cfg = parse_config(profile({"score": {"disabled": [{"name": "*"}]}}))
    assert cfg.profiles["berth"].points["score"] == []


def test_plugin_args_are_parsed() -> None:
    cfg = parse_config(
        profile(
            {},
            pluginConfig=[
                {"name": "NodeResourcesFit", "args": {"scoringStrategy": {"type": "MostAllocated"}}}
            ],
        )
    )
    assert cfg.profiles["berth"].args["NodeResourcesFit"].scoringStrategy.type == "MostAllocated"


def test_percentage_inherits_global() -> None:
    cfg = parse_config({"percentageOfNodesToScore": 30})
    assert cfg.profiles["berth"].percentage_of_nodes_to_score == 30


@pytest.mark.parametrize(
    ("data", "fragment"),
    [
        ({"kind": "KubeSchedulerConfig"}, "kind: Input should be 'BerthConfiguration'"),
        (
            {
                "apiVersion": "kubescheduler.config.k8s.io/v1beta3",
                "kind": "KubeSchedulerConfiguration",
            },
            "apiVersion: Unsupported value: 'kubescheduler.config.k8s.io/v1beta3'",
        ),
        ({"bogus": 1}, "bogus: unknown field"),
        ({"percentageOfNodesToScore": 101}, "percentageOfNodesToScore: Input should be less"),
        ({"podInitialBackoffSeconds": "soon"}, "podInitialBackoffSeconds: Input should be"),
        (
            {"podInitialBackoffSeconds": 5, "podMaxBackoffSeconds": 2},
            "podMaxBackoffSeconds: must be greater than or equal to PodInitialBackoffSeconds",
        ),
        (
            {"profiles": [{"schedulerName": "a"}, {"schedulerName": "a"}]},
            "profiles[1].schedulerName: Duplicate value: 'a'",
        ),
        (
            profile({"filter": {"enabled": [{"name": "NoSuchPlugin"}]}}),
            "profiles[0].plugins.filter.enabled[0].name: plugin 'NoSuchPlugin' does not exist",
        ),
        (
            profile({"filter": {"enabled": [{"name": "ImageLocality"}]}}),
            "profiles[0].plugins.filter.enabled[0].name: plugin 'ImageLocality' does not extend "
            "FilterPlugin plugin",
        ),
        (
            profile({"score": {"enabled": [{"name": "ImageLocality", "weight": -1}]}}),
            "profiles[0].plugins.score.enabled[0].weight: Input should be greater than or equal",
        ),
        (
            profile({"score": {"enabled": [{"name": "ImageLocality", "weight": "heavy"}]}}),
            "profiles[0].plugins.score.enabled[0].weight: Input should be a valid integer",
        ),
        (
            profile(
                {},
                pluginConfig=[
                    {"name": "NodeResourcesFit", "args": {"scoringStrategy": {"type": "Cheapest"}}}
                ],
            ),
            "profiles[0].pluginConfig[0].args.scoringStrategy.type",
        ),
        (
            profile({}, pluginConfig=[{"name": "Nope", "args": {}}]),
            "profiles[0].pluginConfig[0].name: plugin 'Nope' does not exist",
        ),
        (
            profile(
                {},
                pluginConfig=[
                    {"name": "ImageLocality", "args": {}},
                    {"name": "ImageLocality", "args": {}},
                ],
            ),
            "profiles[0].pluginConfig: Duplicate value: 'ImageLocality'",
        ),
        (
            profile({"bind": {"disabled": [{"name": "*"}]}}),
            "profiles[0].plugins.bind: at least one bind plugin is needed",
        ),
        (
            {"leaderElection": {"leaseDuration": "5s", "renewDeadline": "10s"}},
            "leaderElection.leaseDuration: must be greater than renewDeadline",
        ),
        (
            {"leaderElection": {"retryPeriod": "two seconds"}},
            "leaderElection.retryPeriod: invalid duration",
        ),
    ],
)
def test_errors_name_field_and_reason(data: dict[str, Any], fragment: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_config(data)
    assert any(fragment in p for p in info.value.problems), info.value.problems


def test_cli_exits_2_on_bad_config(tmp_path: Path) -> None:
    cfg = tmp_path / "bad.yaml"
    cfg.write_text("apiVersion: berth.io/v1alpha1\nkind: BerthConfiguration\nprofiles: 3\n")
    result = CliRunner().invoke(main, ["simulate", "-", "--config", str(cfg)], input="")
    assert result.exit_code == 2
    assert "profiles: Input should be a valid list" in result.output


def test_cli_exits_2_on_unparseable_yaml(tmp_path: Path) -> None:
    cfg = tmp_path / "bad.yaml"
    cfg.write_text("profiles: [\n")
    result = CliRunner().invoke(main, ["simulate", "-", "--config", str(cfg)], input="")
    assert result.exit_code == 2
    assert "not valid YAML" in result.output


def test_yaml_is_loaded_safely(tmp_path: Path) -> None:
    cfg = tmp_path / "evil.yaml"
    cfg.write_text("profiles: !!python/object/apply:os.system ['true']\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        from berth.config import load_config

        load_config(cfg)
