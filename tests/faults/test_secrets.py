"""Secrets on the host: the admin token only on argv (visible in `ps`), the kubeconfig and the
sqlite file world-readable, the TLS key restricted only after it was written, a new CA at every
start of `--tls --data-dir` (so earlier kubeconfigs stopped working), `--host ::1` written as a
URL kubectl rejects, and the deployment serving /metrics as plain HTTP on every interface."""

from __future__ import annotations

import os
import socket
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from berth.cluster import EmbeddedCluster

from .conftest import ClusterProcess, call, env_without_cluster, kubectl, needs_kubectl

pytestmark = pytest.mark.timeout(120)
DEPLOY = Path(__file__).resolve().parents[2] / "deploy"


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def open_umask() -> Iterator[None]:
    """umask 0, so only the mode a file is created with protects it."""
    old = os.umask(0)
    try:
        yield
    finally:
        os.umask(old)


def test_the_admin_token_comes_from_a_file_or_the_environment_not_argv(tmp_path: Path) -> None:
    secret = "f1le-t0ken-9d3c"
    token_file = tmp_path / "token"
    token_file.write_text(secret + "\n")
    c = ClusterProcess(tmp_path, "--token-file", str(token_file)).start()
    try:
        assert c.proc is not None
        argv = Path(f"/proc/{c.proc.pid}/cmdline").read_bytes()
        assert secret.encode() not in argv
        assert call(c.url + "/api/v1/nodes")[0] == 401
        assert call(c.url + "/api/v1/nodes", token=secret)[0] == 200
    finally:
        assert c.stop() == 0
    env = {**env_without_cluster(tmp_path), "BERTH_CLUSTER_TOKEN": "env-t0ken-77a1"}
    c = ClusterProcess(tmp_path).start(env=env)
    try:
        assert c.proc is not None
        assert b"env-t0ken-77a1" not in Path(f"/proc/{c.proc.pid}/cmdline").read_bytes()
        assert call(c.url + "/api/v1/nodes")[0] == 401
        assert call(c.url + "/api/v1/nodes", token="env-t0ken-77a1")[0] == 200
    finally:
        assert c.stop() == 0


def test_more_tokens_from_a_token_auth_file(tmp_path: Path) -> None:
    users = tmp_path / "tokens.csv"
    users.write_text('alice-t,alice,1001,"devs,ops"\n')
    c = ClusterProcess(tmp_path, "--token", "admin", "--token-auth-file", str(users)).start()
    try:
        assert call(c.url + "/api/v1/nodes", token="alice-t")[0] == 200
        assert call(c.url + "/api/v1/nodes", token="mallory")[0] == 401
    finally:
        assert c.stop() == 0


def test_secret_files_are_private_from_creation(tmp_path: Path, open_umask: None) -> None:
    data = tmp_path / "data"
    out = tmp_path / "out" / "kubeconfig"
    with EmbeddedCluster(nodes=1, tls=True, token="t", data_dir=data, kubeconfig_out=out):
        files = [out, data / "berth-cluster.sqlite3", data / "berth-cluster.sqlite3-wal"]
        files += [data / "tls" / "tls.key", data / "tls" / "ca.key"]
        for f in files:
            assert mode(f) == 0o600, (f, oct(mode(f)))
        assert mode(data) == 0o700 and mode(data / "tls") == 0o700


def test_keys_are_never_written_readable_then_restricted(
    tmp_path: Path, open_umask: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """chmod after the write leaves a window in which anyone may read the key: no secret file
    may need it."""
    from berth.cluster.tls import generate

    def refuse(*_a: object, **_k: object) -> None:
        raise AssertionError("a secret file was restricted after it was created")

    monkeypatch.setattr(os, "chmod", refuse)
    monkeypatch.setattr(Path, "chmod", refuse)
    certs = generate(directory=tmp_path / "tls", hosts=["127.0.0.1"])
    assert mode(certs.key_path) == 0o600


@needs_kubectl
def test_the_ca_survives_restarts_so_kubeconfigs_keep_working(tmp_path: Path) -> None:
    data = tmp_path / "data"
    c = ClusterProcess(tmp_path, "--tls", "--token", "t", "--data-dir", str(data))
    c.start()
    first = c.kubeconfig.read_text()
    saved = tmp_path / "saved.kubeconfig"
    saved.write_text(first)
    assert kubectl(saved, "get", "nodes").returncode == 0
    assert c.stop() == 0
    c.start()
    try:
        got = kubectl(saved, "get", "nodes", "-o", "name")
        assert got.returncode == 0, got.stderr
        assert got.stdout.split() == ["node/node-001", "node/node-002", "node/node-003"]
        assert c.kubeconfig.read_text() == first
    finally:
        assert c.stop() == 0


def _ipv6_loopback() -> bool:
    try:
        with socket.socket(socket.AF_INET6) as s:
            s.bind(("::1", 0))
        return True
    except OSError:
        return False


@needs_kubectl
@pytest.mark.skipif(not _ipv6_loopback(), reason="no IPv6 loopback")
def test_an_ipv6_host_is_a_url_kubectl_accepts(tmp_path: Path) -> None:
    with EmbeddedCluster(nodes=1, host="::1") as c:
        server = yaml.safe_load(c.kubeconfig_path.read_text())["clusters"][0]["cluster"]["server"]
        assert server == f"http://[::1]:{c.port}"
        got = kubectl(c.kubeconfig_path, "get", "nodes", "-o", "name")
        assert got.returncode == 0 and got.stdout.strip() == "node/node-001", got.stderr


def test_the_deployment_never_serves_metrics_as_plain_http_beyond_loopback() -> None:
    from berth.telemetry import is_loopback

    deployment = yaml.safe_load((DEPLOY / "scheduler" / "deployment.yaml").read_text())
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    args = container["args"]
    address = args[args.index("--bind-address") + 1]
    assert not is_loopback(address.rpartition(":")[0])
    for probe in ("livenessProbe", "readinessProbe"):
        assert container[probe]["httpGet"]["scheme"] == "HTTPS"


def test_health_beyond_loopback_is_https_even_without_a_certificate() -> None:
    """What `berth run --bind-address 0.0.0.0:...` does, checked without leaving loopback:
    the decision, and a self-signed context that really serves."""
    import asyncio
    import ssl
    import urllib.request

    from berth.cluster.tls import self_signed_context
    from berth.telemetry import HealthServer, SchedulerMetrics, is_loopback

    assert not is_loopback("0.0.0.0") and not is_loopback("10.1.2.3")
    assert is_loopback("127.0.0.1") and is_loopback("::1") and is_loopback("localhost")

    async def main() -> int:
        server = HealthServer(metrics=SchedulerMetrics(), ready=lambda: True)
        await server.start(
            host="127.0.0.1", port=0, ssl_context=self_signed_context(hosts=["127.0.0.1"])
        )
        try:
            ctx = ssl.create_default_context()
            ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE
            url = f"https://127.0.0.1:{server.port}/metrics"
            with await asyncio.to_thread(urllib.request.urlopen, url, context=ctx, timeout=10) as r:
                return int(r.status)
        finally:
            await server.stop()

    assert asyncio.run(main()) == 200


SCRATCH_ROWS = [
    ("plain, kubeconfig given", False, False, True, []),
    ("TLS with a data directory, kubeconfig given", True, True, True, []),
    ("plain, no kubeconfig given", False, False, False, ["kubeconfig"]),
    ("TLS, no data directory", True, False, True, ["ca.crt", "ca.key", "tls.crt", "tls.key"]),
]


@pytest.mark.parametrize(
    ("name", "tls", "data", "out", "scratch"), SCRATCH_ROWS, ids=[r[0] for r in SCRATCH_ROWS]
)
def test_a_private_scratch_directory_only_when_something_goes_there(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    name: str,
    tls: bool,
    data: bool,
    out: bool,
    scratch: list[str],
) -> None:
    """A cluster killed before stop() leaves its scratch directory (kubeconfig, keys) behind:
    one that writes everything where it was told makes none."""
    import tempfile

    temp = tmp_path / "temp"
    temp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(temp))
    options: dict[str, object] = {"nodes": 1, "tls": tls}
    if data:
        options["data_dir"] = tmp_path / "data"
    if out:
        options["kubeconfig_out"] = tmp_path / "kubeconfig"
    with EmbeddedCluster(**options):  # type: ignore[arg-type]
        made = list(temp.iterdir())
        assert sorted(f.name for d in made for f in d.iterdir()) == scratch
        assert len(made) == (1 if scratch else 0)
    assert list(temp.iterdir()) == []
