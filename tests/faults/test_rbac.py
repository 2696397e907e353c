"""Authorisation bypasses of the embedded cluster's RBAC: a field selector the authorizer and
the list handler read differently (a user allowed one ConfigMap by resourceNames listed all),
`?watch=yes` authorised as a watch and served as a list, and `--rbac` without `--token` making
every tokenless request the admin. kubectl is the client, as a user would use it."""

from __future__ import annotations

import json
import ssl
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from berth.cluster import EmbeddedCluster
from berth.cluster.resources import BY_KEY

from .conftest import ClusterProcess, env_without_cluster, kubectl, needs_kubectl

pytestmark = pytest.mark.timeout(120)

RULES = [
    {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "Role",
        "metadata": {"name": "one-configmap", "namespace": "default"},
        "rules": [
            {
                "apiGroups": [""],
                "resources": ["configmaps"],
                "resourceNames": ["allowed"],
                "verbs": ["get", "list", "watch"],
            }
        ],
    },
    {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "RoleBinding",
        "metadata": {"name": "one-configmap", "namespace": "default"},
        "roleRef": {
            "apiGroup": "rbac.authorization.k8s.io",
            "kind": "Role",
            "name": "one-configmap",
        },
        "subjects": [{"kind": "User", "name": "alice"}],
    },
    {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "ClusterRole",
        "metadata": {"name": "watch-nodes"},
        "rules": [{"apiGroups": [""], "resources": ["nodes"], "verbs": ["watch"]}],
    },
    {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "ClusterRoleBinding",
        "metadata": {"name": "watch-nodes"},
        "roleRef": {
            "apiGroup": "rbac.authorization.k8s.io",
            "kind": "ClusterRole",
            "name": "watch-nodes",
        },
        "subjects": [{"kind": "User", "name": "alice"}],
    },
]


@pytest.fixture(scope="module")
def secured(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[EmbeddedCluster, Path]]:
    tmp = tmp_path_factory.mktemp("rbac")
    with EmbeddedCluster(
        nodes=2, tls=True, token="admin-t", rbac=RULES, token_users={"alice-t": "alice"}
    ) as c:
        configmaps = BY_KEY["configmaps"]
        for name in ("allowed", "secret-1", "secret-2"):
            body = {"metadata": {"name": name}, "data": {"k": name}}
            c.call(lambda core, b=body: core.api.create(configmaps, namespace="default", body=b))
        yield c, c.kubeconfig_for("alice-t", tmp / "alice.kubeconfig")


def _get(c: EmbeddedCluster, path: str, token: str) -> tuple[int, bytes]:
    assert c.ca_path is not None
    ctx = ssl.create_default_context(cafile=str(c.ca_path))
    req = urllib.request.Request(c.url + path, headers={"Authorization": f"Bearer {token}"})
    try:
        with urllib.request.urlopen(req, context=ctx, timeout=10) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


@needs_kubectl
def test_resource_names_cannot_be_widened_by_a_field_selector(
    secured: tuple[EmbeddedCluster, Path],
) -> None:
    c, alice = secured
    ok = kubectl(
        alice, "get", "configmaps", "--field-selector", "metadata.name=allowed", "-o", "name"
    )
    assert ok.returncode == 0 and ok.stdout.split() == ["configmap/allowed"], ok.stderr
    assert kubectl(alice, "get", "configmaps").returncode != 0  # no name: forbidden
    # The probe's selector: the authorizer saw "metadata.name=allowed", the list handler one
    # paren-glued "metadata.namespace!=..." term matching everything.
    sneaky = "metadata.namespace!=(,metadata.name=allowed,x=)"
    out = kubectl(alice, "get", "configmaps", "--field-selector", sneaky, "-o", "name")
    assert "secret-1" not in out.stdout and out.returncode != 0, out.stdout
    # Every reading of a selector is upstream's: escapes and sorting included.
    code, body = _get(
        c,
        "/api/v1/namespaces/default/configmaps?fieldSelector=" + urllib.request.quote(sneaky),
        "alice-t",
    )
    assert code == 400 and b"field label not supported: x" in body


def test_watch_means_watch_for_the_authorizer_and_the_server(
    secured: tuple[EmbeddedCluster, Path],
) -> None:
    """alice may watch nodes but not list them: `?watch=yes` and `?watch=` are watches (as
    upstream's parameter codec reads them), so she gets a stream of events, never a list."""
    c, _ = secured
    assert _get(c, "/api/v1/nodes", "alice-t")[0] == 403
    assert _get(c, "/api/v1/nodes?watch=false", "alice-t")[0] == 403
    for value in ("yes", "", "1", "true"):
        code, body = _get(c, f"/api/v1/nodes?watch={value}&timeoutSeconds=1", "alice-t")
        assert code == 200, (value, body)
        events = [json.loads(line) for line in body.splitlines() if line.strip()]
        assert events and all(e["type"] == "ADDED" for e in events), (value, body[:200])


def test_rbac_without_a_token_never_makes_a_tokenless_request_the_admin(tmp_path: Path) -> None:
    rbac = tmp_path / "rbac.yaml"
    rbac.write_text("\n---\n".join(json.dumps(d) for d in RULES))
    c = ClusterProcess(tmp_path, "--rbac", str(rbac))
    c.start()
    try:
        for path in (
            "/api/v1/secrets",
            "/api/v1/nodes",
            "/apis/rbac.authorization.k8s.io/v1/clusterroles",
        ):
            with pytest.raises(urllib.error.HTTPError) as exc:
                urllib.request.urlopen(c.url + path, timeout=10)
            assert exc.value.code == 401
        # The admin's token was generated and written to the kubeconfig (0600).
        config = c.kubeconfig.read_text()
        assert "token:" in config and oct(c.kubeconfig.stat().st_mode & 0o777) == "0o600"
        code = subprocess.run(
            [
                sys.executable,
                "-c",
                "import kubernetes.config as k, kubernetes.client as c;"
                f"a = k.new_client_from_config(config_file={str(c.kubeconfig)!r});"
                "print(len(c.CoreV1Api(a).list_node().items))",
            ],
            env=env_without_cluster(tmp_path),
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert code.returncode == 0 and code.stdout.strip() == "3", code.stderr
    finally:
        assert c.stop() == 0
