"""Which new pods `berth webhook` routes, where to, and the JSONPatch it answers with."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest

from berth.config import parse_config
from berth.webhook.health import HEALTHY, LEASE_EXPIRED, Verdict
from berth.webhook.review import ReviewError, parse_request, response
from berth.webhook.routing import ROUTE_REASON, ROUTED_TO, route

UP = Verdict(True, HEALTHY, "leader a healthy")
DOWN = Verdict(False, LEASE_EXPIRED, "Lease kube-system/berth of a last renewed 20.0s ago")
CONFIG = {
    "profiles": [{"schedulerName": "berth"}, {"schedulerName": "berth-batch"}],
    "webhook": {
        "rules": [
            {"namespaces": ["ml"]},
            {"podSelector": {"matchLabels": {"team": "search"}}},
            {
                "namespaces": ["web"],
                "podSelector": {
                    "matchExpressions": [{"key": "tier", "operator": "In", "values": ["batch"]}]
                },
            },
        ]
    },
}


def pod(
    *,
    scheduler: str = "default-scheduler",
    labels: dict[str, str] | None = None,
    annotations: dict[str, str] | None = None,
    node: str | None = None,
) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": "p"}
    if labels:
        meta["labels"] = labels
    if annotations is not None:
        meta["annotations"] = annotations
    spec: dict[str, Any] = {"schedulerName": scheduler, "containers": [{"name": "c"}]}
    if node:
        spec["nodeName"] = node
    return {"metadata": meta, "spec": spec}


def apply(patch: list[dict[str, Any]], obj: dict[str, Any]) -> dict[str, Any]:
    """The patch applied as kube-apiserver would (the embedded cluster's RFC 6902 code)."""
    from berth.cluster.patch import json_patch

    out: dict[str, Any] = json_patch(obj, patch)
    return out


# name, pod, namespace, verdict, want scheduler (None: left alone)
ROWS = [
    ("namespace rule, Berth up", pod(), "ml", UP, "berth"),
    ("namespace rule, Berth down", pod(), "ml", DOWN, "default-scheduler"),
    ("label rule in any namespace", pod(labels={"team": "search"}), "default", UP, "berth"),
    ("expression rule", pod(labels={"tier": "batch"}), "web", UP, "berth"),
    ("expression rule, other value", pod(labels={"tier": "web"}), "web", UP, None),
    ("no rule matches", pod(), "default", UP, None),
    (
        "annotation names a profile",
        pod(annotations={"berth.io/scheduler": "berth-batch"}),
        "default",
        UP,
        "berth-batch",
    ),
    (
        "annotation, Berth down",
        pod(annotations={"berth.io/scheduler": "berth"}),
        "default",
        DOWN,
        "default-scheduler",
    ),
    (
        "annotation opts out of a rule",
        pod(annotations={"berth.io/scheduler": "default-scheduler"}),
        "ml",
        UP,
        None,
    ),
    ("explicit Berth profile, Berth up", pod(scheduler="berth"), "default", UP, "berth"),
    (
        "explicit Berth profile, Berth down",
        pod(scheduler="berth"),
        "default",
        DOWN,
        "default-scheduler",
    ),
    ("a third scheduler is never touched", pod(scheduler="volcano"), "ml", UP, None),
    (
        "a third scheduler, annotation or not",
        pod(scheduler="volcano", annotations={"berth.io/scheduler": "berth"}),
        "ml",
        UP,
        None,
    ),
    ("bound at creation", pod(node="node-1"), "ml", UP, None),
]


@pytest.mark.parametrize(
    ("pod", "namespace", "verdict", "want"), [r[1:] for r in ROWS], ids=[r[0] for r in ROWS]
)
def test_route(pod: dict[str, Any], namespace: str, verdict: Verdict, want: str | None) -> None:
    config = parse_config(CONFIG).model
    got = route(
        pod,
        namespace=namespace,
        settings=config.webhook,
        profiles={"berth", "berth-batch"},
        verdict=verdict,
    )
    if want is None:
        assert got is None
        return
    assert got is not None and got.to == want
    patched = apply(got.patch, pod)
    assert patched["spec"]["schedulerName"] == want
    notes = patched["metadata"]["annotations"]
    assert notes[ROUTED_TO] == want
    assert notes[ROUTE_REASON] == (
        verdict.detail if verdict.healthy else f"Berth unavailable: {verdict.detail}"
    )
    # an unchanged schedulerName is not rewritten
    assert any(op["path"] == "/spec/schedulerName" for op in got.patch) == (
        pod["spec"]["schedulerName"] != want
    )


def test_existing_annotations_are_kept_and_keys_escaped() -> None:
    config = parse_config(CONFIG).model
    obj = pod(annotations={"keep": "me"})
    got = route(obj, namespace="ml", settings=config.webhook, profiles={"berth"}, verdict=UP)
    assert got is not None
    paths = [op["path"] for op in got.patch]
    assert "/metadata/annotations/berth.io~1routed-to" in paths
    assert apply(got.patch, obj)["metadata"]["annotations"]["keep"] == "me"


def test_fallback_explicit_off_leaves_explicit_pods_waiting() -> None:
    config = parse_config(
        {**CONFIG, "webhook": {**CONFIG["webhook"], "fallbackExplicit": False}}
    ).model
    got = route(
        pod(scheduler="berth"),
        namespace="default",
        settings=config.webhook,
        profiles={"berth"},
        verdict=DOWN,
    )
    assert got is None


def test_review_response_is_what_kube_apiserver_reads() -> None:
    patch = [{"op": "add", "path": "/spec/schedulerName", "value": "berth"}]
    answer = response("u-1", patch=patch)
    assert answer["apiVersion"] == "admission.k8s.io/v1" and answer["kind"] == "AdmissionReview"
    assert answer["response"]["uid"] == "u-1" and answer["response"]["allowed"] is True
    assert answer["response"]["patchType"] == "JSONPatch"
    assert json.loads(base64.b64decode(answer["response"]["patch"])) == patch
    # no patch: neither patch nor patchType (kube-apiserver refuses one without the other)
    assert response("u-2") == {
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "response": {"uid": "u-2", "allowed": True},
    }


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ([], "the body is not a JSON object"),
        (
            {"apiVersion": "admission.k8s.io/v1beta1", "kind": "AdmissionReview"},
            "expected apiVersion admission.k8s.io/v1 kind AdmissionReview, got "
            "'admission.k8s.io/v1beta1' 'AdmissionReview'",
        ),
        ({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview"}, "request: missing"),
        (
            {
                "apiVersion": "admission.k8s.io/v1",
                "kind": "AdmissionReview",
                "request": {"uid": ""},
            },
            "request.uid: missing",
        ),
    ],
)
def test_malformed_reviews(body: Any, message: str) -> None:
    with pytest.raises(
        ReviewError, match="^" + message.replace("(", r"\(").replace(")", r"\)") + "$"
    ):
        parse_request(body)
