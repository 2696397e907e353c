"""The differential oracle: kube-scheduler's own scheduling code (`berth-upstream oracle`) run
on cluster dumps. One long-lived process answers a stream of dumps, one JSON line each way, so
thousands of clusters cost one process start.
"""

from __future__ import annotations

import json
import os
import subprocess
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import IO, Any

from berth.upstream.build import find_binary
from berth.upstream.errors import UpstreamError

# A generated cluster takes milliseconds; a real dump of thousands of pods takes seconds.
DEFAULT_TIMEOUT = 300.0


@dataclass
class OracleAnswer:
    """What upstream decided for one dump, in `berth simulate -o json`'s shape per pod."""

    decisions: list[dict[str, Any]]
    # Objects kube-apiserver would not have stored: {kind, namespace, name, errors}.
    invalid: list[dict[str, Any]] = field(default_factory=list)
    # Plugin paths reached ("Filter/NodeAffinity/UnschedulableAndUnresolvable": count).
    coverage: dict[str, int] = field(default_factory=dict)


class Oracle:
    """A running `berth-upstream oracle`; use as a context manager, call `decide` per dump."""

    def __init__(self, *, binary: Path | None = None, timeout: float = DEFAULT_TIMEOUT) -> None:
        self.binary = binary or find_binary()
        self.timeout = timeout
        self._proc: subprocess.Popen[bytes] | None = None
        self._count = 0
        self._stderr: list[str] = []

    def __enter__(self) -> Oracle:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def start(self) -> None:
        if self._proc is not None:
            return
        try:
            self._proc = subprocess.Popen(
                [str(self.binary), "oracle"],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                env={**os.environ, "GOMAXPROCS": os.environ.get("GOMAXPROCS", "2")},
            )
        except OSError as exc:
            raise UpstreamError(f"{self.binary}: cannot start the oracle: {exc.strerror}") from None
        assert self._proc.stderr is not None
        # Drained by a thread so a chatty component never blocks on a full pipe; the tail is
        # kept for the error message if the process dies.
        threading.Thread(target=self._drain, args=(self._proc.stderr,), daemon=True).start()

    def _drain(self, stream: IO[bytes]) -> None:
        for line in stream:
            self._stderr.append(line.decode(errors="replace").rstrip())
            del self._stderr[:-20]

    def close(self) -> None:
        proc, self._proc = self._proc, None
        if proc is None:
            return
        assert proc.stdin is not None
        try:
            proc.stdin.close()
            proc.wait(timeout=10)
        except (OSError, subprocess.TimeoutExpired):
            proc.kill()
            proc.wait()

    def decide(
        self,
        objects: Sequence[Mapping[str, Any]],
        *,
        config: Mapping[str, Any] | None = None,
        tie_break: Mapping[str, str] | None = None,
    ) -> OracleAnswer:
        """Upstream's decisions for the pending pods of `objects` under `config` (a
        KubeSchedulerConfiguration; None for kube-scheduler's defaults). `tie_break` names,
        per pod, the node to take when several share the best score."""
        self.start()
        proc = self._proc
        assert proc is not None and proc.stdin is not None and proc.stdout is not None
        self._count += 1
        request = {
            "id": str(self._count),
            "objects": list(objects),
            "config": config,
            "tieBreak": dict(tie_break or {}),
        }
        line = json.dumps(request, separators=(",", ":")).encode() + b"\n"
        result: list[bytes] = []

        def exchange() -> None:
            assert proc.stdin is not None and proc.stdout is not None
            try:
                proc.stdin.write(line)
                proc.stdin.flush()
                result.append(proc.stdout.readline())
            except OSError:
                result.append(b"")

        worker = threading.Thread(target=exchange, daemon=True)
        worker.start()
        worker.join(self.timeout)
        if worker.is_alive():
            proc.kill()
            self._proc = None
            raise UpstreamError(f"the oracle did not answer within {self.timeout:.0f}s")
        if not result or not result[0]:
            self._proc = None
            tail = "; ".join(self._stderr[-3:]) or f"exit code {proc.poll()}"
            raise UpstreamError(f"the oracle stopped: {tail}")
        answer = json.loads(result[0])
        if answer.get("id") != request["id"]:
            raise UpstreamError("the oracle answered out of turn")
        if answer.get("error"):
            raise UpstreamError(f"oracle: {answer['error']}")
        return OracleAnswer(
            decisions=list(answer.get("decisions") or []),
            invalid=list(answer.get("invalid") or []),
            coverage=dict(answer.get("coverage") or {}),
        )
