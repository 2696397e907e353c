"""Berth as a user installs it: a wheel built from this tree, installed with its locked
dependencies into a fresh virtualenv outside the source tree, for every supported Python, and
`berth demo` run from there (its workload is package data, not a file of the checkout). A Python
below the stated minimum refuses the wheel. Each supported interpreter is required under CI
(CI=true); locally a missing one is skipped."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from tests.packaging.project import ROOT, SUPPORTED

BELOW = "3.10"
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def interpreter(version: str) -> str | None:
    """pythonX.Y on PATH (Debian's, a venv's), else pyenv's build of that version."""
    found = shutil.which(f"python{version}")
    if found and _runs(found):
        return found
    root = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv")) / "versions"
    for candidate in sorted(root.glob(f"{version}.*/bin/python{version}"), reverse=True):
        if _runs(str(candidate)):
            return str(candidate)
    return None


def _runs(python: str) -> bool:
    # a pyenv shim exists for every installed version but fails unless that version is selected
    return subprocess.run([python, "-c", ""], capture_output=True, timeout=30).returncode == 0


def need(version: str) -> str:
    python = interpreter(version)
    if python is None:
        message = f"python{version} is not installed (pyenv install {version})"
        if IN_CI:
            pytest.fail(f"{message}: required in CI")
        pytest.skip(message)
    return python


def sh(*args: str | Path, cwd: Path, timeout: float = 300) -> str:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    done = subprocess.run(
        [str(a) for a in args], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout
    )
    assert done.returncode == 0, f"{args}: exit {done.returncode}\n{done.stdout}\n{done.stderr}"
    return done.stdout


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    # from a copy of what the sdist holds: a build in the checkout would reuse its build/
    tree = tmp_path_factory.mktemp("tree")
    for f in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / f, tree / f)
    shutil.copytree(ROOT / "src", tree / "src", ignore=shutil.ignore_patterns("*.egg-info"))
    out = tmp_path_factory.mktemp("dist")
    build = ("wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(out), str(tree))
    sh(sys.executable, "-m", "pip", *build, cwd=out)
    (built,) = out.glob("berth-*.whl")
    return built


def test_the_wheel_ships_the_examples_and_no_tests(wheel: Path) -> None:
    names = set(zipfile.ZipFile(wheel).namelist())
    for f in ("workload.yaml", "cluster.yaml", "metrics-price.yaml", "metrics-prometheus.yaml"):
        assert f"berth/examples/{f}" in names
    assert "berth/py.typed" in names
    assert not [n for n in names if n.startswith(("tests/", "examples/", "deploy/"))]


@pytest.mark.parametrize("version", SUPPORTED)
def test_berth_demo_from_the_wheel(version: str, wheel: Path, tmp_path: Path) -> None:
    python = need(version)
    venv = tmp_path / "venv"
    sh(python, "-m", "venv", venv, cwd=tmp_path)
    pip = (venv / "bin" / "python", "-m", "pip", "install", "-q")
    sh(*pip, "--require-hashes", "-r", ROOT / "requirements" / "run.lock", cwd=tmp_path)
    sh(*pip, "--no-deps", wheel, cwd=tmp_path)
    berth = venv / "bin" / "berth"
    where = sh(venv / "bin" / "python", "-c", "import berth; print(berth.__file__)", cwd=tmp_path)
    assert where.startswith(str(venv)), where  # the installed copy, not this checkout's src/

    out = sh(berth, "demo", cwd=tmp_path, timeout=120)
    assert "default/web-0" in out and "node-00" in out
    assert "6/9 pods placed" in out, out
    assert "schedulerName is 'default-scheduler': not Berth's to place" in out
    assert "  berth demo --keep-running" in out  # a command this install has

    # the sample dump, written out from the package and simulated, as the README shows
    dump = sh(berth, "examples", "cluster.yaml", cwd=tmp_path)
    (tmp_path / "cluster.yaml").write_text(dump)
    table = sh(berth, "simulate", "cluster.yaml", "--seed", "1", cwd=tmp_path)
    assert "ml/trainer" in table and "node-a2" in table


def test_a_python_below_the_minimum_refuses_the_wheel(wheel: Path, tmp_path: Path) -> None:
    python = need(BELOW)
    sh(python, "-m", "venv", tmp_path / "venv", cwd=tmp_path)
    done = subprocess.run(
        [str(tmp_path / "venv" / "bin" / "pip"), "install", "--no-deps", str(wheel)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode != 0
    assert "requires a different Python" in done.stderr, done.stderr
