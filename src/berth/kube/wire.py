"""The line protocol between `berth run` and its API dispatcher process, and the pod reference
its calls carry: one orjson array per line, the operation first, nothing the worker has to parse
into a PodInfo (it needs a pod's identity, never its spec).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import orjson

# berth run -> worker
BIND = "b"  # [BIND, id, pod, node]
# [EVENT, pod, type, reason, action, message, related | null, controller, when (unix ns)]
EVENT = "e"
CONDITION = "c"  # [CONDITION, pod, status, reason, message]
FLUSH = "f"  # [FLUSH, id]: answered once every call sent before it has finished
DRAIN = "d"  # [DRAIN]: finish everything, answer DRAINED, exit
# worker -> berth run
READY = "ready"  # [READY]
BOUND = "r"  # [BOUND, id, status code, reasons, seconds, the worker's bind retries so far]
FLUSHED = "flushed"  # [FLUSHED, id, events sent, events failed]
DRAINED = "drained"  # [DRAINED, events sent, events failed, bind retries]

Wire = list[Any]


class PodIdentity(Protocol):
    """What the binder and the event recorder read of a pod: its identity, never its spec."""

    @property
    def namespace(self) -> str: ...
    @property
    def name(self) -> str: ...
    @property
    def uid(self) -> str: ...
    @property
    def resource_version(self) -> str: ...
    @property
    def scheduler_name(self) -> str: ...
    @property
    def key(self) -> str: ...


@dataclass(frozen=True, slots=True)
class PodRef:
    """A pod's identity as the dispatcher process receives it."""

    namespace: str
    name: str
    uid: str
    resource_version: str
    scheduler_name: str

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.name}"


def pod_wire(pod: PodIdentity) -> Wire:
    return [pod.namespace, pod.name, pod.uid, pod.resource_version, pod.scheduler_name]


def pod_from_wire(value: Any) -> PodRef:
    namespace, name, uid, rv, scheduler_name = value
    return PodRef(str(namespace), str(name), str(uid), str(rv), str(scheduler_name))


def encode(message: Wire) -> bytes:
    return orjson.dumps(message) + b"\n"


def decode(line: bytes) -> Wire:
    message = orjson.loads(line)
    if not isinstance(message, list) or not message or not isinstance(message[0], str):
        raise ValueError(f"not a dispatcher message: {line[:80]!r}")
    return message


# How long a line may wait for others to share its write. Each write to the pipe is a system
# call that also wakes the other process: written per event-loop iteration, the worker's answers
# went out about one per bind, and those writes were a fifth of its samples (py-spy, a bind and
# an event per pod against a local server). A millisecond more on an answer delays no decision.
WINDOW = 0.001


class Batcher:
    """Lines sent in one write per WINDOW: a decision's bind and event, and the answers of a
    burst, cost one system call instead of one each (measured: the pipe writes were 5% of the
    scheduling process's samples, one per call)."""

    def __init__(self, write: Callable[[bytes], None], *, window: float = WINDOW) -> None:
        self._write = write
        self._window = window
        self._lines: list[bytes] = []
        self._size = 0
        self._scheduled = False

    @property
    def size(self) -> int:
        """Bytes waiting for this iteration's write."""
        return self._size

    def send(self, line: bytes) -> None:
        self._lines.append(line)
        self._size += len(line)
        if not self._scheduled:
            self._scheduled = True
            asyncio.get_running_loop().call_later(self._window, self.flush)

    def flush(self) -> None:
        self._scheduled = False
        if self._lines:
            data = b"".join(self._lines)
            self._lines.clear()
            self._size = 0
            self._write(data)
