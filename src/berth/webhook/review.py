"""The admission.k8s.io/v1 AdmissionReview wire format, as kube-apiserver sends and reads it
(k8s.io/api/admission/v1, checked by apiserver's VerifyAdmissionResponse).

A response names the request's `uid`, says `allowed`, and carries a mutation as `patchType:
JSONPatch` with `patch` the base64 of an RFC 6902 array; `patch` and `patchType` come together or
not at all, since kube-apiserver refuses one without the other.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from typing import Any

import orjson

JSON = dict[str, Any]
API_VERSION = "admission.k8s.io/v1"
KIND = "AdmissionReview"


class ReviewError(ValueError):
    """A body that is not an AdmissionReview request; the message is one line."""


@dataclass(frozen=True)
class Request:
    uid: str
    kind: JSON  # {group, version, kind}
    resource: JSON  # {group, version, resource}
    sub_resource: str
    operation: str
    namespace: str
    name: str
    object: Any
    dry_run: bool

    @property
    def is_pod_create(self) -> bool:
        return (
            self.operation == "CREATE"
            and self.kind.get("group", "") == ""
            and self.kind.get("kind") == "Pod"
            and not self.sub_resource
        )


def parse_request(body: Any) -> Request:
    """The request of an AdmissionReview; raises ReviewError."""
    if not isinstance(body, dict):
        raise ReviewError("the body is not a JSON object")
    if body.get("apiVersion") != API_VERSION or body.get("kind") != KIND:
        raise ReviewError(
            f"expected apiVersion {API_VERSION} kind {KIND}, got "
            f"{body.get('apiVersion')!r} {body.get('kind')!r}"
        )
    request = body.get("request")
    if not isinstance(request, dict):
        raise ReviewError("request: missing")
    uid = request.get("uid")
    if not isinstance(uid, str) or not uid:
        raise ReviewError("request.uid: missing")
    kind = request.get("kind")
    resource = request.get("resource")

    def text(key: str) -> str:
        value = request.get(key)
        return value if isinstance(value, str) else ""

    return Request(
        uid=uid,
        kind=kind if isinstance(kind, dict) else {},
        resource=resource if isinstance(resource, dict) else {},
        sub_resource=text("subResource"),
        operation=text("operation"),
        namespace=text("namespace"),
        name=text("name"),
        object=request.get("object"),
        dry_run=request.get("dryRun") is True,
    )


def response(uid: str, *, patch: list[JSON] | None = None) -> JSON:
    """An allowing AdmissionReview response, with `patch` as a JSONPatch when it has any op."""
    answer: JSON = {"uid": uid, "allowed": True}
    if patch:
        answer["patchType"] = "JSONPatch"
        answer["patch"] = base64.b64encode(orjson.dumps(patch)).decode()
    return {"apiVersion": API_VERSION, "kind": KIND, "response": answer}
