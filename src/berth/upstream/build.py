"""Building `berth-upstream` (the real control plane, Go sources under `upstream/`) into a cache
keyed by those sources, and finding a built binary. Only `build` needs Go; running a component
needs nothing but the binary, so `berth` never needs a Go toolchain to import or run.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from berth.upstream.errors import UpstreamError

BINARY = "berth-upstream"
PACKAGE = "./cmd/berth-upstream"
# A checkout's upstream/ sits beside src/ (src/berth/upstream/build.py -> the repository root).
SOURCE_DIR = Path(__file__).resolve().parents[3] / "upstream"
ENV_BINARY = "BERTH_UPSTREAM_BIN"
ENV_CACHE = "BERTH_UPSTREAM_CACHE"
# A build for sources nobody has built or run for this long is removed by the next build: each
# key is a ~150 MB binary, and every edit of upstream/ (or a branch that has one) makes a new key.
KEEP_UNUSED_SECONDS = 14 * 24 * 3600
USED_STAMP = ".used"


def cache_root() -> Path:
    """$BERTH_UPSTREAM_CACHE, else the user's cache directory: outside the checkout, so a fresh
    clone on a machine that built once reuses the binary."""
    explicit = os.environ.get(ENV_CACHE)
    if explicit:
        return Path(explicit).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or str(Path("~/.cache").expanduser())
    return Path(base) / "berth" / "upstream"


@dataclass(frozen=True)
class Pins:
    """The versions upstream/go.mod pins (what the binary will say it links)."""

    kubernetes: str
    etcd: str


def read_pins(source: Path = SOURCE_DIR) -> Pins:
    text = (source / "go.mod").read_text()
    kube = re.search(r"^\s*k8s\.io/kubernetes => k8s\.io/kubernetes (v\S+)", text, re.M)
    etcd = re.search(r"^\s*go\.etcd\.io/etcd/server/v3 (v\S+)", text, re.M)
    if not kube or not etcd:
        raise UpstreamError(f"{source / 'go.mod'}: cannot find the k8s.io/kubernetes or etcd pin")
    return Pins(kubernetes=kube.group(1), etcd=etcd.group(1))


def ldflags(pins: Pins) -> str:
    """Version stamps as upstream's hack/lib/version.sh sets them, so /version and kubectl see
    the release (an unstamped build says v0.0.0-master); -s -w drop symbols (a third smaller)."""
    major, minor = pins.kubernetes.lstrip("v").split(".")[:2]
    values = {
        "gitVersion": pins.kubernetes,
        "gitMajor": major,
        "gitMinor": minor,
        "gitTreeState": "clean",
        "buildDate": "1970-01-01T00:00:00Z",  # reproducible: the key, not a clock, names a build
    }
    stamps = [
        f"-X {package}.{key}={value}"
        for package in ("k8s.io/component-base/version", "k8s.io/client-go/pkg/version")
        for key, value in values.items()
    ]
    return " ".join(["-s", "-w", *stamps])


def source_key(source: Path = SOURCE_DIR) -> str:
    """A digest of everything the build reads from the checkout: go.mod, go.sum, every Go file
    but tests (`go build` never reads them: the recorders of upstream's behaviour live there),
    and the link flags. Unchanged pins and sources reuse the cached binary."""
    digest = hashlib.sha256()
    sources = sorted(p for p in source.rglob("*.go") if not p.name.endswith("_test.go"))
    files = [source / "go.mod", source / "go.sum", *sources]
    for path in files:
        digest.update(str(path.relative_to(source)).encode() + b"\0")
        digest.update(path.read_bytes() + b"\0")
    digest.update(ldflags(read_pins(source)).encode())
    return digest.hexdigest()[:20]


def cached_binary(source: Path = SOURCE_DIR) -> Path:
    return cache_root() / source_key(source) / BINARY


def find_binary() -> Path:
    """The binary to run: $BERTH_UPSTREAM_BIN, else this checkout's cached build."""
    explicit = os.environ.get(ENV_BINARY)
    if explicit:
        path = Path(explicit).expanduser()
        if not os.access(path, os.X_OK):
            raise UpstreamError(f"{ENV_BINARY}={explicit}: not an executable file")
        return path
    if not (SOURCE_DIR / "go.mod").exists():
        raise UpstreamError(
            f"{BINARY} not found: set {ENV_BINARY} to a built binary (no upstream/ sources here)"
        )
    path = cached_binary()
    if not path.exists():
        raise UpstreamError(f"{BINARY} is not built for these sources: run ./dev upstream build")
    _mark_used(path.parent)
    return path


def _mark_used(entry: Path) -> None:
    with contextlib.suppress(OSError):  # a read-only cache still runs; it is only never pruned
        (entry / USED_STAMP).touch()


def _last_used(entry: Path) -> float:
    times = []
    for name in (USED_STAMP, BINARY):
        try:
            times.append((entry / name).stat().st_mtime)
        except OSError:
            continue
    return max(times, default=0.0)


def prune(*, keep: Path, now: float | None = None) -> list[Path]:
    """Remove cache entries other than `keep` unused for KEEP_UNUSED_SECONDS; return them. Only
    directories named like a source key and holding nothing but a binary and its stamp go, so a
    cache root pointed at the wrong directory loses nothing else."""
    now = time.time() if now is None else now
    removed = []
    root = keep.parent
    for entry in sorted(root.iterdir()) if root.is_dir() else ():
        if entry == keep or not entry.is_dir() or not re.fullmatch(r"[0-9a-f]{20}", entry.name):
            continue
        names = {p.name for p in entry.iterdir()}
        if not names <= {BINARY, USED_STAMP} or now - _last_used(entry) < KEEP_UNUSED_SECONDS:
            continue
        shutil.rmtree(entry, ignore_errors=True)
        removed.append(entry)
    return removed


def go_toolchain() -> str:
    go = shutil.which("go")
    if go is None:
        raise UpstreamError("Go is not installed (no `go` on PATH): the upstream build needs Go")
    return go


def build(*, source: Path = SOURCE_DIR, force: bool = False, quiet: bool = False) -> Path:
    """Build into the cache unless the binary for these sources is there; return its path."""
    target = cached_binary(source)
    if target.exists() and not force:
        _mark_used(target.parent)
        if not quiet:
            print(f"{BINARY}: up to date ({target})", file=sys.stderr)
        return target
    go = go_toolchain()
    pins = read_pins(source)
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(f".{BINARY}.{os.getpid()}.partial")
    if not quiet:
        print(
            f"{BINARY}: building kube-apiserver, kube-controller-manager, kube-scheduler "
            f"({pins.kubernetes}) and etcd ({pins.etcd}) with {go}; a cold build takes many "
            "minutes, later ones reuse Go's build cache",
            file=sys.stderr,
        )
    started = time.monotonic()
    command = [go, "build", "-trimpath", "-ldflags", ldflags(pins), "-o", str(partial), PACKAGE]
    # GOFLAGS from the caller stay (e.g. -buildvcs=false); the module must not be rewritten.
    env = {**os.environ, "GOFLAGS": f"{os.environ.get('GOFLAGS', '')} -mod=readonly".strip()}
    result = subprocess.run(command, cwd=source, env=env, capture_output=True, text=True)
    if result.returncode != 0:
        partial.unlink(missing_ok=True)
        # `# package` headers and download notes say nothing; the first other line is the cause.
        lines = [
            line.strip()
            for line in result.stderr.splitlines()
            if line.strip() and not line.startswith(("#", "go: downloading"))
        ]
        reason = lines[0] if lines else f"exit code {result.returncode}"
        raise UpstreamError(f"{BINARY}: go build failed: {reason}")
    partial.replace(target)  # atomic: a concurrent reader sees the old file or the whole new one
    _mark_used(target.parent)
    for old in prune(keep=target.parent):
        if not quiet:
            print(f"{BINARY}: removed a build unused for 14 days ({old})", file=sys.stderr)
    if not quiet:
        print(f"{BINARY}: built in {time.monotonic() - started:.0f}s ({target})", file=sys.stderr)
    return target
