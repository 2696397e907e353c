"""The informer's watch stream on its own: events split across chunks and many in one chunk."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

from berth.kube.informer import Informer
from berth.state.store import object_key


class _Content:
    def __init__(self, chunks: list[bytes]) -> None:
        self._chunks = chunks

    async def iter_any(self) -> AsyncIterator[bytes]:
        for chunk in self._chunks:
            yield chunk


class _Response:
    status = 200

    def __init__(self, chunks: list[bytes]) -> None:
        self.content = _Content(chunks)
        self.released = False

    def release(self) -> None:
        self.released = True


class _Handler:
    def __init__(self) -> None:
        self.log: list[tuple[str, str, str]] = []

    def on_add(self, obj: dict[str, Any]) -> None:
        self.log.append(("add", obj["metadata"]["name"], obj["metadata"]["resourceVersion"]))

    def on_update(self, old: dict[str, Any], new: dict[str, Any]) -> None:
        self.log.append(("update", new["metadata"]["name"], new["metadata"]["resourceVersion"]))

    def on_delete(self, obj: dict[str, Any]) -> None:
        self.log.append(("delete", obj["metadata"]["name"], obj["metadata"]["resourceVersion"]))


def _event(kind: str, name: str, rv: int) -> bytes:
    obj = {"metadata": {"name": name, "namespace": "ns", "resourceVersion": str(rv)}}
    return json.dumps({"type": kind, "object": obj}).encode() + b"\n"


def _watch(chunks: list[bytes]) -> tuple[_Handler, Informer, _Response]:
    response = _Response(chunks)

    async def call(**_: Any) -> _Response:
        return response

    handler = _Handler()
    informer = Informer(name="pods", call=call, handler=handler)
    asyncio.run(informer._watch())
    return handler, informer, response


def test_events_split_across_chunks_and_many_per_chunk() -> None:
    stream = b"".join(
        [
            _event("ADDED", "a", 1),
            _event("ADDED", "b", 2),
            b"\n",  # a blank line between events is skipped
            _event("MODIFIED", "a", 3),
            _event("BOOKMARK", "", 4),
            _event("DELETED", "b", 5),
        ]
    )
    # a deletion hands the handler the object as it was last seen
    want = [("add", "a", "1"), ("add", "b", "2"), ("update", "a", "3"), ("delete", "b", "2")]
    for size in (1, 7, 40, len(stream)):  # one byte at a time up to everything in one chunk
        chunks = [stream[i : i + size] for i in range(0, len(stream), size)]
        handler, informer, response = _watch(chunks)
        assert handler.log == want, size
        assert informer.resource_version == "5"
        assert response.released
        assert set(informer.cache) == {object_key({"metadata": {"name": "a", "namespace": "ns"}})}


def test_an_unterminated_last_line_is_not_an_event() -> None:
    stream = _event("ADDED", "a", 1) + _event("ADDED", "b", 2).rstrip(b"\n")[:-3]
    handler, _, _ = _watch([stream])
    assert handler.log == [("add", "a", "1")]
