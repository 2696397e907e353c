"""The loop both simulated agents (`kubelet.py`, `provisioner.py`) run: informers that queue
each changed object's key once, and workers that hand the cached object to `handle`. One
object's failure is logged and never stops a worker; the object is looked at again on its next
change, or after `retry_after` seconds when set.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from berth.kube.informer import Informer, object_key

Obj = dict[str, Any]


class QueuedKeys:
    """An informer handler and a work queue: every change queues the object's key once."""

    def __init__(self) -> None:
        self._queue: asyncio.Queue[str] = asyncio.Queue()
        self._queued: set[str] = set()

    async def get(self) -> str:
        key = await self._queue.get()
        self._queued.discard(key)
        return key

    def on_add(self, obj: Obj) -> None:
        key = object_key(obj)
        if key not in self._queued:
            self._queued.add(key)
            self._queue.put_nowait(key)

    def on_update(self, old: Obj, new: Obj) -> None:
        self.on_add(new)

    def on_delete(self, obj: Obj) -> None:
        pass


class InformerController:
    """Run `informers` and `workers` workers over `watched`'s objects until cancelled."""

    def __init__(
        self,
        *,
        informers: list[Informer],
        watched: Informer,
        keys: QueuedKeys,
        workers: int,
        log: logging.Logger,
        what: str,
        retry_after: float | None = None,
    ) -> None:
        self.informers = informers
        self.watched = watched
        self.keys = keys
        self.workers = workers
        self._log = log
        self._what = what
        self._retry_after = retry_after

    async def run(self, *, synced: asyncio.Event | None = None) -> None:
        tasks = [asyncio.create_task(i.run()) for i in self.informers]
        tasks += [asyncio.create_task(self._work()) for _ in range(self.workers)]
        try:
            for informer in self.informers:
                await informer.synced.wait()
            if synced is not None:
                synced.set()
            await asyncio.gather(*tasks)
        finally:
            for task in tasks:
                task.cancel()

    async def handle(self, obj: Obj) -> None:
        raise NotImplementedError

    async def _work(self) -> None:
        while True:
            key = await self.keys.get()
            obj = self.watched.cache.get(key)
            if obj is None:
                continue
            try:
                await self.handle(obj)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # one object's failure never stops the loop
                self._log.warning(f"{self._what} failed", extra={"key": key, "error": repr(exc)})
                if self._retry_after is not None:
                    asyncio.get_running_loop().call_later(self._retry_after, self.keys.on_add, obj)
