"""Strict validation of a rendered manifest: built-in kinds against the official Kubernetes 1.37
schemas (kubernetes-validate, strict: unknown fields are errors); a ServiceMonitor against the
openAPIV3Schema of its CRD as the API server would apply it, made strict the same way (an
object schema that does not preserve unknown fields rejects them), with its metadata checked as
ObjectMeta."""

from __future__ import annotations

from typing import Any

import jsonschema
import kubernetes_validate

from tests.deploy.render import servicemonitor_crd

VERSION = "1.37"


def validate(doc: dict[str, Any]) -> None:
    """Raises on the first violation; returns None when the object is valid."""
    if doc.get("apiVersion") == "monitoring.coreos.com/v1":
        _validate_custom(doc, servicemonitor_crd())
    else:
        kubernetes_validate.validate(doc, VERSION, strict=True)


def _validate_custom(doc: dict[str, Any], crd: dict[str, Any]) -> None:
    spec = crd["spec"]
    group, version = doc["apiVersion"].split("/")
    assert (group, doc["kind"]) == (spec["group"], spec["names"]["kind"]), doc["kind"]
    (served,) = [v for v in spec["versions"] if v["name"] == version and v["served"]]
    schema = strict(served["schema"]["openAPIV3Schema"])
    jsonschema.Draft7Validator(schema).validate({**doc, "metadata": {}})
    # metadata is ObjectMeta for every kind: checked as a ConfigMap's, strictly
    meta = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": doc["metadata"]}
    kubernetes_validate.validate(meta, VERSION, strict=True)


def strict(schema: dict[str, Any]) -> dict[str, Any]:
    """An OpenAPI v3 structural schema as a JSON Schema that rejects unknown fields."""
    out: dict[str, Any] = {}
    for key, value in schema.items():
        if key in ("properties", "patternProperties"):
            out[key] = {name: strict(sub) for name, sub in value.items()}
        elif key in ("items", "not") or (key == "additionalProperties" and isinstance(value, dict)):
            out[key] = strict(value)
        elif key in ("allOf", "anyOf", "oneOf"):
            out[key] = [strict(sub) for sub in value]
        elif not key.startswith("x-kubernetes-") and key != "nullable":
            out[key] = value
    if schema.get("nullable") and "type" in out:
        out["type"] = [out["type"], "null"]
    if schema.get("x-kubernetes-int-or-string"):
        out.pop("type", None)
        out.setdefault("anyOf", [{"type": "integer"}, {"type": "string"}])
    if (
        "properties" in schema
        and "additionalProperties" not in schema
        and not schema.get("x-kubernetes-preserve-unknown-fields")
    ):
        out["additionalProperties"] = False
    return out
