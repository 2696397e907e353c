"""State that survives a restart: objects in a sqlite3 file under `--data-dir`.

By default (`sync`) every write is committed before it is acknowledged: sqlite in WAL mode with
synchronous=NORMAL, which survives a killed process (not a power cut) for about the cost of a
write system call. With an interval, writes are buffered and flushed in one transaction every
`interval` (and at shutdown); a crash may then lose the writes of the last interval.

ResourceVersions never go backwards, crash or not: the store may only hand out versions below a
bound committed here first (`reserve`, one small transaction per `RESERVE_BLOCK` versions), and
a restart resumes at that bound. So every version a client saw before a crash is below the first
one after it, and a watch resumed from it gets 410 Gone instead of silently missing events.

The file, its WAL and the directory are created readable by the owner only: they hold
everything the cluster stores, secrets included.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson

from berth.secretfile import create_private, private_dir

JSON = dict[str, Any]
RESERVE_BLOCK = 10_000
FILE_NAME = "berth-cluster.sqlite3"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS objects (
    resource TEXT NOT NULL,
    namespace TEXT NOT NULL,
    name TEXT NOT NULL,
    data BLOB NOT NULL,
    PRIMARY KEY (resource, namespace, name)
);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""


class SqlitePersistence:
    """A write-behind (or, with `sync`, write-through) sqlite3 file of every stored object."""

    def __init__(self, *, data_dir: str | Path, sync: bool = False) -> None:
        self.path = private_dir(Path(data_dir)) / FILE_NAME
        create_private(self.path)
        # sqlite creates the -wal and -shm files with the database file's mode.
        self._db = sqlite3.connect(self.path, check_same_thread=False)
        self._db.executescript(_SCHEMA)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._pending: dict[tuple[str, str, str], bytes | None] = {}
        self.sync = sync
        self.rv = 0
        self.reserved = 0

    def _meta(self, key: str) -> int:
        row = self._db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return int(row[0]) if row else 0

    def load(self) -> Iterator[tuple[str, JSON | None, bytes]]:
        """Every stored row as (resource key, object or None if undecodable, raw bytes); sets
        `rv` and `reserved` to what was last committed."""
        self.rv = self._meta("rv")
        self.reserved = self._meta("reserved")
        for resource, data in self._db.execute("SELECT resource, data FROM objects"):
            try:
                obj = orjson.loads(data)
            except orjson.JSONDecodeError:
                obj = None
            raw = data.encode() if isinstance(data, str) else bytes(data)  # a TEXT row
            yield resource, obj if isinstance(obj, dict) else None, raw

    def is_empty(self) -> bool:
        return self._db.execute("SELECT 1 FROM objects LIMIT 1").fetchone() is None

    def reserve(self, rv: int) -> int:
        """Commit a bound above `rv` before the store uses `rv`; returns the bound."""
        bound = rv + RESERVE_BLOCK
        with self._db:
            self._db.execute(
                "INSERT OR REPLACE INTO meta (key, value) VALUES ('reserved', ?)", (str(bound),)
            )
        self.reserved = bound
        return bound

    def write(self, resource: str, namespace: str, name: str, data: bytes | None) -> None:
        """Buffer one write (None deletes); `flush` commits (at once when `sync`)."""
        key = (resource, namespace, name)
        self._pending[key] = data
        if self.sync:
            try:
                self.flush(rv=None)
            except BaseException:
                del self._pending[key]  # refused, so never committed later either
                raise

    def flush(self, *, rv: int | None) -> int:
        """Commit buffered writes (and `rv`, the store's resourceVersion); returns how many.
        On failure the writes stay buffered for the next flush."""
        if not self._pending and (rv is None or rv == self.rv):
            return 0
        pending = self._pending
        upserts = [(*k, v) for k, v in pending.items() if v is not None]
        deletes = [k for k, v in pending.items() if v is None]
        with self._db:
            if upserts:
                self._db.executemany(
                    "INSERT OR REPLACE INTO objects (resource, namespace, name, data) "
                    "VALUES (?, ?, ?, ?)",
                    upserts,
                )
            if deletes:
                self._db.executemany(
                    "DELETE FROM objects WHERE resource = ? AND namespace = ? AND name = ?",
                    deletes,
                )
            if rv is not None:
                self._db.execute(
                    "INSERT OR REPLACE INTO meta (key, value) VALUES ('rv', ?)", (str(rv),)
                )
        self._pending = {}
        if rv is not None:
            self.rv = rv
        return len(pending)

    def close(self, *, rv: int) -> None:
        try:
            self.flush(rv=rv)
        finally:
            self._db.close()
