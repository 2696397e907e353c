"""Mutating admission webhooks on both servers: the AdmissionReview a webhook is sent, a patch
applied, a denial, each failure mode of a call under each failurePolicy, the matching rules and
selectors, and the validation of a MutatingWebhookConfiguration, with kube-apiserver's codes
and messages."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.fidelity.conftest import Answer, Api
from tests.webhook.hookserver import HookServer, allow, deny, hook_server

MWC = "/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations"
PODS = "/api/v1/namespaces/default/pods"


@pytest.fixture
def hooks(tmp_path: Path, server: Any) -> Iterator[HookServer]:
    with hook_server(tmp_path / "tls") as hooks:
        # kube-apiserver picks configurations up through an informer: a create right after
        # one is registered may not see it yet (the embedded cluster reads its store each time).
        hooks.settle = 1.0 if getattr(server, "kind", "embedded") == "upstream" else 0.0
        yield hooks


def pod(name: str = "p", **meta: Any) -> dict[str, Any]:
    metadata: dict[str, Any] = {"name": name, **meta} if name else dict(meta)
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": metadata,
        "spec": {"containers": [{"name": "c", "image": "busybox:1.36"}]},
    }


def register(api: Api, hooks: HookServer, **hook: Any) -> None:
    answer = api.post(MWC, hooks.configuration(**hook))
    assert answer.status == 201, answer.body
    time.sleep(hooks.settle)


def create(api: Api, body: dict[str, Any], **query: Any) -> Answer:
    return api.post(PODS, body, **query)


def test_webhook_is_sent_the_defaulted_pod_and_its_patch_is_applied(
    api: Api, hooks: HookServer
) -> None:
    """A matching webhook is sent an AdmissionReview v1 of the defaulted pod and its JSONPatch
    is applied before the pod is stored"""
    hooks.answer = allow(
        [
            {"op": "add", "path": "/spec/schedulerName", "value": "berth"},
            {"op": "add", "path": "/metadata/labels", "value": {"patched": "yes"}},
        ]
    )
    register(api, hooks, timeoutSeconds=7)
    answer = create(api, pod("p"))
    assert answer.status == 201, answer.body
    assert answer.body["spec"]["schedulerName"] == "berth"
    assert answer.body["metadata"]["labels"] == {"patched": "yes"}
    (review,) = hooks.reviews
    assert review["_query"] == {"timeout": "7s"}
    assert (review["apiVersion"], review["kind"]) == ("admission.k8s.io/v1", "AdmissionReview")
    req = review["request"]
    assert req["kind"] == req["requestKind"] == {"group": "", "version": "v1", "kind": "Pod"}
    assert req["resource"] == {"group": "", "version": "v1", "resource": "pods"}
    assert (req["operation"], req["namespace"], req["name"]) == ("CREATE", "default", "p")
    assert req["dryRun"] is False and req["oldObject"] is None
    assert req["options"]["kind"] == "CreateOptions"
    assert req["userInfo"]["username"]
    obj = req["object"]
    meta = obj["metadata"]
    assert "uid" not in meta and "creationTimestamp" not in meta and meta["namespace"] == "default"
    assert obj["spec"]["schedulerName"] == "default-scheduler"  # defaulted before admission
    assert obj["spec"]["priority"] == 0  # the Priority plugin runs before webhooks
    assert {t["key"] for t in obj["spec"]["tolerations"]} >= {
        "node.kubernetes.io/not-ready",
        "node.kubernetes.io/unreachable",
    }


def test_generate_name_pod_reaches_the_webhook_without_a_name(api: Api, hooks: HookServer) -> None:
    """A pod created with generateName is sent without a name (it is generated after
    admission)"""
    register(api, hooks)
    answer = create(api, pod("", generateName="gen-"))
    assert answer.status == 201, answer.body
    (review,) = hooks.reviews
    assert not review["request"].get("name")
    assert "name" not in review["request"]["object"]["metadata"]
    assert answer.body["metadata"]["name"].startswith("gen-")


def test_dry_run_create_tells_the_webhook(api: Api, hooks: HookServer) -> None:
    """A dry-run create reaches a sideEffects None webhook with dryRun true"""
    register(api, hooks)
    assert create(api, pod("dry"), dryRun="All").status == 201
    (review,) = hooks.reviews
    assert review["request"]["dryRun"] is True


@pytest.mark.parametrize(
    ("status", "code", "message"),
    [
        ({"message": "no thanks", "code": 403}, 403, "no thanks"),
        ({"reason": "Forbidden"}, 400, "Forbidden"),
        (None, 400, None),
    ],
    ids=["message", "reason", "bare"],
)
def test_denial_refuses_the_create(
    api: Api, hooks: HookServer, status: Any, code: int, message: str | None
) -> None:
    """allowed false refuses the create with the webhook's status (ToStatusErr)"""
    hooks.answer = deny(status)
    register(api, hooks)
    answer = create(api, pod("denied"))
    denied = 'admission webhook "pods.test.berth.io" denied the request'
    assert answer.status == code
    assert answer.message == (
        f"{denied}: {message}" if message else f"{denied} without explanation"
    )
    assert api.get(f"{PODS}/denied").status == 404


def _unreachable(hooks: HookServer) -> str:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"https://127.0.0.1:{port}/mutate"


@pytest.mark.parametrize("policy", ["Fail", "Ignore"])
def test_unreachable_webhook_follows_failure_policy(
    api: Api, hooks: HookServer, policy: str
) -> None:
    """A webhook nobody answers fails the create (Fail, 500 naming the call) or is passed over
    (Ignore)"""
    url = _unreachable(hooks)
    register(
        api,
        hooks,
        failurePolicy=policy,
        timeoutSeconds=2,
        clientConfig={"url": url, "caBundle": hooks.ca_bundle},
    )
    answer = create(api, pod("p"))
    if policy == "Ignore":
        assert answer.status == 201, answer.body
        return
    host_port = url.split("/")[2]
    assert (answer.status, answer.reason) == (500, "InternalError")
    assert answer.message == (
        'Internal error occurred: failed calling webhook "pods.test.berth.io": failed to call '
        f'webhook: Post "{url}?timeout=2s": dial tcp {host_port}: connect: connection refused'
    )


@pytest.mark.parametrize("policy", ["Fail", "Ignore"])
def test_slow_webhook_times_out(api: Api, hooks: HookServer, policy: str) -> None:
    """A webhook slower than timeoutSeconds fails the create (Fail) or is passed over (Ignore)"""
    inner = allow([{"op": "add", "path": "/metadata/labels", "value": {"late": "yes"}}])
    hooks.answer = lambda review: (*inner(review)[:2], 3.0)
    register(api, hooks, failurePolicy=policy, timeoutSeconds=1)
    answer = create(api, pod("slow"))
    if policy == "Ignore":
        assert answer.status == 201, answer.body
        assert "labels" not in answer.body["metadata"]
        return
    assert (answer.status, answer.reason) == (500, "InternalError")
    assert answer.message.startswith(
        'Internal error occurred: failed calling webhook "pods.test.berth.io": failed to call '
        f'webhook: Post "{hooks.url}?timeout=1s": '
    )
    assert answer.message.endswith("context deadline exceeded")


def test_wrong_uid_is_an_invalid_response(api: Api, hooks: HookServer) -> None:
    """An answer for another request's uid is an invalid response (a call failure)"""
    inner = allow()

    def wrong(review: dict[str, Any]) -> tuple[int, Any, float]:
        status, body, delay = inner(review)
        body["response"]["uid"] = "not-it"
        return status, body, delay

    hooks.answer = wrong
    register(api, hooks)
    answer = create(api, pod("p"))
    uid = hooks.reviews[0]["request"]["uid"]
    assert (answer.status, answer.reason) == (500, "InternalError")
    assert answer.message == (
        'Internal error occurred: failed calling webhook "pods.test.berth.io": received invalid '
        f'webhook response: expected response.uid="{uid}", got "not-it"'
    )


def test_untrusted_certificate_is_a_call_failure(api: Api, hooks: HookServer) -> None:
    """A serving certificate the caBundle did not sign fails the call (no caBundle: the
    system's roots do not know it either)"""
    register(api, hooks, clientConfig={"url": hooks.url})
    answer = create(api, pod("p"))
    assert (answer.status, answer.reason) == (500, "InternalError")
    assert "tls: failed to verify certificate" in answer.message
    assert hooks.reviews == []


@pytest.mark.parametrize(
    ("hook", "namespace_labels", "labels", "called"),
    [
        ({"objectSelector": {"matchLabels": {"route": "me"}}}, {}, {"route": "me"}, True),
        ({"objectSelector": {"matchLabels": {"route": "me"}}}, {}, {}, False),
        (
            {
                "namespaceSelector": {
                    "matchExpressions": [{"key": "team", "operator": "In", "values": ["ml"]}]
                }
            },
            {"team": "ml"},
            {},
            True,
        ),
        (
            {
                "namespaceSelector": {
                    "matchExpressions": [{"key": "team", "operator": "In", "values": ["ml"]}]
                }
            },
            {"team": "web"},
            {},
            False,
        ),
        (
            {
                "rules": [
                    {
                        "operations": ["UPDATE"],
                        "apiGroups": [""],
                        "apiVersions": ["v1"],
                        "resources": ["pods"],
                    }
                ]
            },
            {},
            {},
            False,
        ),
        (
            {
                "rules": [
                    {
                        "operations": ["*"],
                        "apiGroups": ["*"],
                        "apiVersions": ["*"],
                        "resources": ["*"],
                        "scope": "Namespaced",
                    }
                ]
            },
            {},
            {},
            True,
        ),
        (
            {
                "rules": [
                    {
                        "operations": ["CREATE"],
                        "apiGroups": [""],
                        "apiVersions": ["v1"],
                        "resources": ["pods"],
                        "scope": "Cluster",
                    }
                ]
            },
            {},
            {},
            False,
        ),
        (
            {
                "rules": [
                    {
                        "operations": ["CREATE"],
                        "apiGroups": [""],
                        "apiVersions": ["v1"],
                        "resources": ["pods/status"],
                    }
                ]
            },
            {},
            {},
            False,
        ),
    ],
    ids=[
        "object-selector-matches",
        "object-selector-misses",
        "namespace-selector-matches",
        "namespace-selector-misses",
        "update-only-rule",
        "wildcard-namespaced-rule",
        "cluster-scope-rule",
        "subresource-rule",
    ],
)
def test_which_creates_a_webhook_is_called_for(
    api: Api,
    hooks: HookServer,
    hook: dict[str, Any],
    namespace_labels: dict[str, str],
    labels: dict[str, str],
    called: bool,
) -> None:
    """A webhook is called when a rule, the namespaceSelector and the objectSelector match"""
    ns = {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {"name": "hooked", "labels": namespace_labels},
    }
    assert api.post("/api/v1/namespaces", ns).status == 201
    register(api, hooks, **hook)
    body = pod("p", labels=labels) if labels else pod("p")
    answer = api.post("/api/v1/namespaces/hooked/pods", body)
    assert answer.status == 201, answer.body
    assert bool(hooks.reviews) is called


def test_configurations_are_not_sent_to_webhooks(api: Api, hooks: HookServer) -> None:
    """A webhook matching every resource is not called for MutatingWebhookConfigurations"""
    everything = [
        {"operations": ["*"], "apiGroups": ["*"], "apiVersions": ["*"], "resources": ["*/*"]}
    ]
    register(api, hooks, rules=everything)
    second = hooks.configuration(name="second")
    second["webhooks"][0]["name"] = "other.test.berth.io"
    assert api.post(MWC, second).status == 201
    cm = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "seen"}}
    assert api.post("/api/v1/namespaces/default/configmaps", cm).status == 201
    kinds = {r["request"]["kind"]["kind"] for r in hooks.reviews}
    # kube-apiserver also sends its controllers' writes (leases, events): only these two matter
    assert "ConfigMap" in kinds and "MutatingWebhookConfiguration" not in kinds, kinds


def test_configuration_defaults(api: Api, hooks: HookServer) -> None:
    """A MutatingWebhookConfiguration is stored with upstream's defaults"""
    body = hooks.configuration()
    for key in ("failurePolicy", "timeoutSeconds"):
        del body["webhooks"][0][key]
    answer = api.post(MWC, body)
    assert answer.status == 201, answer.body
    hook = answer.body["webhooks"][0]
    assert {
        k: hook[k] for k in ("failurePolicy", "matchPolicy", "timeoutSeconds", "reinvocationPolicy")
    } == {
        "failurePolicy": "Fail",
        "matchPolicy": "Equivalent",
        "timeoutSeconds": 10,
        "reinvocationPolicy": "Never",
    }
    assert hook["namespaceSelector"] == {} and hook["objectSelector"] == {}
    assert hook["rules"][0]["scope"] == "*"


@pytest.mark.parametrize(
    ("change", "field", "message"),
    [
        (
            {"name": "too.short"},
            "webhooks[0].name",
            'Invalid value: "too.short": should be a domain with at least three segments '
            "separated by dots",
        ),
        (
            {"timeoutSeconds": 31},
            "webhooks[0].timeoutSeconds",
            "Invalid value: 31: the timeout value must be between 1 and 30 seconds",
        ),
        (
            {"sideEffects": None},
            "webhooks[0].sideEffects",
            "Required value: must specify one of None, NoneOnDryRun",
        ),
        (
            {"sideEffects": "Some"},
            "webhooks[0].sideEffects",
            'Unsupported value: "Some": supported values: "None", "NoneOnDryRun"',
        ),
        (
            {"failurePolicy": "Sometimes"},
            "webhooks[0].failurePolicy",
            'Unsupported value: "Sometimes": supported values: "Fail", "Ignore"',
        ),
        (
            {"clientConfig": {"url": "http://127.0.0.1:1/mutate"}},
            "webhooks[0].clientConfig.url",
            "Invalid value: \"http\": 'https' is the only allowed URL scheme; desired format: "
            "https://host[/path]",
        ),
        (
            {"clientConfig": {}},
            "webhooks[0].clientConfig",
            "Required value: exactly one of url or service is required",
        ),
        (
            {"admissionReviewVersions": []},
            "webhooks[0].admissionReviewVersions",
            "Required value: must specify one of v1, v1beta1",
        ),
    ],
    ids=[
        "short-name",
        "timeout",
        "no-side-effects",
        "side-effects-some",
        "failure-policy",
        "http-url",
        "no-client",
        "no-review-versions",
    ],
)
def test_invalid_configuration_is_refused(
    api: Api, hooks: HookServer, change: dict[str, Any], field: str, message: str
) -> None:
    """An invalid MutatingWebhookConfiguration is refused with upstream's cause"""
    body = hooks.configuration()
    body["webhooks"][0].update(change)
    body["webhooks"][0] = {k: v for k, v in body["webhooks"][0].items() if v is not None}
    answer = api.post(MWC, body)
    assert (answer.status, answer.reason) == (422, "Invalid"), answer.body
    causes = {(c["field"], c["message"]) for c in answer.body["details"]["causes"]}
    assert (field, message) in causes, causes
