"""Mutating admission webhooks: the MutatingWebhookConfigurations stored here are called, as
kube-apiserver's MutatingAdmissionWebhook plugin calls them, on every create they match.

Upstream's semantics (k8s.io/apiserver admission/plugin/webhook): configurations in name order,
webhooks in their order, each seeing the object as the previous ones left it; a webhook is
called when a rule matches (operations, apiGroups, apiVersions, resources with subresources,
scope), the namespace's labels match `namespaceSelector` and the object's `objectSelector`;
the AdmissionReview v1 round trip over HTTPS with the `caBundle` (else the system's roots),
`?timeout=Ns`, `timeoutSeconds`; a JSONPatch answer applied; `allowed: false` refuses the
request with the webhook's status; a webhook that cannot be called (refused, timed out, an
invalid answer) refuses it too unless `failurePolicy: Ignore`. The configurations themselves
are never sent to webhooks. Differences, refused or documented (docs/cluster.md): creates
only, no reinvocation, no `matchConditions`, no Service references (there is no Service
network), no equivalent-resource matching.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import copy
import hashlib
import logging
import ssl
import uuid
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import orjson

from berth.cluster import errors
from berth.cluster.admission import default_pod, prepare_create
from berth.cluster.errors import ApiError
from berth.cluster.limits import Limits
from berth.cluster.patch import json_patch
from berth.cluster.rbac import User
from berth.cluster.resources import BY_KEY, NAMESPACES, PODS, ResourceType
from berth.cluster.selectors import label_selector_matches
from berth.cluster.store import Store

JSON = dict[str, Any]
Cause = tuple[str, str, str]
log = logging.getLogger("berth.cluster.webhooks")

GROUP = "admissionregistration.k8s.io"
KEY = f"mutatingwebhookconfigurations.{GROUP}"
_SYSTEM_FIELDS = ("uid", "creationTimestamp", "generation", "resourceVersion", "selfLink")
_OPERATIONS = ("*", "CREATE", "UPDATE", "DELETE", "CONNECT")
_SCOPES = ("*", "Cluster", "Namespaced")
_REVIEW_VERSIONS = ("v1", "v1beta1")


# --- defaults and validation of the configurations (pkg/apis/admissionregistration) -------------


def default_configuration(obj: JSON) -> JSON:
    """upstream's SetDefaults_MutatingWebhook, _Rule and _ServiceReference."""
    hooks = obj.get("webhooks")
    if not isinstance(hooks, list):
        return obj
    out = []
    for hook in hooks:
        if not isinstance(hook, dict):
            out.append(hook)
            continue
        hook = {
            "failurePolicy": "Fail",
            "matchPolicy": "Equivalent",
            "namespaceSelector": {},
            "objectSelector": {},
            "timeoutSeconds": 10,
            "reinvocationPolicy": "Never",
            **{k: v for k, v in hook.items() if v is not None},
        }
        rules = hook.get("rules")
        if isinstance(rules, list):
            hook["rules"] = [
                {"scope": "*", **r} if isinstance(r, dict) and r.get("scope") is None else r
                for r in rules
            ]
        client = hook.get("clientConfig")
        if isinstance(client, dict) and isinstance(client.get("service"), dict):
            hook["clientConfig"] = {**client, "service": {"port": 443, **client["service"]}}
        out.append(hook)
    return {**obj, "webhooks": out}


def _quote(value: Any) -> str:
    return orjson.dumps(value).decode()


def _not_supported(path: str, value: Any, supported: tuple[str, ...]) -> Cause:
    shown = ", ".join(f'"{s}"' for s in sorted(supported))
    return (
        "FieldValueNotSupported",
        path,
        f"Unsupported value: {_quote(value)}: supported values: {shown}",
    )


def _qualified_causes(path: str, name: Any) -> list[Cause]:
    from berth.cluster.validation import _DNS1123_SUBDOMAIN

    if not isinstance(name, str) or not name:
        return [("FieldValueRequired", path, "Required value")]
    if len(name) > 253 or not _DNS1123_SUBDOMAIN.match(name):
        return [
            (
                "FieldValueInvalid",
                path,
                f"Invalid value: {_quote(name)}: a lowercase RFC 1123 subdomain must consist of "
                "lower case alphanumeric characters, '-' or '.', and must start and end with an "
                "alphanumeric character (e.g. 'example.com', regex used for validation is "
                "'[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')",
            )
        ]
    if len(name.split(".")) < 3:
        return [
            (
                "FieldValueInvalid",
                path,
                f"Invalid value: {_quote(name)}: should be a domain with at least three segments "
                "separated by dots",
            )
        ]
    return []


def _rule_causes(path: str, rule: Any) -> list[Cause]:
    if not isinstance(rule, dict):
        return []
    causes: list[Cause] = []
    ops = rule.get("operations") or []
    if not ops:
        causes.append(("FieldValueRequired", f"{path}.operations", "Required value"))
    if len(ops) > 1 and "*" in ops:
        causes.append(
            (
                "FieldValueInvalid",
                f"{path}.operations",
                f"Invalid value: {_quote(ops)}: if '*' is present, must not specify other "
                "operations",
            )
        )
    for i, op in enumerate(ops):
        if op not in _OPERATIONS:
            causes.append(_not_supported(f"{path}.operations[{i}]", op, _OPERATIONS))
    for part, what in (("apiGroups", "API groups"), ("apiVersions", "API versions")):
        items = rule.get(part) or []
        if not items:
            causes.append(("FieldValueRequired", f"{path}.{part}", "Required value"))
        elif len(items) > 1 and "*" in items:
            causes.append(
                (
                    "FieldValueInvalid",
                    f"{path}.{part}",
                    f"Invalid value: {_quote(items)}: if '*' is present, must not specify "
                    f"other {what}",
                )
            )
    for i, version in enumerate(rule.get("apiVersions") or []):
        if version == "":
            causes.append(("FieldValueRequired", f"{path}.apiVersions[{i}]", "Required value"))
    resources = rule.get("resources") or []
    if not resources:
        causes.append(("FieldValueRequired", f"{path}.resources", "Required value"))
    for i, res in enumerate(resources):
        if res == "":
            causes.append(("FieldValueRequired", f"{path}.resources[{i}]", "Required value"))
    if "*/*" in resources and len(resources) > 1:
        causes.append(
            (
                "FieldValueInvalid",
                f"{path}.resources",
                f"Invalid value: {_quote(resources)}: if '*/*' is present, must not specify "
                "other resources",
            )
        )
    scope = rule.get("scope")
    if scope is not None and scope not in _SCOPES:
        causes.append(_not_supported(f"{path}.scope", scope, _SCOPES))
    return causes


def _url_causes(path: str, url: Any) -> list[Cause]:
    form = "; desired format: https://host[/path]"
    parts = urlsplit(str(url))
    causes: list[Cause] = []
    if parts.scheme != "https":
        causes.append(
            (
                "FieldValueInvalid",
                path,
                f"Invalid value: {_quote(parts.scheme)}: 'https' is the only allowed URL "
                f"scheme{form}",
            )
        )
    if not parts.netloc:
        causes.append(
            ("FieldValueInvalid", path, f'Invalid value: "": host must be specified{form}')
        )
    if "@" in parts.netloc:
        user = parts.netloc.rsplit("@", 1)[0]
        causes.append(
            (
                "FieldValueInvalid",
                path,
                f"Invalid value: {_quote(user)}: user information is not permitted in the URL",
            )
        )
    if parts.fragment:
        causes.append(
            (
                "FieldValueInvalid",
                path,
                f"Invalid value: {_quote(parts.fragment)}: fragments are not permitted in the URL",
            )
        )
    if parts.query:
        causes.append(
            (
                "FieldValueInvalid",
                path,
                f"Invalid value: {_quote(parts.query)}: query parameters are not permitted in "
                "the URL",
            )
        )
    return causes


def configuration_causes(obj: JSON) -> list[Cause]:
    """upstream ValidateMutatingWebhookConfiguration, and what the embedded cluster cannot call
    (refused as Forbidden causes naming the field, rather than stored and never called)."""
    from berth.cluster.validation import label_selector_causes

    causes: list[Cause] = []
    hooks = obj.get("webhooks") or []
    if not isinstance(hooks, list):
        return causes
    seen: set[str] = set()
    for i, hook in enumerate(hooks):
        if not isinstance(hook, dict):
            continue
        path = f"webhooks[{i}]"
        name = hook.get("name")
        causes += _qualified_causes(f"{path}.name", name)
        for j, rule in enumerate(hook.get("rules") or []):
            causes += _rule_causes(f"{path}.rules[{j}]", rule)
        for field, supported in (
            ("failurePolicy", ("Fail", "Ignore")),
            ("matchPolicy", ("Equivalent", "Exact")),
            ("reinvocationPolicy", ("IfNeeded", "Never")),
        ):
            value = hook.get(field)
            if value is not None and value not in supported:
                causes.append(_not_supported(f"{path}.{field}", value, supported))
        effects = hook.get("sideEffects")
        if effects is None:
            causes.append(
                (
                    "FieldValueRequired",
                    f"{path}.sideEffects",
                    "Required value: must specify one of None, NoneOnDryRun",
                )
            )
        elif effects not in ("None", "NoneOnDryRun"):
            causes.append(_not_supported(f"{path}.sideEffects", effects, ("None", "NoneOnDryRun")))
        timeout = hook.get("timeoutSeconds")
        if isinstance(timeout, int) and not 1 <= timeout <= 30:
            causes.append(
                (
                    "FieldValueInvalid",
                    f"{path}.timeoutSeconds",
                    f"Invalid value: {timeout}: the timeout value must be between 1 and 30 seconds",
                )
            )
        for sel in ("namespaceSelector", "objectSelector"):
            causes += label_selector_causes(f"{path}.{sel}", hook.get(sel))
        client = hook.get("clientConfig") or {}
        has_url, has_service = client.get("url") is not None, client.get("service") is not None
        if has_url == has_service:
            causes.append(
                (
                    "FieldValueRequired",
                    f"{path}.clientConfig",
                    "Required value: exactly one of url or service is required",
                )
            )
        elif has_url:
            causes += _url_causes(f"{path}.clientConfig.url", client["url"])
        else:
            causes.append(
                (
                    "FieldValueForbidden",
                    f"{path}.clientConfig.service",
                    "Forbidden: the embedded cluster has no Service network to call a webhook "
                    "through; use clientConfig.url",
                )
            )
        if hook.get("matchConditions"):
            causes.append(
                (
                    "FieldValueForbidden",
                    f"{path}.matchConditions",
                    "Forbidden: the embedded cluster does not evaluate matchConditions (CEL)",
                )
            )
        versions = hook.get("admissionReviewVersions") or []
        if not versions:
            causes.append(
                (
                    "FieldValueRequired",
                    f"{path}.admissionReviewVersions",
                    "Required value: must specify one of v1, v1beta1",
                )
            )
        elif not any(v in _REVIEW_VERSIONS for v in versions):
            causes.append(
                (
                    "FieldValueInvalid",
                    f"{path}.admissionReviewVersions",
                    f"Invalid value: {_quote(versions)}: must include at least one of v1, v1beta1",
                )
            )
        elif "v1" not in versions:
            causes.append(
                (
                    "FieldValueForbidden",
                    f"{path}.admissionReviewVersions",
                    "Forbidden: the embedded cluster sends AdmissionReview v1 only",
                )
            )
        if isinstance(name, str) and name:
            if name in seen:
                causes.append(
                    ("FieldValueDuplicate", f"{path}.name", f"Duplicate value: {_quote(name)}")
                )
            seen.add(name)
    return causes


def creates_only_warnings(obj: JSON) -> list[str]:
    """What the embedded cluster stores but does not do: a rule's UPDATE, DELETE and CONNECT."""
    out = []
    for i, hook in enumerate(obj.get("webhooks") or []):
        if not isinstance(hook, dict):
            continue
        for j, rule in enumerate(hook.get("rules") or []):
            ops = [
                o
                for o in (rule or {}).get("operations") or []
                if o in ("UPDATE", "DELETE", "CONNECT")
            ]
            if ops:
                out.append(
                    f"webhooks[{i}].rules[{j}]: the embedded cluster calls mutating webhooks on "
                    f"CREATE only, not on {', '.join(ops)}"
                )
    return out


# --- calling them -----------------------------------------------------------------------------


class _CallFailed(Exception):
    """upstream's ErrCallingWebhook: subject to the failurePolicy."""


def _matches_rule(rule: JSON, rt: ResourceType, namespace: str) -> bool:
    def has(items: Any, value: str) -> bool:
        return isinstance(items, list) and ("*" in items or value in items)

    scope = rule.get("scope") or "*"
    cluster_scoped = rt is NAMESPACES or not namespace
    if scope == "Namespaced" and cluster_scoped:
        return False
    if scope == "Cluster" and not cluster_scoped:
        return False
    if not (has(rule.get("operations"), "CREATE") and has(rule.get("apiGroups"), rt.group)):
        return False
    if not has(rule.get("apiVersions"), rt.version):
        return False
    for entry in rule.get("resources") or []:
        res, _, sub = str(entry).partition("/")
        if (res == "*" or res == rt.plural) and (sub == "*" or sub == ""):
            return True
    return False


def _labels(obj: Any) -> dict[str, str]:
    meta = obj.get("metadata") if isinstance(obj, dict) else None
    labels = meta.get("labels") if isinstance(meta, dict) else None
    return {str(k): str(v) for k, v in labels.items()} if isinstance(labels, dict) else {}


def _reason(exc: BaseException, url: str) -> str:
    """Go's wording where it is short and known, the Python error otherwise."""
    if isinstance(exc, TimeoutError):
        return "context deadline exceeded"
    if isinstance(exc, aiohttp.ClientConnectorCertificateError):
        return f"tls: failed to verify certificate: {exc.certificate_error}"
    if isinstance(exc, aiohttp.ClientConnectorError):
        parts = urlsplit(url)
        err = exc.os_error
        if isinstance(err, ConnectionRefusedError):
            return f"dial tcp {parts.hostname}:{parts.port or 443}: connect: connection refused"
        return f"dial tcp {parts.hostname}:{parts.port or 443}: {err.strerror or err}"
    return str(exc) or type(exc).__name__


class MutatingWebhooks:
    """The dispatcher the REST handler calls on creates, before anything is validated or stored."""

    def __init__(self, *, store: Store, limits: Limits) -> None:
        self.store = store
        self.limits = limits
        self._session: aiohttp.ClientSession | None = None
        self._contexts: dict[str, ssl.SSLContext] = {}
        self.calls = 0

    @property
    def rt(self) -> ResourceType:
        return BY_KEY[KEY]

    def _hooks(self) -> list[tuple[str, JSON]]:
        configs = sorted(self.store.items(self.rt), key=lambda c: c["metadata"]["name"])
        return [
            (c["metadata"]["name"], h)
            for c in configs
            for h in c.get("webhooks") or []
            if isinstance(h, dict)
        ]

    async def admit_create(
        self,
        rt: ResourceType,
        *,
        namespace: str | None,
        body: Any,
        user: User,
        dry_run: bool,
        field_manager: str = "",
    ) -> Any:
        """`body` as the matching webhooks leave it (unchanged when none matches)."""
        if rt.group == GROUP or not isinstance(body, dict):
            return body  # IsExemptAdmissionConfigurationResource; a non-object fails later
        hooks = self._hooks()
        if not hooks:
            return body
        ns = (namespace or "") if rt.namespaced else ""
        ns_labels: dict[str, str] = {}
        if rt.namespaced:
            ns_obj = self.store.get(NAMESPACES, "", ns)
            if ns_obj is None:
                return body  # the create is refused with the namespace's 404 next
            ns_labels = _labels(ns_obj)
        obj = self._as_admitted(rt, body, ns)
        if rt is NAMESPACES:
            ns_labels = _labels(obj)
        for config_name, hook in hooks:
            if not self._matches(hook, rt, ns, ns_labels, obj):
                continue
            obj = await self._call(
                config_name,
                hook,
                rt,
                obj,
                namespace=ns,
                user=user,
                dry_run=dry_run,
                field_manager=field_manager,
            )
        return obj

    def _as_admitted(self, rt: ResourceType, body: JSON, namespace: str) -> JSON:
        """The object as kube-apiserver hands it to admission: decoded with its defaults and the
        earlier admission plugins' changes (Priority, DefaultTolerationSeconds for pods), its
        namespace set, the system fields wiped (no uid, no creationTimestamp; a generateName
        pod has no name yet)."""
        obj = prepare_create(rt, body, namespace=namespace or None)
        if rt is PODS:
            obj = default_pod(obj, priority_class=self._priority_class)
            obj["status"] = (
                copy.deepcopy(body.get("status")) if isinstance(body.get("status"), dict) else {}
            )
        meta = {k: v for k, v in obj["metadata"].items() if k not in _SYSTEM_FIELDS}
        name = (
            (body.get("metadata") or {}).get("name")
            if isinstance(body.get("metadata"), dict)
            else None
        )
        if name:
            meta["name"] = name
        else:
            meta.pop("name", None)
        obj["metadata"] = meta
        return obj

    def _priority_class(self, name: str | None) -> JSON | None:
        from berth.cluster.resources import PRIORITY_CLASSES

        if name:
            return self.store.get(PRIORITY_CLASSES, "", name)
        return next(
            (pc for pc in self.store.items(PRIORITY_CLASSES) if pc.get("globalDefault")), None
        )

    @staticmethod
    def _matches(
        hook: JSON, rt: ResourceType, namespace: str, ns_labels: dict[str, str], obj: JSON
    ) -> bool:
        if namespace or rt is NAMESPACES:
            selector = hook.get("namespaceSelector")
            if selector and not label_selector_matches(selector, ns_labels, unknown_operator=False):
                return False
        selector = hook.get("objectSelector")
        if selector and not label_selector_matches(selector, _labels(obj), unknown_operator=False):
            return False
        return any(
            _matches_rule(r, rt, namespace) for r in hook.get("rules") or [] if isinstance(r, dict)
        )

    def _context(self, bundle: str) -> ssl.SSLContext:
        key = hashlib.sha256(bundle.encode()).hexdigest()
        context = self._contexts.get(key)
        if context is None:
            if bundle:
                pem = base64.b64decode(bundle).decode("ascii", "replace")
                context = ssl.create_default_context(cadata=pem)
            else:
                context = ssl.create_default_context()
            self._contexts[key] = context
        return context

    async def _call(
        self,
        config_name: str,
        hook: JSON,
        rt: ResourceType,
        obj: JSON,
        *,
        namespace: str,
        user: User,
        dry_run: bool,
        field_manager: str,
    ) -> JSON:
        name = str(hook.get("name", ""))
        uid = str(uuid.uuid4())
        timeout = int(hook.get("timeoutSeconds") or 10)
        url = str((hook.get("clientConfig") or {}).get("url", ""))
        target = f"{url}{'&' if '?' in url else '?'}timeout={timeout}s"
        gvk = {"group": rt.group, "version": rt.version, "kind": rt.kind}
        gvr = {"group": rt.group, "version": rt.version, "resource": rt.plural}
        request: JSON = {
            "uid": uid,
            "kind": gvk,
            "resource": gvr,
            "requestKind": gvk,
            "requestResource": gvr,
            "operation": "CREATE",
            "userInfo": {
                "username": user.name,
                **({"groups": list(user.groups)} if user.groups else {}),
            },
            "object": obj,
            "oldObject": None,
            "dryRun": dry_run,
            "options": {
                "kind": "CreateOptions",
                "apiVersion": "meta.k8s.io/v1",
                **({"fieldManager": field_manager} if field_manager else {}),
            },
        }
        obj_name = (obj.get("metadata") or {}).get("name")
        if obj_name:
            request["name"] = obj_name
        if namespace:
            request["namespace"] = namespace
        review = {
            "apiVersion": "admission.k8s.io/v1",
            "kind": "AdmissionReview",
            "request": request,
        }
        self.calls += 1
        try:
            answer = await self._post(target, review, hook, timeout)
            result = _verify(answer, uid)
        except _CallFailed as exc:
            if hook.get("failurePolicy", "Fail") == "Ignore":
                log.warning(
                    "failed calling webhook, failing open %s: %s",
                    name,
                    exc,
                    extra={"configuration": config_name},
                )
                return obj
            message = f'failed calling webhook "{name}": {exc}'
            raise ApiError(
                code=500,
                reason="InternalError",
                message=f"Internal error occurred: {message}",
                details={"causes": [{"message": message}]},
            ) from None
        if not result.get("allowed"):
            raise _rejection(name, result.get("status"))
        patch = result.get("patch")
        if not patch:
            return obj
        try:
            ops = orjson.loads(base64.b64decode(patch, validate=True))
        except (binascii.Error, ValueError, orjson.JSONDecodeError) as exc:
            return self._undecodable(
                hook, name, obj, f"received undecodable patch in webhook response: {exc}"
            )
        if result.get("patchType") != "JSONPatch":
            return self._undecodable(
                hook, name, obj, f'unsupported patch type "{result.get("patchType")}"'
            )
        try:
            patched = json_patch(
                obj,
                ops,
                max_copy_bytes=self.limits.json_patch_max_copy_bytes,
                max_operations=self.limits.json_patch_max_operations,
            )
        except ApiError as exc:  # upstream: an InternalError whatever the failurePolicy
            raise errors.internal(f"Internal error occurred: {exc.message}") from None
        if not isinstance(patched, dict):
            raise errors.internal(
                f'Internal error occurred: admission webhook "{name}" made the object not an object'
            )
        return patched

    def _undecodable(self, hook: JSON, name: str, obj: JSON, why: str) -> JSON:
        if hook.get("failurePolicy", "Fail") == "Ignore":
            log.warning("failed calling webhook, failing open %s: %s", name, why)
            return obj
        message = f'failed calling webhook "{name}": {why}'
        raise ApiError(
            code=500,
            reason="InternalError",
            message=f"Internal error occurred: {message}",
            details={"causes": [{"message": message}]},
        )

    async def _post(self, url: str, review: JSON, hook: JSON, timeout: int) -> Any:
        bundle = str((hook.get("clientConfig") or {}).get("caBundle") or "")
        try:
            context = self._context(bundle)
        except (ValueError, ssl.SSLError) as exc:
            raise _CallFailed(f"could not get REST client: invalid caBundle: {exc}") from None
        if self._session is None:
            self._session = aiohttp.ClientSession(trust_env=False)
        limit = 2 * self.limits.max_body_bytes
        try:
            async with asyncio.timeout(timeout):
                async with self._session.post(
                    url,
                    data=orjson.dumps(review),
                    headers={"Content-Type": "application/json", "Accept": "application/json"},
                    ssl=context,
                    allow_redirects=False,
                ) as response:
                    data = await response.content.read(limit + 1)
                    status = response.status
        except (TimeoutError, aiohttp.ClientError, OSError) as exc:
            raise _CallFailed(
                f'failed to call webhook: Post "{url}": {_reason(exc, url)}'
            ) from None
        if len(data) > limit:
            raise _CallFailed(f"failed to call webhook: the answer is larger than {limit} bytes")
        if status != 200:
            raise _CallFailed(
                f"failed to call webhook: the server responded with the status code {status} "
                "but did not return more information"
            )
        try:
            return orjson.loads(data)
        except orjson.JSONDecodeError as exc:
            raise _CallFailed(f"failed to call webhook: the answer is not JSON: {exc}") from None

    async def close(self) -> None:
        if self._session is not None:
            with contextlib.suppress(Exception):
                await self._session.close()
            self._session = None


def _verify(answer: Any, uid: str) -> JSON:
    """apiserver VerifyAdmissionResponse for a mutating webhook's v1 answer."""

    def invalid(why: str) -> _CallFailed:
        return _CallFailed(f"received invalid webhook response: {why}")

    if not isinstance(answer, dict):
        raise invalid("webhook response was absent")
    gvk = f"{answer.get('apiVersion', '')}, Kind={answer.get('kind', '')}"
    if (answer.get("apiVersion"), answer.get("kind")) != ("admission.k8s.io/v1", "AdmissionReview"):
        raise invalid(
            f"expected webhook response of admission.k8s.io/v1, Kind=AdmissionReview, got {gvk}"
        )
    result = answer.get("response")
    if not isinstance(result, dict):
        raise invalid("webhook response was absent")
    if result.get("uid") != uid:
        raise invalid(f'expected response.uid="{uid}", got "{result.get("uid") or ""}"')
    if result.get("patch") and result.get("patchType") is None:
        raise invalid("webhook returned response.patch but not response.patchType")
    if not result.get("patch") and result.get("patchType") is not None:
        raise invalid("webhook returned response.patchType but not response.patch")
    if result.get("patchType") == "":
        raise invalid('webhook returned invalid response.patchType of ""')
    return result


def _rejection(name: str, status: Any) -> ApiError:
    """apiserver webhookerrors.ToStatusErr."""
    status = status if isinstance(status, dict) else {}
    denied = f'admission webhook "{name}" denied the request'
    code = status.get("code")
    code = code if isinstance(code, int) and code >= 400 else 400
    if status.get("message"):
        message = f"{denied}: {status['message']}"
    elif status.get("reason"):
        message = f"{denied}: {status['reason']}"
    else:
        message = f"{denied} without explanation"
    details = status.get("details") if isinstance(status.get("details"), dict) else None
    return ApiError(
        code=code, reason=str(status.get("reason") or ""), message=message, details=details
    )
