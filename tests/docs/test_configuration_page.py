"""docs/configuration.md's examples run as written: each shell block of "Checking a
configuration" and "A KubeSchedulerConfiguration as it is" runs with `sh` in an empty directory
with the installed `berth` on PATH, and what it prints (stderr and stdout) is the text block
that follows it on the page, line for line."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

PAGE = Path(__file__).resolve().parents[2] / "docs" / "configuration.md"
SECTIONS = ["## Checking a configuration", "## A KubeSchedulerConfiguration as it is"]


def _examples(heading: str) -> list[tuple[str, str]]:
    text = PAGE.read_text()
    start = text.index(heading)
    body = text[start : text.index("\n## ", start + len(heading))]
    found = re.findall(r"```sh\n(.*?)```\s*```text\n(.*?)```", body, re.S)
    assert found, f"no example in {heading}"
    return found


@pytest.mark.parametrize("heading", SECTIONS)
def test_the_page_prints_what_it_says(tmp_path: Path, heading: str) -> None:
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
    env.pop("BERTH_DEBUG", None)
    for script, printed in _examples(heading):
        done = subprocess.run(
            ["sh", "-c", script],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 0, done.stderr
        assert (done.stderr + done.stdout).splitlines() == printed.splitlines()
