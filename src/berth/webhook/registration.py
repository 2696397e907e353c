"""The MutatingWebhookConfiguration that sends new pods to `berth webhook`, the same one the
manifests under deploy/ ship: failurePolicy Ignore (a webhook that is down or slow never stops a
pod being created), a short timeout, no side effects (dry runs are answered like any request),
and selectors that keep the cluster's own namespaces and Berth's own pods out.
"""

from __future__ import annotations

import base64
from typing import Any

NAME = "berth-scheduler-routing"
WEBHOOK_NAME = "scheduler-routing.berth.io"
TIMEOUT_SECONDS = 2
EXCLUDED_NAMESPACES = ("kube-system", "kube-node-lease", "kube-public")


def webhook_configuration(
    *, url: str | None = None, service: dict[str, Any] | None = None, ca_bundle: bytes | None
) -> dict[str, Any]:
    """The configuration calling `url` (or a Service reference), trusting the PEM `ca_bundle`."""
    client: dict[str, Any] = {"url": url} if url else {"service": service}
    if ca_bundle:
        client["caBundle"] = base64.b64encode(ca_bundle).decode()
    return {
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "MutatingWebhookConfiguration",
        "metadata": {"name": NAME, "labels": {"app.kubernetes.io/part-of": "berth"}},
        "webhooks": [
            {
                "name": WEBHOOK_NAME,
                "admissionReviewVersions": ["v1"],
                "clientConfig": client,
                "rules": [
                    {
                        "operations": ["CREATE"],
                        "apiGroups": [""],
                        "apiVersions": ["v1"],
                        "resources": ["pods"],
                        "scope": "Namespaced",
                    }
                ],
                "failurePolicy": "Ignore",
                "matchPolicy": "Equivalent",
                "sideEffects": "None",
                "timeoutSeconds": TIMEOUT_SECONDS,
                "reinvocationPolicy": "Never",
                "namespaceSelector": {
                    "matchExpressions": [
                        {
                            "key": "kubernetes.io/metadata.name",
                            "operator": "NotIn",
                            "values": list(EXCLUDED_NAMESPACES),
                        }
                    ]
                },
                # Berth's own pods (scheduler, webhook) are never routed by themselves.
                "objectSelector": {
                    "matchExpressions": [
                        {
                            "key": "app.kubernetes.io/part-of",
                            "operator": "NotIn",
                            "values": ["berth"],
                        }
                    ]
                },
            }
        ],
    }
