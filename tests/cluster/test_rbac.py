"""Optional RBAC authorization in the embedded cluster: request attributes as upstream's
RequestInfoFactory resolves them, RuleAllows, binding resolution, upstream's Forbidden wording,
the open discovery paths, the admin's full access and authorization off by default."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest
from click.testing import CliRunner

from berth.cluster import EmbeddedCluster
from berth.cluster.command import cluster as cluster_command
from berth.cluster.rbac import (
    ADMIN,
    User,
    parse_token_users,
    request_attributes,
    rule_allows,
    user_for,
)

SA = "system:serviceaccount:kube-system:berth"
RBAC = """
apiVersion: v1
kind: ServiceAccount
metadata: {name: berth, namespace: kube-system}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: reader}
rules:
- {apiGroups: [""], resources: [pods, nodes], verbs: [get, list, watch]}
- {apiGroups: [""], resources: [pods/binding], verbs: [create]}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: reader}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: reader}
subjects: [{kind: ServiceAccount, name: berth, namespace: kube-system}]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {name: lease, namespace: kube-system}
rules:
- {apiGroups: [coordination.k8s.io], resources: [leases], resourceNames: [berth],
   verbs: [get, update]}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: lease, namespace: kube-system}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: lease}
subjects: [{kind: ServiceAccount, name: berth}]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: dangling, namespace: kube-public}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: missing}
subjects: [{kind: Group, name: "system:serviceaccounts"}]
"""


def attrs(method: str, path: str, **query: str) -> tuple[str, str, str, str, str, str]:
    a = request_attributes(user=ADMIN, method=method, path=path, query=query)
    if not a.resource_request:
        return ("nonresource", a.verb, a.path, "", "", "")
    return (a.verb, a.api_group, a.resource, a.subresource, a.namespace, a.name)


@pytest.mark.parametrize(
    ("method", "path", "query", "expected"),
    [
        ("GET", "/api/v1/pods", {}, ("list", "", "pods", "", "", "")),
        ("GET", "/api/v1/pods", {"watch": "true"}, ("watch", "", "pods", "", "", "")),
        ("GET", "/api/v1/pods", {"watch": "false"}, ("list", "", "pods", "", "", "")),
        ("GET", "/api/v1/watch/pods", {}, ("watch", "", "pods", "", "", "")),
        (
            "GET",
            "/apis/coordination.k8s.io/v1/namespaces/kube-system/leases",
            {"watch": "1", "fieldSelector": "metadata.name=berth"},
            ("watch", "coordination.k8s.io", "leases", "", "kube-system", "berth"),
        ),
        ("GET", "/api/v1/namespaces/default/pods/x", {}, ("get", "", "pods", "", "default", "x")),
        (
            "POST",
            "/api/v1/namespaces/default/pods/x/binding",
            {},
            ("create", "", "pods", "binding", "default", "x"),
        ),
        (
            "POST",
            "/api/v1/namespaces/default/bindings",
            {},
            ("create", "", "bindings", "", "default", ""),
        ),
        (
            "PATCH",
            "/api/v1/namespaces/default/pods/x/status",
            {},
            ("patch", "", "pods", "status", "default", "x"),
        ),
        (
            "DELETE",
            "/api/v1/namespaces/default/pods",
            {},
            ("deletecollection", "", "pods", "", "default", ""),
        ),
        ("GET", "/api/v1/namespaces/ns1", {}, ("get", "", "namespaces", "", "ns1", "ns1")),
        (
            "PUT",
            "/api/v1/namespaces/ns1/status",
            {},
            ("update", "", "namespaces", "status", "ns1", "ns1"),
        ),
        ("GET", "/apis/apps/v1", {}, ("nonresource", "get", "/apis/apps/v1", "", "", "")),
        ("GET", "/api/v1", {}, ("nonresource", "get", "/api/v1", "", "", "")),
        ("GET", "/healthz", {}, ("nonresource", "get", "/healthz", "", "", "")),
    ],
)
def test_request_attributes_as_upstream(
    method: str, path: str, query: dict[str, str], expected: tuple[str, ...]
) -> None:
    assert attrs(method, path, **query) == expected


def test_rule_allows_subresources_names_and_urls() -> None:
    user = user_for(SA)

    def a(method: str, path: str) -> Any:
        return request_attributes(user=user, method=method, path=path, query={})

    binding = a("POST", "/api/v1/namespaces/default/pods/x/binding")
    assert rule_allows(binding, {"apiGroups": [""], "resources": ["pods/binding"], "verbs": ["*"]})
    assert rule_allows(
        binding, {"apiGroups": ["*"], "resources": ["*/binding"], "verbs": ["create"]}
    )
    assert not rule_allows(binding, {"apiGroups": [""], "resources": ["pods"], "verbs": ["create"]})
    lease = a("PUT", "/apis/coordination.k8s.io/v1/namespaces/kube-system/leases/berth")
    rule = {"apiGroups": ["coordination.k8s.io"], "resources": ["leases"], "verbs": ["update"]}
    assert rule_allows(lease, {**rule, "resourceNames": ["berth"]})
    assert not rule_allows(lease, {**rule, "resourceNames": ["other"]})
    create = a("POST", "/apis/coordination.k8s.io/v1/namespaces/kube-system/leases")
    assert not rule_allows(create, {**rule, "verbs": ["create"], "resourceNames": ["berth"]})
    metrics = a("GET", "/metrics")
    assert rule_allows(metrics, {"verbs": ["get"], "nonResourceURLs": ["/metr*"]})
    assert not rule_allows(metrics, {"verbs": ["get"], "nonResourceURLs": ["/metric"]})
    assert user.groups == (
        "system:serviceaccounts",
        "system:serviceaccounts:kube-system",
        "system:authenticated",
    )
    assert user_for("alice,dev") == User("alice", ("dev", "system:authenticated"))
    assert parse_token_users(["t=alice"]) == {"t": "alice"}
    with pytest.raises(ValueError):
        parse_token_users(["no-equals"])


def call(c: EmbeddedCluster, method: str, path: str, token: str | None, body: Any = None) -> Any:
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(c.url + path, method=method, data=data, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            raw = response.read()
            return response.status, json.loads(raw) if raw.startswith(b"{") else raw
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())


@pytest.fixture
def secured() -> Iterator[EmbeddedCluster]:
    with EmbeddedCluster(nodes=1, token="admin", rbac=RBAC, token_users={"sa": SA}) as c:
        yield c


def test_enforced_with_upstream_wording(secured: EmbeddedCluster) -> None:
    c = secured
    assert call(c, "GET", "/api/v1/pods", "sa")[0] == 200
    assert call(c, "GET", "/api/v1/pods?watch=true&timeoutSeconds=1", "sa")[0] == 200
    for open_path in ("/version", "/api", "/apis", "/api/v1", "/openapi/v3", "/healthz"):
        assert call(c, "GET", open_path, "sa")[0] == 200, open_path
    code, status = call(c, "POST", "/api/v1/namespaces/default/pods/x/status", "sa", {})
    assert code == 403 and status["reason"] == "Forbidden" and status["kind"] == "Status"
    code, status = call(c, "PATCH", "/api/v1/namespaces/default/pods/x/status", "sa", {})
    assert status["message"] == (
        f'pods "x" is forbidden: User "{SA}" cannot patch resource "pods/status" in API group "" '
        'in the namespace "default"'
    )
    assert status["details"] == {"name": "x", "kind": "pods"}
    # pods/binding is granted: the request goes through (and 404s on the unknown pod)
    binding = {"metadata": {"name": "x"}, "target": {"kind": "Node", "name": "node-001"}}
    assert call(c, "POST", "/api/v1/namespaces/default/pods/x/binding", "sa", binding)[0] == 404
    lease = "/apis/coordination.k8s.io/v1/namespaces/kube-system/leases"
    assert call(c, "GET", f"{lease}/berth", "sa")[0] == 404  # allowed by name, absent
    code, status = call(c, "GET", f"{lease}/other", "sa")
    assert code == 403 and status["message"] == (
        f'leases.coordination.k8s.io "other" is forbidden: User "{SA}" cannot get resource '
        '"leases" in API group "coordination.k8s.io" in the namespace "kube-system"'
    )
    code, status = call(c, "GET", "/api/v1/secrets", "sa")
    assert status["message"] == (
        f'secrets is forbidden: User "{SA}" cannot list resource "secrets" in API group "" at '
        "the cluster scope"
    )
    # a RoleBinding to a missing ClusterRole: upstream appends the resolution error
    code, status = call(c, "GET", "/api/v1/namespaces/kube-public/configmaps", "sa")
    assert code == 403 and status["message"].endswith(
        ': RBAC: clusterrole.rbac.authorization.k8s.io "missing" not found'
    )
    code, status = call(c, "GET", "/metrics", "sa")
    assert status["message"] == f'forbidden: User "{SA}" cannot get path "/metrics"'
    assert [d.attributes.verb for d in c.denials] == [
        "create",
        "patch",
        "get",
        "list",
        "list",
        "get",
    ]
    assert c.requests_by(SA) == 16
    # the admin may do anything; an unknown token is refused
    assert call(c, "GET", "/api/v1/secrets", "admin")[0] == 404
    assert call(c, "GET", "/api/v1/pods", "nope")[0] == 401
    assert call(c, "GET", "/api/v1/pods", None)[0] == 401


def test_rbac_objects_are_served_and_change_decisions(secured: EmbeddedCluster) -> None:
    c = secured
    path = "/apis/rbac.authorization.k8s.io/v1/clusterroles/reader"
    code, role = call(c, "GET", path, "admin")
    assert code == 200 and role["rules"][1]["resources"] == ["pods/binding"]
    assert call(c, "GET", "/api/v1/nodes", "sa")[0] == 200
    role["rules"] = role["rules"][1:]
    assert call(c, "PUT", path, "admin", role)[0] == 200
    assert call(c, "GET", "/api/v1/nodes", "sa")[0] == 403


def test_off_by_default_and_token_users_without_rbac() -> None:
    with EmbeddedCluster(nodes=1, token_users={"sa": SA}) as c:
        assert call(c, "GET", "/api/v1/secrets", "sa")[0] == 404  # no authorization
        assert call(c, "GET", "/api/v1/pods", "anything")[0] == 200  # as before
        assert c.denials == [] and c.requests_by(SA) == 0


def test_cli_flags(tmp_path: Any) -> None:
    (tmp_path / "rbac.yaml").write_text(RBAC)
    result = CliRunner().invoke(
        cluster_command, ["--rbac", str(tmp_path / "rbac.yaml"), "--token-user", "bad"]
    )
    assert result.exit_code != 0 and "expected TOKEN=USER" in result.output
