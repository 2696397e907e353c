"""State that survives a restart: objects in a sqlite3 file under `--data-dir`.

Writes are buffered and flushed in one transaction every `interval` (and at shutdown), so a
benchmark does not pay a commit per request. A crash (not a clean stop) may lose the last
interval's writes; the resourceVersion never goes backwards across a restart.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson

JSON = dict[str, Any]

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
    """A write-behind sqlite3 file of every stored object."""

    def __init__(self, *, data_dir: str | Path) -> None:
        self.path = Path(data_dir) / "berth-cluster.sqlite3"
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(self.path, check_same_thread=False)
        self._db.executescript(_SCHEMA)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._pending: dict[tuple[str, str, str], bytes | None] = {}
        self.rv = 0

    def load(self) -> Iterator[tuple[str, JSON]]:
        """Every stored (resource key, object); sets `rv` to the last saved resourceVersion."""
        row = self._db.execute("SELECT value FROM meta WHERE key = 'rv'").fetchone()
        self.rv = int(row[0]) if row else 0
        for resource, data in self._db.execute("SELECT resource, data FROM objects"):
            yield resource, orjson.loads(data)

    def is_empty(self) -> bool:
        return self._db.execute("SELECT 1 FROM objects LIMIT 1").fetchone() is None

    def write(self, resource: str, namespace: str, name: str, data: bytes | None) -> None:
        """Buffer one write (None deletes); `flush` commits."""
        self._pending[(resource, namespace, name)] = data

    def flush(self, *, rv: int) -> int:
        """Commit buffered writes and the current resourceVersion; returns how many."""
        if not self._pending and rv == self.rv:
            return 0
        pending, self._pending = self._pending, {}
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
            self._db.execute(
                "INSERT OR REPLACE INTO meta (key, value) VALUES ('rv', ?)", (str(rv),)
            )
        self.rv = rv
        return len(pending)

    def close(self, *, rv: int) -> None:
        self.flush(rv=rv)
        self._db.close()
