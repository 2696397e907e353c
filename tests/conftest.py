"""Test-wide settings. CI (CI=true) runs the property and fuzz tests derandomized, so a red CI
always reproduces; locally each run explores new examples (and keeps failures in .hypothesis/).

`upstream_session` is the real control plane (tests/upstream.py), started once per session on
first use: skipped with its reason when it cannot run here, an error when CI=true."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from hypothesis import settings

from tests.upstream import UpstreamSession, ci, unavailable_reason

settings.register_profile("ci", derandomize=True, print_blob=True)
if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
    settings.load_profile("ci")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "embedded_only(reason): the test runs on the embedded cluster only; the reason says why",
    )


@pytest.fixture(scope="session")
def upstream_session() -> Iterator[UpstreamSession]:
    reason = unavailable_reason()
    if reason is not None:
        if ci():
            pytest.fail(f"CI=true runs the tests on the real control plane, but: {reason}")
        pytest.skip(f"upstream: {reason}")
    session = UpstreamSession()
    session.start()
    try:
        yield session
    finally:
        session.stop()
