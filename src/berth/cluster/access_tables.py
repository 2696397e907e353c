"""Server-side printing of access control: upstream's columns for `kubectl get` of
RoleBindings, ClusterRoleBindings (wide: USERS GROUPS SERVICEACCOUNTS) and
MutatingWebhookConfigurations (pkg/printers/internalversion/printers.go), and of Roles and
ClusterRoles, which upstream has no printer for: the API server's default Table convertor
(NAME, CREATED AT as RFC 3339).
"""

from __future__ import annotations

from typing import Any

from berth.cluster.tables import Column, Row, _age, _name

JSON = dict[str, Any]


def _subjects(subjects: Any) -> list[str]:
    """rbac.SubjectsStrings: users, groups and service accounts (namespace/name), joined."""
    users: list[str] = []
    groups: list[str] = []
    accounts: list[str] = []
    for s in subjects if isinstance(subjects, list) else []:
        if not isinstance(s, dict):
            continue
        kind, name = s.get("kind"), str(s.get("name", ""))
        if kind == "ServiceAccount":
            accounts.append(f"{s.get('namespace', '')}/{name}")
        elif kind == "User":
            users.append(name)
        elif kind == "Group":
            groups.append(name)
    return [", ".join(users), ", ".join(groups), ", ".join(accounts)]


def _binding(b: JSON) -> list[Any]:
    ref = b.get("roleRef") or {}
    return [_name(b), f"{ref.get('kind', '')}/{ref.get('name', '')}", _age(b),
            *_subjects(b.get("subjects"))]  # fmt: skip


def _created_at(obj: JSON) -> list[Any]:
    return [_name(obj), str((obj.get("metadata") or {}).get("creationTimestamp", ""))]


_NAME: Column = ("Name", "string", 0)
_BINDING: list[Column] = [
    _NAME,
    ("Role", "string", 0),
    ("Age", "string", 0),
    ("Users", "string", 1),
    ("Groups", "string", 1),
    ("ServiceAccounts", "string", 1),
]
_DEFAULT: list[Column] = [_NAME, ("Created At", "date", 0)]

TABLES: dict[str, tuple[list[Column], Row]] = {
    "rolebindings.rbac.authorization.k8s.io": (_BINDING, _binding),
    "clusterrolebindings.rbac.authorization.k8s.io": (_BINDING, _binding),
    "roles.rbac.authorization.k8s.io": (_DEFAULT, _created_at),
    "clusterroles.rbac.authorization.k8s.io": (_DEFAULT, _created_at),
    "mutatingwebhookconfigurations.admissionregistration.k8s.io": (
        [_NAME, ("Webhooks", "integer", 0), ("Age", "string", 0)],
        lambda c: [_name(c), len(c.get("webhooks") or []), _age(c)],
    ),
}
