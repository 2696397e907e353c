"""A repeated warning at a bounded rate: the first line of a kind at once, one line per interval
after that saying how many were dropped. End to end: `berth run` against an API server that is
down logs one line per 10 s for all its informers together, not one per informer per retry."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from berth.logthrottle import Throttle


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


# (row name, [(seconds since the start, key)], what admit answers for each)
ROWS: list[tuple[str, list[tuple[float, str]], list[int | None]]] = [
    ("the first line goes out", [(0, "a")], [0]),
    (
        "the same line within the interval is dropped",
        [(0, "a"), (1, "a"), (9.9, "a")],
        [0, None, None],
    ),
    (
        "after the interval, the count of dropped lines",
        [(0, "a"), (1, "a"), (2, "a"), (10, "a")],
        [0, None, None, 2],
    ),
    ("each key on its own", [(0, "a"), (1, "b"), (2, "a"), (3, "b")], [0, 0, None, None]),
    ("nothing dropped, nothing counted", [(0, "a"), (10, "a"), (20, "a")], [0, 0, 0]),
]


@pytest.mark.parametrize(("name", "lines", "want"), ROWS, ids=[r[0] for r in ROWS])
def test_admit(name: str, lines: list[tuple[float, str]], want: list[int | None]) -> None:
    clock = Clock()
    throttle = Throttle(interval=10.0, clock=clock)
    got = []
    for at, key in lines:
        clock.now = 100.0 + at
        got.append(throttle.admit(key))
    assert got == want


def test_reset_forgets_and_returns_what_was_not_said() -> None:
    clock = Clock()
    throttle = Throttle(interval=10.0, clock=clock)
    assert throttle.admit("a") == 0
    assert throttle.admit("a") is None and throttle.pending("a") == 1
    assert throttle.reset("a") == 1
    assert throttle.admit("a") == 0  # a new outage is said at once


@pytest.mark.timeout(120)
def test_an_unreachable_api_server_is_one_line_per_ten_seconds(tmp_path: Path) -> None:
    # bound and never listened on: refused, and no other process can take the port meanwhile
    held = socket.socket()
    held.bind(("127.0.0.1", 0))
    port = held.getsockname()[1]
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [{"name": "c", "cluster": {"server": f"http://127.0.0.1:{port}"}}],
                "users": [{"name": "u", "user": {}}],
                "contexts": [{"name": "c", "context": {"cluster": "c", "user": "u"}}],
                "current-context": "c",
            }
        )
    )
    proc = subprocess.Popen(
        [
            *(sys.executable, "-m", "berth", "run", "--kubeconfig", str(kubeconfig)),
            *("--bind-address", "", "--no-leader-elect"),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        time.sleep(15)  # a dozen informers, each retrying about every second at first
    finally:
        proc.terminate()
        _, stderr = proc.communicate(timeout=60)
        held.close()
    failures = [line for line in stderr.splitlines() if "list/watch failed" in line]
    assert "Traceback" not in stderr, stderr[-3000:]
    assert 1 <= len(failures) <= 2, failures  # at 0 s and at 10 s
    if len(failures) == 2:
        suppressed = int(failures[1].split("suppressed=")[1].split()[0])
        assert suppressed > 0, failures
