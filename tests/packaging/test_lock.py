"""The hashed locks (requirements/*.lock, written by tools/lock) agree with pyproject.toml: every
range there has a pin inside it, for every Python the lock covers, and every pin has hashes, so
`pip install --require-hashes` installs exactly what was locked. A range changed without
re-locking fails here, not on a user's machine."""

from __future__ import annotations

import re

import pytest
from packaging.markers import Marker
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

from tests.packaging.project import PYPROJECT, ROOT, SUPPORTED


def pins(lock: str) -> dict[str, list[tuple[Version, Marker | None, int]]]:
    """name -> [(version, marker, number of hashes)] of one lock file."""
    text = (ROOT / "requirements" / f"{lock}.lock").read_text()
    out: dict[str, list[tuple[Version, Marker | None, int]]] = {}
    for block in re.split(r"\n(?=[a-z0-9])", text):
        head = block.split(" \\\n", 1)[0]
        if head.startswith("#") or "==" not in head:
            continue
        req = Requirement(head)
        (spec,) = req.specifier
        out.setdefault(canonicalize_name(req.name), []).append(
            (Version(spec.version), req.marker, block.count("--hash=sha256:"))
        )
    return out


def wanted(lock: str) -> list[Requirement]:
    reqs = [*PYPROJECT["project"]["dependencies"], *PYPROJECT["build-system"]["requires"]]
    if lock == "test":
        reqs += PYPROJECT["project"]["optional-dependencies"]["test"]
    return [Requirement(r) for r in reqs]


@pytest.mark.parametrize("lock", ["run", "test"])
@pytest.mark.parametrize("python", SUPPORTED)
def test_every_range_has_a_pin_inside_it(lock: str, python: str) -> None:
    locked = pins(lock)
    env = {"python_version": python, "python_full_version": f"{python}.0"}
    for req in wanted(lock):
        name = canonicalize_name(req.name)
        assert name in locked, f"{req} is not in requirements/{lock}.lock: run tools/lock"
        chosen = [v for v, m, _ in locked[name] if m is None or m.evaluate(env)]
        assert len(chosen) == 1, (req, python, chosen)
        assert chosen[0] in req.specifier, f"{name}=={chosen[0]} is outside {req}: run tools/lock"


@pytest.mark.parametrize("lock", ["run", "test"])
def test_every_pin_has_hashes(lock: str) -> None:
    locked = pins(lock)
    assert len(locked) > 20
    for name, entries in locked.items():
        for version, _, hashes in entries:
            assert hashes >= 1, f"{name}=={version} has no hash"


def test_the_supported_pythons_are_stated() -> None:
    assert SUPPORTED == ("3.11", "3.12", "3.13")
    assert PYPROJECT["project"]["requires-python"] == f">={SUPPORTED[0]}"
