"""The Helm chart under the real helm: `helm lint --strict` passes with every option set, its
values schema refuses what the templates cannot honour (naming the value), and the
self-signed certificate it can generate is one the ServiceMonitor's TLS check accepts."""

from __future__ import annotations

import base64
import subprocess

import pytest
from cryptography import x509

from tests.deploy.render import CHART, HELM_OPTIONS, gotool, helm, run, set_flags

pytestmark = pytest.mark.timeout(1500)  # the first use of helm may build it (tools/build)


@pytest.mark.parametrize("option_set", list(HELM_OPTIONS))
def test_lint_strict(option_set: str) -> None:
    out = run(gotool("helm"), "lint", "--strict", CHART, *set_flags(HELM_OPTIONS[option_set]))
    assert "1 chart(s) linted, 0 chart(s) failed" in out


@pytest.mark.parametrize(
    ("flag", "message"),
    [
        ("mode=bogus", "at '/mode': value must be one of 'scheduler', 'extender'"),
        ("replicass=3", "additional properties 'replicass' not allowed"),
        ("replicas=0", "at '/replicas': minimum: got 0, want 1"),
        ("prometheus.url=prometheus:9090", "at '/prometheus/url': 'prometheus:9090' does not"),
        ("extender.urlPrefix=berth", "at '/extender/urlPrefix': 'berth' does not match"),
        ("serviceMonitor.interval=soon", "at '/serviceMonitor/interval': 'soon' does not"),
    ],
)
def test_values_outside_the_schema_are_refused(flag: str, message: str) -> None:
    done = subprocess.run(
        [gotool("helm"), "template", "berth", CHART, "--set", flag],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 1
    assert message in done.stderr, done.stderr


def test_a_generated_certificate_names_the_service() -> None:
    docs = helm("tls-create")
    (secret,) = [d for d in docs if d["kind"] == "Secret"]
    (monitor,) = [d for d in docs if d["kind"] == "ServiceMonitor"]
    assert secret["type"] == "kubernetes.io/tls"
    cert = x509.load_pem_x509_certificate(base64.b64decode(secret["data"]["tls.crt"]))
    names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    server = monitor["spec"]["endpoints"][0]["tlsConfig"]["serverName"]
    assert server in names.get_values_for_type(x509.DNSName)
    assert secret["data"]["ca.crt"] == secret["data"]["tls.crt"]  # self-signed: its own CA
    assert monitor["spec"]["endpoints"][0]["tlsConfig"]["ca"]["secret"]["key"] == "ca.crt"
