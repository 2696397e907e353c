"""Running the real control plane from a built `berth-upstream`: etcd, kube-apiserver,
kube-controller-manager and, on request, kube-scheduler, each its own process on 127.0.0.1 with
TLS, client-certificate authentication and the RBAC authorizer, plus N fake nodes.

Nodes have no kubelet (as in upstream's scheduler_perf), so the node-lifecycle controller is left
out and the TaintNodesByCondition admission plugin is off: otherwise every node would carry the
`not-ready` taint (added at creation, removed only by that controller once a kubelet reports)
and later be tainted unreachable. `kubelet=True` adds a simulated kubelet instead (pods Running,
deletions finished) for tests that need pods to start or to go away, `provisioners` a simulated
CSI provisioner beside the real PV controller.
"""

from __future__ import annotations

import base64
import contextlib
import ctypes
import json
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import urllib3
import yaml

from berth.cluster.nodes import NodeShape, make_node
from berth.secretfile import write_private
from berth.upstream.build import find_binary
from berth.upstream.errors import UpstreamError
from berth.upstream.pki import APISERVER_NAMES, Authority, Pair, service_account_keys

HOST = "127.0.0.1"
ADMIN_USER = "berth-admin"
SERVICE_CIDR = "10.96.0.0/16"
ISSUER = "https://kubernetes.default.svc.cluster.local"
# kube-controller-manager's default set minus the one that needs kubelets to renew node leases.
CONTROLLERS = "*,-node-lifecycle-controller"
AUDIT_POLICY = {
    "apiVersion": "audit.k8s.io/v1",
    "kind": "Policy",
    "omitStages": ["RequestReceived", "ResponseStarted"],
    "rules": [{"level": "Metadata"}],
}


@dataclass(frozen=True)
class Options:
    """What to run. Defaults: the control plane without a scheduler, no nodes."""

    nodes: int = 0
    zones: int = 1
    shape: NodeShape = field(default_factory=NodeShape)
    scheduler: bool = False
    kubelet: bool = False
    provisioners: tuple[str, ...] = ()  # CSI provisioner names to simulate
    port: int = 0  # kube-apiserver's secure port; 0 picks a free one
    audit: bool = False  # an audit log of every request (who, what, answer code)
    log_dir: Path | None = None  # keep the components' logs here (else in the data dir)
    extra_args: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    ready_timeout: float = 180.0


@dataclass
class _Process:
    name: str
    popen: subprocess.Popen[bytes]
    log: Path


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


def check_port_free(port: int) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind((HOST, port))
        except OSError as exc:
            raise UpstreamError(f"port {port} on {HOST} is in use ({exc.strerror})") from None


# Resolved before any fork, not in the child; Linux only (elsewhere children outlive a killed
# launcher, as any subprocess does).
_PRCTL = getattr(ctypes.CDLL(None, use_errno=True), "prctl", None)
_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    """Children get SIGTERM if the launcher dies (even by SIGKILL): no stray etcd on a shared
    machine. PR_SET_PDEATHSIG is per thread: start the control plane from a long-lived one."""
    if _PRCTL is not None:
        _PRCTL(_PR_SET_PDEATHSIG, signal.SIGTERM)


def kubeconfig_text(
    *, server: str, ca: Path, user: str, pair: Pair | None = None, token: str = ""
) -> str:
    """A self-contained kubeconfig (data inline): valid as a copy, anywhere on this machine."""

    def b64(path: Path) -> str:
        return base64.b64encode(path.read_bytes()).decode()

    credentials: dict[str, str] = {}
    if pair is not None:
        credentials = {
            "client-certificate-data": b64(pair.cert),
            "client-key-data": b64(pair.key),
        }
    if token:
        credentials["token"] = token
    doc = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {
                "name": "upstream",
                "cluster": {"server": server, "certificate-authority-data": b64(ca)},
            }
        ],
        "users": [{"name": user, "user": credentials}],
        "contexts": [{"name": "upstream", "context": {"cluster": "upstream", "user": user}}],
        "current-context": "upstream",
    }
    return yaml.safe_dump(doc, sort_keys=False)


class ControlPlane:
    """Start with `start()` (or `with`), stop with `stop()`; everything lives in a private
    temporary directory that `stop()` removes."""

    def __init__(self, options: Options | None = None, *, binary: Path | None = None) -> None:
        self.options = options or Options()
        self._binary = binary
        self._processes: dict[str, _Process] = {}
        self._dir: Path | None = None
        self.port = 0
        self.scheduler_port = 0
        self.ready_seconds = 0.0
        self._http: urllib3.PoolManager | None = None
        self._etcd: tuple[str, Pair, Path] | None = None
        self._ca: Authority | None = None
        self._running_binary: Path | None = None

    # -- paths and clients -------------------------------------------------------------------

    @property
    def directory(self) -> Path:
        if self._dir is None:
            raise UpstreamError("the control plane is not running")
        return self._dir

    @property
    def url(self) -> str:
        return f"https://{HOST}:{self.port}"

    @property
    def ca_path(self) -> Path:
        return self.directory / "pki" / "ca.crt"

    @property
    def kubeconfig_path(self) -> Path:
        """The admin's kubeconfig (system:masters), 0600."""
        return self.directory / "admin.kubeconfig"

    def pid(self, component: str) -> int:
        """A component's process id (`etcd`, `kube-apiserver`, ...), e.g. for its CPU time."""
        return self._processes[component].popen.pid

    def log_path(self, component: str) -> Path:
        return self._processes[component].log

    def write_kubeconfig(self, path: Path) -> Path:
        """Copy the admin kubeconfig to `path`, created 0600."""
        return write_private(path, self.kubeconfig_path.read_bytes())

    def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        timeout: float = 30.0,
        content_type: str = "application/json",
    ) -> tuple[int, Any]:
        """One admin API call (JSON in, JSON out): for the launcher's own set-up."""
        if self._http is None:
            raise UpstreamError("the control plane is not running")
        data = None if body is None else json.dumps(body).encode()
        response = self._http.request(
            method,
            self.url + path,
            body=data,
            headers={"Content-Type": content_type, "Accept": "application/json"},
            timeout=timeout,
            retries=False,
        )
        text = response.data
        try:
            return response.status, json.loads(text) if text else None
        except ValueError:
            return response.status, text.decode(errors="replace")

    # -- lifecycle -----------------------------------------------------------------------------

    def start(self) -> ControlPlane:
        options = self.options
        binary = self._binary or find_binary()
        if options.port:
            check_port_free(options.port)
        started = time.monotonic()
        self._dir = Path(tempfile.mkdtemp(prefix="berth-upstream-"))  # 0700
        try:
            self._start(binary, started)
        except BaseException:
            self.stop()
            raise
        return self

    def _start(self, binary: Path, started: float) -> None:
        options = self.options
        root = self.directory
        pki = root / "pki"
        pki.mkdir()
        logs = self.log_dir
        logs.mkdir(parents=True, exist_ok=True)
        ca = Authority(pki)
        self._ca, self._running_binary = ca, binary
        sa = service_account_keys(pki)
        etcd_server = ca.issue(
            "etcd-server", cn="etcd", hosts=("127.0.0.1", "localhost"), server=True, client=True
        )
        etcd_client = ca.issue(
            "apiserver-etcd-client", cn="kube-apiserver-etcd-client", client=True
        )
        serving = ca.issue("apiserver", cn="kube-apiserver", hosts=APISERVER_NAMES, server=True)
        admin = ca.issue("admin", cn=ADMIN_USER, org="system:masters", client=True)
        kcm = ca.issue("controller-manager", cn="system:kube-controller-manager", client=True)

        self.port = options.port or free_port()
        etcd_port, peer_port = free_port(), free_port()
        etcd_url = f"https://{HOST}:{etcd_port}"
        self._etcd = (etcd_url, etcd_client, ca.ca)
        peer_url = f"https://{HOST}:{peer_port}"
        self._spawn(
            binary,
            "etcd",
            [
                "--name=berth",
                f"--data-dir={root / 'etcd'}",
                f"--listen-client-urls={etcd_url}",
                f"--advertise-client-urls={etcd_url}",
                f"--listen-peer-urls={peer_url}",
                f"--initial-advertise-peer-urls={peer_url}",
                f"--initial-cluster=berth={peer_url}",
                f"--cert-file={etcd_server.cert}",
                f"--key-file={etcd_server.key}",
                f"--trusted-ca-file={ca.ca}",
                "--client-cert-auth",
                f"--peer-cert-file={etcd_server.cert}",
                f"--peer-key-file={etcd_server.key}",
                f"--peer-trusted-ca-file={ca.ca}",
                "--peer-client-cert-auth",
                # throwaway data: fsync buys nothing and costs every write (envtest does the same)
                "--unsafe-no-fsync",
                "--log-level=warn",
            ],
            logs,
        )
        apiserver_args = [
            f"--etcd-servers={etcd_url}",
            f"--etcd-cafile={ca.ca}",
            f"--etcd-certfile={etcd_client.cert}",
            f"--etcd-keyfile={etcd_client.key}",
            f"--bind-address={HOST}",
            f"--advertise-address={HOST}",
            # The `kubernetes` Service gets no endpoints: loopback is not a valid one, and no
            # pod runs here to use it.
            "--endpoint-reconciler-type=none",
            f"--secure-port={self.port}",
            f"--tls-cert-file={serving.cert}",
            f"--tls-private-key-file={serving.key}",
            f"--client-ca-file={ca.ca}",
            "--authorization-mode=Node,RBAC",
            "--anonymous-auth=false",
            f"--service-account-issuer={ISSUER}",
            f"--service-account-key-file={sa.cert}",
            f"--service-account-signing-key-file={sa.key}",
            f"--service-cluster-ip-range={SERVICE_CIDR}",
            "--disable-admission-plugins=TaintNodesByCondition",
            "--allow-privileged=true",
            f"--cert-dir={root / 'apiserver'}",
            "--profiling=false",
        ]
        if options.audit:
            policy = root / "audit-policy.yaml"
            policy.write_text(yaml.safe_dump(AUDIT_POLICY))
            apiserver_args += [
                f"--audit-policy-file={policy}",
                f"--audit-log-path={self.audit_log}",
                "--audit-log-mode=blocking",  # written before the answer: a test reads it at once
                "--audit-log-format=json",
            ]
        self._spawn(binary, "kube-apiserver", apiserver_args, logs)
        write_private(
            self.kubeconfig_path,
            kubeconfig_text(server=self.url, ca=ca.ca, user=ADMIN_USER, pair=admin).encode(),
        )
        self._http = urllib3.PoolManager(
            cert_file=str(admin.cert),
            key_file=str(admin.key),
            ca_certs=str(ca.ca),
            maxsize=32,
        )
        self._wait("kube-apiserver", lambda: self.request("GET", "/readyz", timeout=5)[0] == 200)

        kcm_config = write_private(
            root / "controller-manager.kubeconfig",
            kubeconfig_text(server=self.url, ca=ca.ca, user="kcm", pair=kcm).encode(),
        )
        self._spawn(
            binary,
            "kube-controller-manager",
            [
                f"--kubeconfig={kcm_config}",
                f"--controllers={CONTROLLERS}",
                "--use-service-account-credentials=true",
                f"--service-account-private-key-file={sa.key}",
                f"--root-ca-file={ca.ca}",
                f"--cluster-signing-cert-file={ca.ca}",
                f"--cluster-signing-key-file={ca.ca_key}",
                "--secure-port=0",  # nothing to serve; readiness is seen through the API
                f"--service-cluster-ip-range={SERVICE_CIDR}",
                "--profiling=false",
            ],
            logs,
        )
        # The service-account controller's first work: a sign that the controllers run.
        self._wait(
            "kube-controller-manager",
            lambda: (
                self.request(
                    "GET", "/api/v1/namespaces/default/serviceaccounts/default", timeout=5
                )[0]
                == 200
            ),
        )
        if self.options.scheduler:
            self._start_scheduler(binary, ca, logs)
        if options.nodes:
            self.create_nodes(count=options.nodes)
        if options.kubelet or options.provisioners:
            self._start_agents(logs)
        self.ready_seconds = time.monotonic() - started

    def start_scheduler(self, configuration: Mapping[str, Any] | None = None) -> int:
        """Start kube-scheduler in a running control plane that was started without it, e.g.
        for a test that needs a default scheduler for a while, or the benchmark (with a
        KubeSchedulerConfiguration v1 document, whose clientConnection.kubeconfig is filled in
        here). Waits for /readyz, which kube-scheduler answers once its informers and handlers
        have synced. Returns its secure port; `/metrics` there needs no credentials (loopback
        only)."""
        if "kube-scheduler" in self._processes:
            raise UpstreamError("kube-scheduler is already running")
        if self._ca is None or self._running_binary is None:
            raise UpstreamError("the control plane is not running")
        self._start_scheduler(
            self._running_binary, self._ca, self.log_dir, configuration=configuration
        )
        return self.scheduler_port

    def stop_scheduler(self) -> None:
        """Stop the kube-scheduler `start_scheduler` (or `scheduler=True`) started."""
        process = self._processes.pop("kube-scheduler", None)
        if process is not None and process.popen.poll() is None:
            process.popen.terminate()
            try:
                process.popen.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.popen.kill()
                process.popen.wait(timeout=15)

    @property
    def admin_pair(self) -> Pair:
        """The admin's client certificate and key (system:masters)."""
        pki = self.directory / "pki"
        return Pair(cert=pki / "admin.crt", key=pki / "admin.key")

    def _start_scheduler(
        self,
        binary: Path,
        ca: Authority,
        logs: Path,
        *,
        configuration: Mapping[str, Any] | None = None,
    ) -> None:
        client = ca.issue("scheduler", cn="system:kube-scheduler", client=True)
        serving = ca.issue(
            "scheduler-serving", cn="kube-scheduler", hosts=("127.0.0.1", "localhost"), server=True
        )
        config = write_private(
            self.directory / "scheduler.kubeconfig",
            kubeconfig_text(server=self.url, ca=ca.ca, user="scheduler", pair=client).encode(),
        )
        self.scheduler_port = free_port()
        if configuration is None:
            source = [f"--kubeconfig={config}"]
        else:
            document = {**configuration}
            document["clientConnection"] = {
                **(configuration.get("clientConnection") or {}),
                "kubeconfig": str(config),
            }
            path = self.directory / "scheduler-config.yaml"
            path.write_text(yaml.safe_dump(document, sort_keys=False))
            source = [f"--config={path}"]
        self._spawn(
            binary,
            "kube-scheduler",
            [
                *source,
                f"--authentication-kubeconfig={config}",
                f"--authorization-kubeconfig={config}",
                f"--bind-address={HOST}",
                f"--secure-port={self.scheduler_port}",
                f"--tls-cert-file={serving.cert}",
                f"--tls-private-key-file={serving.key}",
                f"--client-ca-file={ca.ca}",
                # scraped by the benchmark; the listener is on loopback only
                "--authorization-always-allow-paths=/healthz,/readyz,/livez,/metrics",
            ],
            logs,
        )
        http = urllib3.PoolManager(ca_certs=str(ca.ca))
        url = f"https://{HOST}:{self.scheduler_port}/readyz"

        def ready() -> bool:
            try:
                return http.request("GET", url, timeout=5, retries=False).status == 200
            except urllib3.exceptions.HTTPError:
                return False

        self._wait("kube-scheduler", ready)

    def _start_agents(self, logs: Path) -> None:
        """The simulated kubelet and provisioner: one Python process beside the components."""
        ready = self.directory / "agents.ready"
        command = [
            sys.executable,
            "-m",
            "berth.upstream",
            "agents",
            f"--kubeconfig={self.kubeconfig_path}",
            "--kubelet" if self.options.kubelet else "--no-kubelet",
            *(f"--provisioner={name}" for name in self.options.provisioners),
            f"--ready-file={ready}",
        ]
        self._spawn_command("agents", command, logs)
        self._wait("agents", ready.exists)

    def _spawn(self, binary: Path, name: str, args: list[str], logs: Path) -> None:
        extra = list(self.options.extra_args.get(name, ()))
        self._spawn_command(name, [str(binary), name, *args, *extra], logs)

    def _spawn_command(self, name: str, command: list[str], logs: Path) -> None:
        log = logs / f"{name}.log"
        with log.open("ab") as out:
            popen = subprocess.Popen(
                command,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                preexec_fn=_die_with_parent,
            )
        self._processes[name] = _Process(name=name, popen=popen, log=log)

    def _wait(self, name: str, ready: Any) -> None:
        """Until `ready()`; any component exiting meanwhile (or the timeout) is an UpstreamError
        naming it and the last line it logged."""
        deadline = time.monotonic() + self.options.ready_timeout
        while True:
            self.check_alive()
            try:
                if ready():
                    return
            except (urllib3.exceptions.HTTPError, OSError):
                pass
            if time.monotonic() > deadline:
                raise UpstreamError(
                    f"{name} not ready within {self.options.ready_timeout:.0f}s"
                    f"{_last_line(self._processes[name].log)}"
                )
            time.sleep(0.2)

    def check_alive(self) -> None:
        """Raise UpstreamError if a component has exited."""
        for process in self._processes.values():
            code = process.popen.poll()
            if code is not None:
                raise UpstreamError(
                    f"{process.name} exited with code {code}{_last_line(process.log)}"
                )

    def stop(self) -> None:
        """Stop every component (newest first: SIGTERM, then SIGKILL after 15 s) and remove the
        data directory. Idempotent."""
        for process in reversed(list(self._processes.values())):
            if process.popen.poll() is None:
                process.popen.terminate()
                try:
                    process.popen.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    process.popen.kill()
                    process.popen.wait(timeout=15)
        self._processes.clear()
        if self._http is not None:
            self._http.clear()
            self._http = None
        if self._dir is not None:
            shutil.rmtree(self._dir, ignore_errors=True)
            self._dir = None
        self._ca = self._running_binary = None

    def __enter__(self) -> ControlPlane:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- nodes and audit -----------------------------------------------------------------------

    def create_nodes(
        self,
        *,
        count: int,
        first: int = 1,
        total: int | None = None,
        zones: int | None = None,
        shape: NodeShape | None = None,
    ) -> list[dict[str, Any]]:
        """Create nodes `first`..`first+count-1` shaped like `berth cluster`'s (16 at a time)."""
        options = self.options
        total = total or max(options.nodes, first + count - 1)
        bodies = [
            make_node(
                index=i,
                total=total,
                zones=zones or options.zones,
                shape=shape or options.shape,
            )
            for i in range(first, first + count)
        ]

        def create(body: dict[str, Any]) -> dict[str, Any]:
            code, answer = self.request("POST", "/api/v1/nodes", body)
            if code != 201:
                message = answer.get("message") if isinstance(answer, dict) else answer
                raise UpstreamError(f"creating node {body['metadata']['name']}: {code} {message}")
            return dict(answer)

        with ThreadPoolExecutor(max_workers=16) as pool:
            return list(pool.map(create, bodies))

    def compact_etcd(self) -> int:
        """Compact etcd's history up to now, as kube-apiserver's compactor does every 5 minutes;
        a watch from an older resourceVersion then gets 410 Expired. Returns the revision."""
        if self._etcd is None:
            raise UpstreamError("the control plane is not running")
        url, pair, ca = self._etcd
        http = urllib3.PoolManager(
            cert_file=str(pair.cert), key_file=str(pair.key), ca_certs=str(ca)
        )
        # etcd's JSON gateway: any range read answers the current revision in its header
        answer = http.request("POST", f"{url}/v3/kv/range", body=b'{"key":"AA=="}', timeout=10)
        revision = int(json.loads(answer.data)["header"]["revision"])
        body = json.dumps({"revision": str(revision), "physical": True}).encode()
        answer = http.request("POST", f"{url}/v3/kv/compaction", body=body, timeout=30)
        if answer.status != 200:
            raise UpstreamError(f"etcd compaction: {answer.status} {answer.data[:200]!r}")
        return revision

    @property
    def audit_log(self) -> Path:
        """kube-apiserver's audit log (JSON lines), beside the components' logs."""
        return self.log_dir / "audit.log"

    @property
    def log_dir(self) -> Path:
        return self.options.log_dir or self.directory / "logs"

    def audit_events(self) -> Iterator[dict[str, Any]]:
        """Every request kube-apiserver answered, as audit.k8s.io/v1 Events (needs audit=True)."""
        if not self.options.audit:
            raise UpstreamError("the audit log is off: start with Options(audit=True)")
        with contextlib.suppress(FileNotFoundError), self.audit_log.open() as f:
            for line in f:
                if line.strip():
                    yield json.loads(line)


def _last_line(log: Path) -> str:
    """': <the last non-empty line of log>', or '' when there is none."""
    try:
        lines = [line for line in log.read_text(errors="replace").splitlines() if line.strip()]
    except FileNotFoundError:
        return ""
    return f": {lines[-1].strip()[:400]}" if lines else ""
