"""Every `berth` command given bad input: one line on stderr naming the thing and the reason,
exit status 2 for the input (flags, files, configuration) and 1 for what failed at run time
(a taken port, an unreachable server), never a traceback. Each row runs the real command as a
process, as a user would; `--debug` is the one way to see a traceback."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

pytestmark = pytest.mark.timeout(120)

USAGE, RUNTIME = 2, 1


@pytest.fixture(scope="module")
def refused() -> Iterator[int]:
    """A port bound and never listened on: connections are refused, and no other process on
    the machine can take it while the tests run."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        yield int(s.getsockname()[1])


@pytest.fixture(scope="module")
def busy() -> Iterator[int]:
    """A port another process holds."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        yield int(s.getsockname()[1])


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory, refused: int) -> dict[str, str]:
    tmp = tmp_path_factory.mktemp("inputs")
    (tmp / "broken.yaml").write_text("a: [\n")
    (tmp / "not-pem").write_text("not a certificate\n")
    (tmp / "config.yaml").write_text("percentageOfNodesToScore: 101\n")
    (tmp / "nameless.yaml").write_text("apiVersion: v1\nkind: Pod\nspec: {containers: []}\n")
    (tmp / "unreachable").write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [{"name": "c", "cluster": {"server": f"http://127.0.0.1:{refused}"}}],
                "users": [{"name": "u", "user": {}}],
                "contexts": [{"name": "c", "context": {"cluster": "c", "user": "u"}}],
                "current-context": "c",
            }
        )
    )
    (tmp / "rebalance.yaml").write_text(
        yaml.safe_dump(
            {
                "metricSources": [{"name": "ann", "type": "node-annotation"}],
                "rebalance": {"metrics": [{"metric": "cpu", "high": 80}]},
                "profiles": [
                    {
                        "schedulerName": "berth",
                        "plugins": {"multiPoint": {"enabled": [{"name": "MetricScore"}]}},
                        "pluginConfig": [
                            {
                                "name": "MetricScore",
                                "args": {
                                    "metrics": [{"name": "cpu", "source": "ann", "query": "c"}]
                                },
                            }
                        ],
                    }
                ],
            }
        )
    )
    (tmp / "corrupt").mkdir()
    (tmp / "corrupt" / "berth-cluster.sqlite3").write_bytes(b"\x13" * 4096)
    return {
        "broken": str(tmp / "broken.yaml"),
        "notpem": str(tmp / "not-pem"),
        "nameless": str(tmp / "nameless.yaml"),
        "config": str(tmp / "config.yaml"),
        "unreachable": str(tmp / "unreachable"),
        "corrupt": str(tmp / "corrupt"),
        "rebalance": str(tmp / "rebalance.yaml"),
        "tmp": str(tmp),
    }


# (row name, arguments, exit status, words the one line holds). In arguments and words,
# {broken} (not YAML), {notpem}, {nameless} (a Pod without a name), {config} (one problem),
# {unreachable} (a kubeconfig), {corrupt} (a data directory), {rebalance} (a valid rebalance
# configuration) and {tmp} are the files above,
# {busy} the taken port.
ROWS: list[tuple[str, list[str], int, list[str]]] = [
    ("an unknown command", ["nosuch"], USAGE, ["No such command 'nosuch'"]),
    ("simulate without its dump", ["simulate"], USAGE, ["Missing argument 'DUMP'"]),
    (
        "simulate, a dump that is not there",
        ["simulate", "{tmp}/none.yaml"],
        USAGE,
        ["{tmp}/none.yaml: cannot read: No such file or directory"],
    ),
    (
        "simulate, a dump that is not YAML",
        ["simulate", "{broken}"],
        USAGE,
        ["{broken}: not valid YAML or JSON: line 2"],
    ),
    (
        "simulate, a bad --scores",
        ["simulate", "--scores", "top:x", "{broken}"],
        USAGE,
        ["'--scores'", "expected none, top:N (N > 0) or all"],
    ),
    (
        "simulate, a configuration that is not YAML",
        ["simulate", "--config", "{broken}", "{broken}"],
        USAGE,
        ["{broken}: not valid YAML or JSON"],
    ),
    (
        "config validate, a file that is not there",
        ["config", "validate", "{tmp}/none.yaml"],
        USAGE,
        ["{tmp}/none.yaml: cannot read"],
    ),
    (
        "config view, a configuration that is not YAML",
        ["config", "view", "--config", "{broken}"],
        USAGE,
        ["{broken}: not valid YAML or JSON"],
    ),
    (
        "run, a port out of range",
        ["run", "--bind-address", "127.0.0.1:99999"],
        USAGE,
        ["'--bind-address'", "port 99999 is out of range (0-65535)"],
    ),
    (
        "run, a taken port",
        ["run", "--bind-address", "127.0.0.1:{busy}"],
        RUNTIME,
        ["cannot listen on 127.0.0.1:{busy}: address already in use"],
    ),
    (
        "run, a certificate that is not PEM",
        ["run", "--tls-cert-file", "{notpem}", "--tls-private-key-file", "{notpem}"],
        USAGE,
        ["{notpem}: cannot load the certificate and its private key: not PEM"],
    ),
    (
        "run, a kubeconfig that is not YAML",
        ["run", "--kubeconfig", "{broken}", "--bind-address", ""],
        USAGE,
        ["cannot load the kubeconfig", "{broken}"],
    ),
    (
        "run, a configuration with a problem",
        ["run", "--config", "{config}"],
        USAGE,
        ["{config}: percentageOfNodesToScore: Input should be less than or equal to 100"],
    ),
    (
        "extender, an address without a port",
        ["extender", "--bind-address", "nowhere"],
        USAGE,
        ["'--bind-address'", "'nowhere': expected host:port"],
    ),
    (
        "extender, a taken port",
        ["extender", "--bind-address", "127.0.0.1:{busy}"],
        RUNTIME,
        ["cannot listen on 127.0.0.1:{busy}: address already in use"],
    ),
    (
        "extender, a certificate that is not PEM",
        ["extender", "--tls-cert", "{notpem}", "--tls-key", "{notpem}"],
        USAGE,
        ["{notpem}: cannot load the certificate and its private key: not PEM"],
    ),
    (
        "extender, a kubeconfig that is not YAML",
        ["extender", "--kubeconfig", "{broken}", "--bind-address", "127.0.0.1:0"],
        USAGE,
        ["cannot load the kubeconfig", "{broken}"],
    ),
    (
        "extender, a kubeconfig that is not there",
        ["extender", "--kubeconfig", "{tmp}/none", "--bind-address", "127.0.0.1:0"],
        USAGE,
        ["cannot load the kubeconfig", "{tmp}/none"],
    ),
    (
        "extender, --node-cache-capable without a cluster",
        ["extender", "--node-cache-capable", "--bind-address", "127.0.0.1:0"],
        USAGE,
        ["--node-cache-capable needs a cluster"],
    ),
    (
        "cluster, a quantity that is not one",
        ["cluster", "--node-cpu", "abc"],
        USAGE,
        ["'--node-cpu'", "'abc'"],
    ),
    (
        "cluster, a host that is not an address",
        ["cluster", "--host", "999.1.1.1"],
        USAGE,
        ["'--host'", "'999.1.1.1' is not a valid IP address"],
    ),
    (
        "cluster, a taken port",
        ["cluster", "--port", "{busy}"],
        RUNTIME,
        ["cannot listen on 127.0.0.1:{busy}: address already in use"],
    ),
    (
        "cluster, RBAC that is not YAML",
        ["cluster", "--port", "0", "--rbac", "{broken}"],
        USAGE,
        ["{broken}: not valid YAML or JSON"],
    ),
    (
        "cluster, a data directory that is not Berth's",
        ["cluster", "--port", "0", "--data-dir", "{corrupt}"],
        USAGE,
        ["--data-dir {corrupt}: cannot use berth-cluster.sqlite3: file is not a database"],
    ),
    (
        "demo, a workload that is not YAML",
        ["demo", "--workload", "{broken}"],
        USAGE,
        ["{broken}: not valid YAML or JSON"],
    ),
    (
        "demo, a workload pod without a name",
        ["demo", "--workload", "{nameless}"],
        USAGE,
        ["{nameless}: a Pod without metadata.name"],
    ),
    (
        "annotate, an unreachable server",
        ["annotate", "--kubeconfig", "{unreachable}", "--value", "1"],
        RUNTIME,
        ["cannot reach 127.0.0.1:", "Connection refused"],
    ),
    (
        "annotate, a kubeconfig that is not YAML",
        ["annotate", "--kubeconfig", "{broken}", "--value", "1"],
        USAGE,
        ["{broken}: cannot load a kubeconfig"],
    ),
    (
        "bench, an unknown workload",
        ["bench", "-w", "NoSuch"],
        USAGE,
        ["unknown workload 'NoSuch'"],
    ),
    (
        "bench, a workload file that is not YAML",
        ["bench", "-f", "{broken}"],
        USAGE,
        ["{broken}: not valid YAML or JSON"],
    ),
    (
        "bench, --json into a directory that is not there",
        ["bench", "--size", "tiny", "-w", "SchedulingBasic", "--json", "{tmp}/no/out.json"],
        USAGE,
        ["--json {tmp}/no/out.json: directory {tmp}/no does not exist"],
    ),
    (
        "rebalance, a certificate without its key",
        ["rebalance", "--config", "{rebalance}", "--tls-cert-file", "{notpem}"],
        USAGE,
        ["--tls-cert-file and --tls-private-key-file go together"],
    ),
    (
        "rebalance, a certificate that is not PEM",
        [
            "rebalance",
            *["--config", "{rebalance}", "--bind-address", "127.0.0.1:0"],
            *["--tls-cert-file", "{notpem}", "--tls-private-key-file", "{notpem}"],
        ],
        USAGE,
        ["{notpem}: cannot load the certificate and its private key: not PEM"],
    ),
    ("examples, an unknown one", ["examples", "nosuch"], USAGE, ["nosuch: no such example"]),
    (
        "webhook without a certificate",
        ["webhook"],
        USAGE,
        ["kube-apiserver calls webhooks over HTTPS only"],
    ),
    (
        "webhook, a taken port",
        ["webhook", "--cert-dir", "{tmp}/certs", "--bind-address", "127.0.0.1:{busy}"],
        RUNTIME,
        ["cannot listen on 127.0.0.1:{busy}: address already in use"],
    ),
    (
        "webhook without a cluster",
        ["webhook", "--cert-dir", "{tmp}/certs", "--bind-address", "127.0.0.1:0"],
        USAGE,
        ["no cluster configured"],
    ),
]


def _env(home: str) -> dict[str, str]:
    """No cluster anywhere: no kubeconfig, not in a pod, no debug."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("KUBERNETES_", "BERTH_")) and k != "KUBECONFIG"
    }
    env.update(HOME=home, KUBECONFIG=os.path.join(home, "no-kubeconfig"))
    return env


def berth(args: list[str], *, home: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "berth", *args],
        env=_env(home),
        capture_output=True,
        text=True,
        timeout=90,
        stdin=subprocess.DEVNULL,
    )


@pytest.mark.parametrize(("name", "args", "code", "words"), ROWS, ids=[row[0] for row in ROWS])
def test_bad_input_is_one_line(
    files: dict[str, str], busy: int, name: str, args: list[str], code: int, words: list[str]
) -> None:
    values = {**files, "busy": str(busy)}
    done = berth([a.format(**values) for a in args], home=files["tmp"])
    assert "Traceback" not in done.stderr, done.stderr
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, done.stderr
    (line,) = lines
    assert line.startswith("error: "), line
    for word in words:
        assert word.format(**values) in line, line
    assert done.returncode == code, line


def test_debug_shows_the_traceback_then_the_line(files: dict[str, str]) -> None:
    done = berth(["--debug", "simulate", files["broken"]], home=files["tmp"])
    assert done.returncode == USAGE
    assert done.stderr.startswith("Traceback (most recent call last):"), done.stderr
    broken = files["broken"]
    assert done.stderr.splitlines()[-1].startswith(f"error: {broken}: not valid"), done.stderr


def test_a_configuration_with_problems_is_one_line_each(files: dict[str, str]) -> None:
    config = Path(files["tmp"]) / "three-problems.yaml"
    config.write_text("percentageOfNodesToScore: 101\nbogus: 1\npodMaxBackoffSeconds: 0\n")
    done = berth(["simulate", "--config", str(config), files["broken"]], home=files["tmp"])
    assert done.returncode == USAGE and "Traceback" not in done.stderr
    assert sorted(done.stderr.splitlines()) == [
        f"error: {config}: bogus: unknown field",
        f"error: {config}: percentageOfNodesToScore: Input should be less than or equal to 100",
        f"error: {config}: podMaxBackoffSeconds: Input should be greater than 0",
    ]
