"""deploy/extender/kube-scheduler-config.yaml is a KubeSchedulerConfiguration whose `extenders`
entry uses only fields of upstream's kubescheduler.config.k8s.io/v1 `Extender` type and points at
the verbs and prefix `berth extender` serves by default."""

from __future__ import annotations

from pathlib import Path

import yaml
from click.testing import CliRunner

from berth.cli import main
from berth.extender.server import VERBS, ExtenderOptions

PATH = Path(__file__).resolve().parents[2] / "deploy" / "extender" / "kube-scheduler-config.yaml"
# staging/src/k8s.io/kube-scheduler/config/v1/types.go, type Extender (json names).
EXTENDER_FIELDS = {
    "urlPrefix",
    "filterVerb",
    "preemptVerb",
    "prioritizeVerb",
    "weight",
    "bindVerb",
    "enableHTTPS",
    "tlsConfig",
    "httpTimeout",
    "nodeCacheCapable",
    "managedResources",
    "ignorable",
}


def test_extender_entry_matches_upstream_and_berth() -> None:
    doc = yaml.safe_load(PATH.read_text())
    assert doc["apiVersion"] == "kubescheduler.config.k8s.io/v1"
    assert doc["kind"] == "KubeSchedulerConfiguration"
    (entry,) = doc["extenders"]
    assert set(entry) <= EXTENDER_FIELDS
    defaults = ExtenderOptions()
    assert entry["urlPrefix"] == f"http://{defaults.bind_address}{defaults.url_prefix}"
    for key in ("filterVerb", "prioritizeVerb", "preemptVerb", "bindVerb"):
        if key in entry:
            assert entry[key] in VERBS
    assert isinstance(entry["weight"], int) and entry["weight"] > 0
    assert entry["nodeCacheCapable"] is defaults.node_cache_capable
    assert isinstance(entry["ignorable"], bool)
    assert entry["httpTimeout"] == "5s"


def test_cli_has_the_command() -> None:
    result = CliRunner().invoke(main, ["extender", "--help"])
    assert result.exit_code == 0
    for flag in (
        "--config",
        "--kubeconfig",
        "--bind-address",
        "--url-prefix",
        "--node-cache-capable",
        "--tls-cert",
        "--tls-key",
        "--max-body-bytes",
    ):
        assert flag in result.output
    bad = CliRunner().invoke(main, ["extender", "--tls-cert", __file__])
    assert bad.exit_code == 2
