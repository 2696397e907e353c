"""The HTML reports in a real browser (Debian's chromium through chromium-driver and selenium):
`berth simulate --report --compare` and `berth explain -o html` are written by the commands as
users run them, opened from disk with every network request refused, and checked for what a
reader looks for (heat maps per node, the pending pods' reasons, the score bars, the pods two
configurations place differently, the filter matrix); the filter box and the sortable headers
work; a screenshot of each page is taken.

Needs `chromium` and `chromedriver` (Debian: `apt-get install -y chromium chromium-driver`;
`./dev test` installs them). Skipped when absent, except under CI (CI=true)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.builders import node, pod

LOAD = "example.com/cpu-utilization"
# node -> its live cpu metric: the metric configuration prefers node-1, the defaults do not
NODES = {"node-1": 10.0, "node-2": 50.0, "node-3": 90.0, "node-4": 70.0}


def browser_binaries() -> tuple[str, str]:
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    driver = shutil.which("chromedriver")
    if chromium and driver:
        return chromium, driver
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(
            "chromium and chromedriver are required in CI: "
            "apt-get install -y chromium chromium-driver"
        )
    pytest.skip("chromium or chromedriver not found (apt-get install -y chromium chromium-driver)")


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    chromium, driver = browser_binaries()
    from selenium import webdriver
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    options = Options()
    options.binary_location = chromium
    for arg in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--window-size=1400,1600",
        # the page must need no network: every request would go to a proxy that is not there
        "--proxy-server=127.0.0.1:9",
        "--proxy-bypass-list=<-loopback>",
    ):
        options.add_argument(arg)
    chrome = webdriver.Chrome(service=Service(executable_path=driver), options=options)
    chrome.set_page_load_timeout(30)
    try:
        yield chrome
    finally:
        chrome.quit()


def dump(tmp_path: Path) -> Path:
    items: list[dict[str, Any]] = []
    for name, load in NODES.items():
        raw = node(name, cpu="4", memory="16Gi")
        raw["metadata"]["annotations"] = {LOAD: str(load)}
        items.append(raw)
    items.append(pod("running", cpu="1", node_name="node-3"))
    for i in range(5):
        items.append(pod(f"web-{i}", cpu="500m"))
    items.append(pod("huge", cpu="64"))
    items.append(pod("picky", spec={"nodeSelector": {"disk": "ssd"}}))
    path = tmp_path / "cluster.yaml"
    path.write_text(yaml.safe_dump({"apiVersion": "v1", "kind": "List", "items": items}))
    return path


def metric_config(tmp_path: Path) -> Path:
    path = tmp_path / "metrics.yaml"
    path.write_text(
        yaml.safe_dump(
            {
                "metricSources": [{"name": "ann", "type": "node-annotation"}],
                "profiles": [
                    {
                        "plugins": {
                            "multiPoint": {"enabled": [{"name": "MetricScore", "weight": 20}]}
                        },
                        "pluginConfig": [
                            {
                                "name": "MetricScore",
                                "args": {
                                    "metrics": [{"name": "cpu", "source": "ann", "query": LOAD}]
                                },
                            }
                        ],
                    }
                ],
            }
        )
    )
    return path


def berth(*args: str | Path) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        [sys.executable, "-m", "berth", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done


def open_page(browser: Any, path: Path) -> None:
    browser.get(path.resolve().as_uri())
    assert browser.execute_script("return document.readyState") == "complete"
    # nothing fetched: no script, style, font or image from anywhere
    fetched = browser.execute_script(
        "return performance.getEntriesByType('resource').map(e => e.name)"
    )
    assert fetched == []
    errors = [e for e in browser.get_log("browser") if e.get("level") == "SEVERE"]
    assert errors == []


def rows(browser: Any, table_id: str, *, visible: bool = False) -> list[list[str]]:
    from selenium.webdriver.common.by import By

    table = browser.find_element(By.ID, table_id)
    out = []
    for row in table.find_elements(By.CSS_SELECTOR, ":scope > tbody > tr"):
        if visible and not row.is_displayed():
            continue
        cells = row.find_elements(By.CSS_SELECTOR, ":scope > td")
        out.append([c.get_attribute("textContent").strip() for c in cells])
    return out


def screenshot(browser: Any, path: Path) -> None:
    browser.save_screenshot(str(path))
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 10_000


def test_simulate_report_with_compare(browser: Any, tmp_path: Path) -> None:
    from selenium.webdriver.common.by import By

    cluster, config = dump(tmp_path), metric_config(tmp_path)
    report = tmp_path / "report.html"
    defaults = tmp_path / "defaults.yaml"
    defaults.write_text("{}\n")
    berth("simulate", cluster, "--config", config, "--report", report, "--compare", defaults)
    open_page(browser, report)
    assert browser.title == f"berth simulate {cluster}"
    summary = browser.find_element(By.CSS_SELECTOR, "p.summary").text
    assert "7 pods decided" in summary and "5 placed" in summary and "2 pending" in summary

    # heat maps: requested cpu, memory and pods, and the live metric, one square per node
    maps = browser.find_elements(By.CSS_SELECTOR, "svg.heatmap")
    labels = [m.get_attribute("aria-label") for m in maps]
    assert labels == ["requested cpu", "requested memory", "requested pods", "metric cpu"]
    for m in maps:
        assert len(m.find_elements(By.TAG_NAME, "rect")) == len(NODES)
        assert m.size["width"] > 0 and m.size["height"] > 0
    tips = [t.get_attribute("textContent") for t in maps[3].find_elements(By.TAG_NAME, "title")]
    assert tips == [f"{n}: {v:g}" for n, v in NODES.items()]

    # pending pods with their reasons, every node's in a fold
    pending = {r[0]: r for r in rows(browser, "pending-table")}
    assert set(pending) == {"default/huge", "default/picky"}
    assert "4 Insufficient cpu" in pending["default/huge"][1]
    assert "4 node(s) didn't match Pod's node affinity/selector" in pending["default/picky"][1]
    assert pending["default/huge"][2].startswith("4 nodes")

    # placed pods: the metric wins, so every web pod goes to node-1 with a stacked score bar
    placed = rows(browser, "placed-table")
    assert sorted(r[0] for r in placed) == [f"default/web-{i}" for i in range(5)]
    assert {r[1] for r in placed} == {"node-1"}
    bars = browser.find_elements(By.CSS_SELECTOR, "#placed-table > tbody > tr svg.scorebar")
    assert bars and all(b.find_elements(By.TAG_NAME, "rect") for b in bars)
    legend = browser.find_element(By.CSS_SELECTOR, "p.legend").text
    assert "MetricScore (weight 20)" in legend

    # the comparison with the default configuration: they spread, this one packs on node-1
    compare = rows(browser, "compare-table")
    assert compare and all(r[1] == "node-1" and r[2] != "node-1" for r in compare)

    # the filter box hides rows that do not match; a header click sorts
    box = browser.find_element(By.CSS_SELECTOR, 'input[data-table="placed-table"]')
    box.send_keys("web-3")
    assert [r[0] for r in rows(browser, "placed-table", visible=True)] == ["default/web-3"]
    box.clear()
    box.send_keys(" ")  # an input event with a query no row lacks... then empty again
    box.clear()
    header = browser.find_element(By.CSS_SELECTOR, "#placed-table th")
    header.click()
    header.click()
    names = [r[0] for r in rows(browser, "placed-table")]
    assert names == sorted(names, reverse=True)
    screenshot(browser, tmp_path / "simulate.png")


def test_explain_page(browser: Any, tmp_path: Path) -> None:
    from selenium.webdriver.common.by import By

    cluster, config = dump(tmp_path), metric_config(tmp_path)
    page = tmp_path / "explain.html"
    done = berth("explain", "default/web-0", "--dump", cluster, "--config", config, "-o", "html")
    page.write_text(done.stdout)
    open_page(browser, page)
    heading = browser.find_element(By.TAG_NAME, "h1").text
    assert heading.startswith("default/web-0") and "pending" in heading
    assert "winner node-1" in browser.find_element(By.TAG_NAME, "body").text
    verdicts = {r[0]: r for r in rows(browser, "verdict-table")}
    assert set(verdicts) == {"node-1 (winner)", "node-2", "node-3", "node-4"}
    assert all(r[1] == "feasible" for r in verdicts.values())
    totals = {k.split()[0]: int(r[2]) for k, r in verdicts.items()}
    assert max(totals, key=lambda n: totals[n]) == "node-1"
    matrix = rows(browser, "filter-table")
    assert len(matrix) == len(NODES) and all(all(c == "\u2713" for c in r[1:]) for r in matrix)
    assert len(browser.find_elements(By.CSS_SELECTOR, "svg.heatmap")) == 4
    screenshot(browser, tmp_path / "explain.png")

    # a pod that fits nowhere: every node's filter verdict, with upstream's reason
    done = berth("explain", "default/huge", "--dump", cluster, "-o", "html")
    page.write_text(done.stdout)
    open_page(browser, page)
    verdicts = {r[0]: r for r in rows(browser, "verdict-table")}
    assert len(verdicts) == len(NODES)
    assert all(r[1] == "NodeResourcesFit: Insufficient cpu" for r in verdicts.values())
    screenshot(browser, tmp_path / "explain-pending.png")
