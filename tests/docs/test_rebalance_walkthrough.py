"""docs/explain-capacity-rebalance.md run as written: the rebalance walkthrough on the embedded
cluster (its shell blocks, in order, in one empty directory: the Deployment lands on the coolest
node, the load moves, the dry run plans two moves, --apply evicts them and the ReplicaSet's
replacements land on the two cool nodes; then a PodDisruptionBudget keeps the rest), and the
dump examples print what the page shows."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from kubernetes import client, config

from tests.docs.test_walkthroughs import ROOT, blocks, run_walkthrough, section, with_free_ports

PAGE = ROOT / "docs" / "explain-capacity-rebalance.md"


def test_the_rebalance_walkthrough(tmp_path: Path) -> None:
    text = section(PAGE, "### A walkthrough on the embedded cluster", "### How a pass decides")
    walk, budget = blocks(text, "sh")
    for out in run_walkthrough(with_free_ports(walk + budget), tmp_path):
        planned = re.findall(r"^  evict default/(web-\S+) from node-001 .*: dry-run$", out, re.M)
        evicted = re.findall(r"^  evict default/(web-\S+) from node-001 .*: evicted$", out, re.M)
        assert len(planned) == 2 and len(evicted) == 2, out
        kept = re.findall(
            r"^  keep default/web-\S+ on node-001: a PodDisruptionBudget allows no disruption now$",
            out,
            re.M,
        )
        assert len(kept) == 2, out
        assert out.count("Rebalanced") >= 2, out
        api = client.CoreV1Api(
            config.new_client_from_config(str(tmp_path / "berth-cluster.kubeconfig"))
        )
        nodes = sorted(p.spec.node_name for p in api.list_namespaced_pod("default").items)
        assert nodes == ["node-001", "node-001", "node-002", "node-003"], nodes


def fenced(text: str) -> list[tuple[str, str]]:
    """Every fenced block of a page: (its language, "" for output, its text)."""
    out: list[tuple[str, str]] = []
    lang: str | None = None
    lines: list[str] = []
    for line in text.splitlines(keepends=True):
        if line.startswith("```"):
            if lang is None:
                lang, lines = line[3:].strip(), []
            else:
                out.append((lang, "".join(lines)))
                lang = None
            continue
        if lang is not None:
            lines.append(line)
    return out


def test_the_dump_examples_print_what_the_page_shows(tmp_path: Path) -> None:
    text = PAGE.read_text()
    shown = [body for lang, body in fenced(text) if lang == ""]  # the outputs the page shows
    example = ROOT / "examples" / "cluster.yaml"

    def berth(*args: str) -> str:
        done = subprocess.run(
            [sys.executable, "-m", "berth", *args],
            capture_output=True,
            text=True,
            timeout=120,
            check=True,
            cwd=ROOT,
        )
        return done.stdout

    assert berth("explain", "shop/web-3", "--dump", str(example)) in shown
    (capacity,) = [b for b in blocks(text, "sh") if "berth capacity web.yaml" in b]
    subprocess.run(
        ["sh", "-e", "-c", capacity.split("berth capacity")[0]], cwd=tmp_path, check=True
    )
    assert berth("capacity", str(tmp_path / "web.yaml"), "--dump", str(example)) in shown


def test_the_samples_and_the_report_commands(tmp_path: Path) -> None:
    sh = [body for lang, body in fenced(PAGE.read_text()) if lang == "sh"]
    (samples,) = [b for b in sh if "berth examples cluster.yaml" in b]
    (reports,) = [b for b in sh if "--report report.html" in b]
    for out in run_walkthrough(samples + reports, tmp_path):
        del out
        for page in ("report.html", "compare.html", "explain.html"):
            text = (tmp_path / page).read_text()
            assert text.startswith("<!DOCTYPE html>") and "</html>" in text, page
        assert "Placed differently" in (tmp_path / "compare.html").read_text()
