"""Test-wide settings. CI (CI=true) runs the property and fuzz tests derandomized, so a red CI
always reproduces; locally each run explores new examples (and keeps failures in .hypothesis/)."""

from __future__ import annotations

import os

from hypothesis import settings

settings.register_profile("ci", derandomize=True, print_blob=True)
if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
    settings.load_profile("ci")
