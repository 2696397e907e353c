"""Optional RBAC authorization, as the real API server does it.

A request is turned into authorization attributes the way upstream's `RequestInfoFactory`
(apiserver/pkg/endpoints/request/requestinfo.go) does: verb (get/list/watch/create/update/patch/
delete/deletecollection), API group, resource, subresource, namespace and name for resource
requests; the lower-cased HTTP method and the path for anything else (discovery, /version,
/openapi, health). The rules that apply to the user are those of the ClusterRoleBindings and of
the RoleBindings in the request's namespace that name the user, one of its groups or its
ServiceAccount, and a rule allows the request as upstream's `RuleAllows`
(plugin/pkg/auth/authorizer/rbac/rbac.go) decides: verb, API group, `resource/subresource` (or
`*/subresource`), resourceNames, nonResourceURLs with a trailing `*`. Members of `system:masters`
are allowed everything, as kube-apiserver's privileged-group authorizer does.

The RBAC objects live in the cluster's store (served as rbac.authorization.k8s.io/v1), so they can
be read and changed over the API; upstream's bootstrap `system:discovery`,
`system:public-info-viewer` and `system:basic-user` roles are built in and bound to
`system:authenticated`. A denial is a `403 Forbidden` worded as upstream's and is recorded.
"""

from __future__ import annotations

import csv
import logging
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from berth.cluster.errors import ApiError
from berth.cluster.params import query_bool
from berth.cluster.resources import CLUSTER_ROLE_BINDINGS, CLUSTER_ROLES, ROLE_BINDINGS, ROLES
from berth.cluster.selectors import parse_field_terms, requires_exact_match
from berth.cluster.store import Store
from berth.safeload import InputError, load_all

JSON = dict[str, Any]
log = logging.getLogger("berth.cluster.rbac")

RBAC_GROUP = "rbac.authorization.k8s.io"
MASTERS = "system:masters"
AUTHENTICATED = "system:authenticated"
SA_PREFIX = "system:serviceaccount:"


@dataclass(frozen=True, slots=True)
class User:
    """An authenticated user: a name and its groups."""

    name: str
    groups: tuple[str, ...] = ()


# The user of the cluster's own token (and of a cluster without one): full access.
ADMIN = User("system:admin", (MASTERS, AUTHENTICATED))


def user_for(spec: str) -> User:
    """`NAME[,GROUP...]` as a user. A ServiceAccount (`system:serviceaccount:NS:NAME`) gets the
    groups upstream's token authenticator gives it; everyone gets `system:authenticated`."""
    name, *extra = [p.strip() for p in spec.split(",")]
    if not name:
        raise ValueError(f"empty user name in {spec!r}")
    groups: list[str] = []
    if name.startswith(SA_PREFIX):
        ns_name = name[len(SA_PREFIX) :].split(":")
        if len(ns_name) != 2 or not all(ns_name):
            raise ValueError(f"a ServiceAccount user is {SA_PREFIX}NAMESPACE:NAME, not {name!r}")
        groups += ["system:serviceaccounts", f"system:serviceaccounts:{ns_name[0]}"]
    groups += [g for g in extra if g]
    groups.append(AUTHENTICATED)
    return User(name, tuple(dict.fromkeys(groups)))


def parse_token_users(pairs: Iterable[str]) -> dict[str, str]:
    """`TOKEN=USER[,GROUP...]` strings (the `--token-user` flag) as a mapping."""
    out: dict[str, str] = {}
    for pair in pairs:
        token, sep, spec = pair.partition("=")
        if not sep or not token or not spec:
            raise ValueError(f"expected TOKEN=USER, got {pair!r}")
        user_for(spec)  # validate early
        out[token] = spec
    return out


def parse_token_auth_file(path: Path) -> dict[str, User]:
    """kube-apiserver's `--token-auth-file`: CSV lines `token,user,uid[,"group1,group2"]`
    (tokenfile.NewCSV); every user also gets `system:authenticated`. Raises ValueError."""
    try:
        text = path.read_text()
    except OSError as exc:
        raise ValueError(f"{path}: cannot read: {exc.strerror}") from None
    out: dict[str, User] = {}
    for number, record in enumerate(csv.reader(text.splitlines()), start=1):
        if not record:
            continue
        if len(record) < 3:
            raise ValueError(
                f"{path}: line {number}: must have at least 3 columns (token, user name, user "
                f"uid), found {len(record)}"
            )
        token, name = record[0], record[1]
        if not token or not name:
            raise ValueError(f"{path}: line {number}: empty token or user name")
        groups = [g for g in record[3].split(",") if g] if len(record) >= 4 else []
        out[token] = User(name, tuple(dict.fromkeys([*groups, AUTHENTICATED])))
    return out


def load_documents(source: str | Path | Iterable[Any]) -> list[JSON]:
    """RBAC documents from a YAML file (Path), YAML text (str) or already parsed objects.

    Every document of a multi-document file is taken; kinds other than Role, ClusterRole,
    RoleBinding and ClusterRoleBinding (a ServiceAccount, say) are skipped. Raises ValueError
    (`berth.safeload.InputError` for a file that is not safe YAML) with a one-line message."""
    docs: Iterable[Any]
    if isinstance(source, Path):
        try:
            docs = load_all(source.read_bytes())
        except OSError as exc:
            raise InputError(f"{source}: cannot read: {exc.strerror}") from None
        except InputError as exc:
            raise InputError(f"{source}: {exc}") from None
    elif isinstance(source, str):
        docs = load_all(source)
    else:
        docs = source
    out: list[JSON] = []
    for doc in docs:
        if isinstance(doc, dict) and doc.get("kind") in RBAC_KINDS:
            if str(doc.get("apiVersion", "")) != f"{RBAC_GROUP}/v1":
                raise ValueError(f"{doc.get('kind')} must be {RBAC_GROUP}/v1")
            out.append(doc)
        elif isinstance(doc, dict) and doc.get("kind") == "List":
            out += load_documents(doc.get("items") or [])
    return out


RBAC_KINDS = ("Role", "ClusterRole", "RoleBinding", "ClusterRoleBinding")


# --- request attributes (requestinfo.go) -------------------------------------------------------

_SPECIAL_VERBS = ("proxy", "redirect", "watch")
_NO_SUBRESOURCE_VERBS = ("proxy", "redirect")
_NAMESPACE_SUBRESOURCES = ("status", "finalize")


@dataclass(frozen=True, slots=True)
class Attributes:
    """What is authorized: upstream's authorizer.Attributes."""

    user: User
    verb: str
    resource_request: bool
    path: str = ""
    api_group: str = ""
    api_version: str = ""
    resource: str = ""
    subresource: str = ""
    namespace: str = ""
    name: str = ""


def _name_from_field_selector(selector: str) -> str:
    """The name a list/watch is limited to by `metadata.name=X` (RequiresExactMatch), read by
    the parser the list handler uses; a selector that does not parse names nothing."""
    try:
        name = requires_exact_match(parse_field_terms(selector), "metadata.name") or ""
    except ApiError:
        return ""
    if name in (".", "..") or "/" in name or "%" in name:
        return ""
    return name


def request_attributes(
    *, user: User, method: str, path: str, query: Mapping[str, str]
) -> Attributes:
    """The attributes of a request, as upstream's RequestInfoFactory resolves them."""
    parts = [p for p in path.strip("/").split("/") if p]
    non_resource = Attributes(user=user, verb=method.lower(), resource_request=False, path=path)
    if len(parts) < 3 or parts[0] not in ("api", "apis"):
        return non_resource
    prefix, rest = parts[0], parts[1:]
    group = ""
    if prefix == "apis":
        if len(rest) < 3:
            return non_resource
        group, rest = rest[0], rest[1:]
    version, rest = rest[0], rest[1:]
    if not rest:
        return non_resource
    verb = {
        "POST": "create",
        "GET": "get",
        "HEAD": "get",
        "PUT": "update",
        "PATCH": "patch",
        "DELETE": "delete",
    }.get(method.upper(), "")
    if rest[0] in _SPECIAL_VERBS:
        if len(rest) < 2:
            return non_resource
        verb, rest = rest[0], rest[1:]
    namespace = ""
    if rest[0] == "namespaces" and len(rest) > 1:
        namespace = rest[1]
        if len(rest) > 2 and rest[2] not in _NAMESPACE_SUBRESOURCES:
            rest = rest[2:]
    resource = rest[0]
    name = rest[1] if len(rest) >= 2 else ""
    subresource = rest[2] if len(rest) >= 3 and verb not in _NO_SUBRESOURCE_VERBS else ""
    if not name and verb == "get":
        verb = "watch" if query_bool(query, "watch") else "list"
    if verb in ("list", "watch") and not name:
        name = _name_from_field_selector(query.get("fieldSelector", ""))
    if not name and verb == "delete":
        verb = "deletecollection"
    return Attributes(
        user=user,
        verb=verb,
        resource_request=True,
        path=path,
        api_group=group,
        api_version=version,
        resource=resource,
        subresource=subresource,
        namespace=namespace,
        name=name,
    )


# --- rules (rbac.go, evaluation_helpers.go) ----------------------------------------------------


def _strings(rule: JSON, key: str) -> list[str]:
    value = rule.get(key) or []
    return [str(v) for v in value] if isinstance(value, list) else []


def rule_allows(a: Attributes, rule: JSON) -> bool:
    """upstream's RuleAllows for one PolicyRule."""
    verbs = _strings(rule, "verbs")
    if "*" not in verbs and a.verb not in verbs:
        return False
    if not a.resource_request:
        for url in _strings(rule, "nonResourceURLs"):
            if url == "*" or url == a.path:
                return True
            if url.endswith("*") and a.path.startswith(url.rstrip("*")):
                return True
        return False
    groups = _strings(rule, "apiGroups")
    if "*" not in groups and a.api_group not in groups:
        return False
    combined = f"{a.resource}/{a.subresource}" if a.subresource else a.resource
    resource_ok = False
    for r in _strings(rule, "resources"):
        if r in ("*", combined) or (a.subresource and r == f"*/{a.subresource}"):
            resource_ok = True
            break
    if not resource_ok:
        return False
    names = _strings(rule, "resourceNames")
    return not names or a.name in names


def _applies_to(user: User, subjects: Any, binding_namespace: str) -> bool:
    """upstream's appliesTo: does any subject of a binding name this user?"""
    for s in subjects if isinstance(subjects, list) else []:
        if not isinstance(s, dict):
            continue
        kind, name = s.get("kind"), str(s.get("name", ""))
        if kind == "User" and name == user.name:
            return True
        if kind == "Group" and name in user.groups:
            return True
        if kind == "ServiceAccount":
            ns = str(s.get("namespace") or binding_namespace)
            if ns and user.name == f"{SA_PREFIX}{ns}:{name}":
                return True
    return False


def _bootstrap() -> tuple[dict[str, JSON], list[JSON]]:
    """upstream's bootstrap discovery roles (plugin/pkg/auth/authorizer/rbac/bootstrappolicy),
    bound to every authenticated user."""
    health = ["/healthz", "/livez", "/readyz", "/version", "/version/"]
    roles = {
        "system:discovery": [
            {
                "verbs": ["get"],
                "nonResourceURLs": [
                    "/api",
                    "/api/*",
                    "/apis",
                    "/apis/*",
                    "/openapi",
                    "/openapi/*",
                    *health,
                ],
            }
        ],
        "system:public-info-viewer": [{"verbs": ["get"], "nonResourceURLs": health}],
        "system:basic-user": [
            {
                "verbs": ["create"],
                "apiGroups": ["authorization.k8s.io"],
                "resources": ["selfsubjectaccessreviews", "selfsubjectrulesreviews"],
            }
        ],
    }
    cluster_roles = {
        name: {"kind": "ClusterRole", "metadata": {"name": name}, "rules": rules}
        for name, rules in roles.items()
    }
    bindings = [
        {
            "kind": "ClusterRoleBinding",
            "metadata": {"name": name},
            "roleRef": {"apiGroup": RBAC_GROUP, "kind": "ClusterRole", "name": name},
            "subjects": [{"apiGroup": RBAC_GROUP, "kind": "Group", "name": AUTHENTICATED}],
        }
        for name in roles
    ]
    return cluster_roles, bindings


BOOTSTRAP_ROLES, BOOTSTRAP_BINDINGS = _bootstrap()


@dataclass(frozen=True, slots=True)
class Denial:
    """One request the authorizer refused."""

    attributes: Attributes
    message: str

    @property
    def user(self) -> str:
        return self.attributes.user.name


def forbidden_message(a: Attributes) -> str:
    """upstream's forbiddenMessage (endpoints/handlers/responsewriters/errors.go)."""
    if not a.resource_request:
        return f'User "{a.user.name}" cannot {a.verb} path "{a.path}"'
    resource = f"{a.resource}/{a.subresource}" if a.subresource else a.resource
    scope = f'in the namespace "{a.namespace}"' if a.namespace else "at the cluster scope"
    return (
        f'User "{a.user.name}" cannot {a.verb} resource "{resource}" in API group '
        f'"{a.api_group}" {scope}'
    )


def forbidden(a: Attributes, reason: str = "") -> ApiError:
    """The 403 upstream sends: apierrors.NewForbidden(group/resource, name, message)."""
    why = forbidden_message(a)
    if reason:
        why = f"{why}: {reason}"
    details: JSON = {}
    if not a.resource_request or not a.resource:
        message = f"forbidden: {why}"
    else:
        qualified = f"{a.resource}.{a.api_group}" if a.api_group else a.resource
        message = (
            f'{qualified} "{a.name}" is forbidden: {why}'
            if a.name
            else (f"{qualified} is forbidden: {why}")
        )
        if a.name:
            details["name"] = a.name
        if a.api_group:
            details["group"] = a.api_group
        details["kind"] = a.resource
    return ApiError(code=403, reason="Forbidden", message=message, details=details or None)


@dataclass
class Authorizer:
    """RBAC over the Roles, ClusterRoles and their bindings in `store`, plus the bootstrap
    discovery roles; records every denial (and counts requests per user)."""

    store: Store
    denials: list[Denial] = field(default_factory=list)
    requests: Counter[str] = field(default_factory=Counter)
    # what other users than the admin were allowed: (user, verb, group, resource[/subresource])
    granted: Counter[tuple[str, str, str, str]] = field(default_factory=Counter)

    def _resolve(self, a: Attributes) -> tuple[list[JSON], list[str]]:
        """The rules that apply to `a.user` in `a.namespace`, and resolution errors."""
        rules: list[JSON] = []
        errors: list[str] = []

        def role_rules(ref: Any, namespace: str) -> None:
            ref = ref if isinstance(ref, dict) else {}
            kind, name = ref.get("kind"), str(ref.get("name", ""))
            if kind == "ClusterRole":
                role = BOOTSTRAP_ROLES.get(name) or self.store.get(CLUSTER_ROLES, "", name)
                what = f'clusterrole.{RBAC_GROUP} "{name}" not found'
            elif kind == "Role" and namespace:
                role = self.store.get(ROLES, namespace, name)
                what = f'role.{RBAC_GROUP} "{name}" not found'
            else:
                errors.append(f"unsupported role reference kind: {kind!r}")
                return
            if role is None:
                errors.append(what)
                return
            rules.extend(r for r in role.get("rules") or [] if isinstance(r, dict))

        bindings = [*BOOTSTRAP_BINDINGS, *self.store.items(CLUSTER_ROLE_BINDINGS)]
        for b in bindings:
            if _applies_to(a.user, b.get("subjects"), ""):
                role_rules(b.get("roleRef"), "")
        if a.namespace:
            for b in self.store.items(ROLE_BINDINGS, a.namespace):
                if _applies_to(a.user, b.get("subjects"), a.namespace):
                    role_rules(b.get("roleRef"), a.namespace)
        return rules, errors

    def allows(self, a: Attributes) -> tuple[bool, str]:
        """(allowed, reason); the reason lists role references that could not be resolved."""
        if MASTERS in a.user.groups:
            return True, ""
        rules, errors = self._resolve(a)
        if any(rule_allows(a, r) for r in rules):
            return True, ""
        if not errors:
            return False, ""
        joined = errors[0] if len(errors) == 1 else "[" + ", ".join(errors) + "]"
        return False, f"RBAC: {joined}"

    def check(self, a: Attributes) -> None:
        """Raise the 403 upstream would send unless `a` is allowed; record the denial."""
        self.requests[a.user.name] += 1
        allowed, reason = self.allows(a)
        if allowed:
            if a.resource_request and MASTERS not in a.user.groups:
                sub = f"/{a.subresource}" if a.subresource else ""
                self.granted[(a.user.name, a.verb, a.api_group, a.resource + sub)] += 1
            return
        err = forbidden(a, reason)
        self.denials.append(Denial(attributes=a, message=err.message))
        log.warning("RBAC denied: %s", err.message)
        raise err
