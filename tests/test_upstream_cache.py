"""The upstream binary cache: a build removes entries unused for two weeks, and nothing else."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from berth.upstream.build import BINARY, USED_STAMP, prune

NOW = 2_000_000_000.0
DAY = 24 * 3600


def _entry(root: Path, name: str, *, used_days_ago: float | None, binary_days_ago: float) -> Path:
    entry = root / name
    entry.mkdir()
    binary = entry / BINARY
    binary.write_bytes(b"\x7fELF")
    os.utime(binary, (NOW - binary_days_ago * DAY,) * 2)
    if used_days_ago is not None:
        stamp = entry / USED_STAMP
        stamp.touch()
        os.utime(stamp, (NOW - used_days_ago * DAY,) * 2)
    return entry


@pytest.mark.parametrize(
    ("name", "used_days_ago", "binary_days_ago", "extra", "removed"),
    [
        ("a" * 20, None, 30, None, True),  # built long ago, never run since
        ("b" * 20, 20, 30, None, True),  # last run 20 days ago
        ("c" * 20, 1, 30, None, False),  # run yesterday
        ("d" * 20, None, 3, None, False),  # built three days ago
        ("e" * 20, 13.9, 30, None, False),  # just inside the window
        ("not-a-key", None, 30, None, False),  # not a name the cache makes
        ("f" * 20, None, 30, "notes.txt", False),  # holds something the cache never writes
    ],
)
def test_prune(
    tmp_path: Path,
    name: str,
    used_days_ago: float | None,
    binary_days_ago: float,
    extra: str | None,
    removed: bool,
) -> None:
    keep = _entry(tmp_path, "0" * 20, used_days_ago=None, binary_days_ago=100)
    entry = _entry(tmp_path, name, used_days_ago=used_days_ago, binary_days_ago=binary_days_ago)
    if extra:
        (entry / extra).write_text("mine")
    gone = prune(keep=keep, now=NOW)
    assert gone == ([entry] if removed else [])
    assert entry.exists() is not removed
    assert keep.exists()  # the entry being built or run is never removed, however old


def test_missing_root_prunes_nothing(tmp_path: Path) -> None:
    assert prune(keep=tmp_path / "absent" / ("0" * 20), now=NOW) == []
