"""YAML and JSON inputs of every front with alias and depth limits: a 500-byte alias bomb
through `--rbac` stored 33.6 MB (or crashed the server), a configuration nested 500 deep ended in
a RecursionError traceback. Each front now answers one line and exit status 2, quickly."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from .conftest import env_without_cluster

pytestmark = pytest.mark.timeout(180)

# Seven levels of nine aliases: 9^7 (4.8 million) strings from about 500 bytes.
BOMB = "\n".join(
    [
        "apiVersion: rbac.authorization.k8s.io/v1",
        "kind: ClusterRole",
        "metadata: {name: bomb}",
        'l0: &l0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]',
        *(f"l{i}: &l{i} [" + ",".join([f"*l{i - 1}"] * 9) + "]" for i in range(1, 7)),
        "rules: [{apiGroups: ['*'], resources: ['*'], verbs: ['*'], resourceNames: *l6}]",
    ]
)


def deep_yaml(depth: int) -> str:
    return "a: " + "{a: " * depth + "1" + "}" * depth + "\n"


def deep_json(depth: int) -> str:
    return "[" * depth + "]" * depth


def berth(tmp: Path, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "berth", *args],
        env=env_without_cluster(tmp),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def one_line_exit_2(got: subprocess.CompletedProcess[str], *words: str) -> None:
    """Exit 2 and one line naming the file and the reason (a configuration's problems come
    one per line under `error: invalid configuration:`, as for any configuration error)."""
    lines = [line for line in got.stderr.splitlines() if line.strip()]
    assert got.returncode == 2, got.stderr[-2000:]
    assert "Traceback" not in got.stderr
    if lines and lines[0] == "error: invalid configuration:":
        lines = [f"error: {lines[1].strip()}", *lines[2:]]
    assert len(lines) == 1 and lines[0].startswith("error: "), got.stderr
    for w in words:
        assert w in lines[0], lines[0]


def test_an_alias_bomb_through_rbac(tmp_path: Path) -> None:
    bomb = tmp_path / "bomb.yaml"
    bomb.write_text(BOMB)
    assert len(BOMB) < 600
    started = time.monotonic()
    out = tmp_path / "kubeconfig"
    got = berth(
        tmp_path, "cluster", "--port", "0", "--kubeconfig-out", str(out), "--rbac", str(bomb)
    )
    one_line_exit_2(got, str(bomb), "excessive aliasing")
    assert time.monotonic() - started < 30


@pytest.mark.parametrize("depth", [150, 500, 5000])
def test_deep_configuration(tmp_path: Path, depth: int) -> None:
    config = tmp_path / "config.yaml"
    config.write_text(
        "apiVersion: berth.io/v1alpha1\nkind: BerthConfiguration\n" + deep_yaml(depth)
    )
    dump = tmp_path / "dump.yaml"
    dump.write_text("apiVersion: v1\nkind: List\nitems: []\n")
    got = berth(tmp_path, "simulate", str(dump), "--config", str(config))
    one_line_exit_2(got, str(config), "nests deeper than 100 levels")


@pytest.mark.parametrize("kind", ["yaml-bomb", "deep-yaml", "deep-json"])
def test_dumps(tmp_path: Path, kind: str) -> None:
    dump = tmp_path / "dump"
    dump.write_text(
        {"yaml-bomb": BOMB, "deep-yaml": deep_yaml(400), "deep-json": deep_json(3000)}[kind]
    )
    got = berth(tmp_path, "simulate", str(dump))
    one_line_exit_2(got, "excessive aliasing" if kind == "yaml-bomb" else "nests deeper")


def test_workloads_of_demo_and_bench(tmp_path: Path) -> None:
    bomb = tmp_path / "workload.yaml"
    bomb.write_text(BOMB)
    one_line_exit_2(berth(tmp_path, "demo", "--workload", str(bomb)), "excessive aliasing")
    deep = tmp_path / "deep.yaml"
    deep.write_text(deep_yaml(300))
    one_line_exit_2(berth(tmp_path, "bench", "--size", "tiny", "--file", str(deep)), "nests deeper")


def test_annotate_value_files(tmp_path: Path) -> None:
    from berth.metrics.annotate import AnnotateError, load_values_file

    values = tmp_path / "values.yaml"
    values.write_text(deep_yaml(600))
    with pytest.raises(AnnotateError, match="nests deeper than 100 levels"):
        load_values_file(values)
