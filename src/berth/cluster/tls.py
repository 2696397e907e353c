"""The certificate authority and serving certificate for TLS on the embedded cluster.

Two certificates, not one self-signed leaf: Go (kubectl) and OpenSSL (Python) both accept a leaf
signed by a CA they were given, whereas a CA-flagged leaf trips strict verifiers. In a data
directory both are kept (`tls/ca.crt`, `ca.key`, `tls.crt`, `tls.key`, keys 0600 from creation)
and reused at the next start, so kubeconfigs written earlier keep working; the serving
certificate is reissued by the same CA when the listen address changes or it nears expiry.
"""

from __future__ import annotations

import datetime
import ipaddress
import logging
import ssl
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from berth.secretfile import private_dir, write_private

log = logging.getLogger("berth.cluster.tls")
CA_DAYS = 3650
SERVING_DAYS = 365
RENEW_BEFORE = datetime.timedelta(days=30)


@dataclass(frozen=True)
class Certificates:
    """PEM files on disk: the CA (for kubeconfigs) and the serving cert and key."""

    ca_path: Path
    cert_path: Path
    key_path: Path

    @property
    def ca_pem(self) -> bytes:
        return self.ca_path.read_bytes()

    def server_context(self) -> ssl.SSLContext:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(self.cert_path, self.key_path)
        return ctx


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _new_ca(start: datetime.datetime) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = (
        x509.CertificateBuilder()
        .subject_name(_name("berth-cluster-ca"))
        .issuer_name(_name("berth-cluster-ca"))
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(start + datetime.timedelta(days=CA_DAYS))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                key_cert_sign=True,
                crl_sign=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), False)
        .sign(ca_key, hashes.SHA256())
    )
    return ca_key, ca


def _alt_names(hosts: list[str]) -> list[x509.GeneralName]:
    alt: list[x509.GeneralName] = []
    for h in dict.fromkeys([*hosts, "localhost", "127.0.0.1"]):
        try:
            alt.append(x509.IPAddress(ipaddress.ip_address(h)))
        except ValueError:
            alt.append(x509.DNSName(h))
    return alt


def _new_serving(
    ca_key: ec.EllipticCurvePrivateKey,
    ca: x509.Certificate,
    hosts: list[str],
    start: datetime.datetime,
) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name("berth-cluster"))
        .issuer_name(ca.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(min(start + datetime.timedelta(days=SERVING_DAYS), ca.not_valid_after_utc))
        .add_extension(x509.SubjectAlternativeName(_alt_names(hosts)), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), False
        )
        .sign(ca_key, hashes.SHA256())
    )
    return key, cert


def _pem_key(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _load(cert_path: Path, key_path: Path) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
    key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise ValueError(f"{key_path}: not an EC key")
    return key, cert


def _fresh(cert: x509.Certificate, now: datetime.datetime) -> bool:
    return cert.not_valid_before_utc <= now and now + RENEW_BEFORE < cert.not_valid_after_utc


def _covers(cert: x509.Certificate, ca: x509.Certificate, hosts: list[str]) -> bool:
    try:
        cert.verify_directly_issued_by(ca)
        names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except (ValueError, TypeError, x509.ExtensionNotFound, InvalidSignature):
        return False
    return all(n in names for n in _alt_names(hosts))


def generate(*, directory: Path, hosts: list[str]) -> Certificates:
    """ca.crt and tls.crt (valid for `hosts`, names or IPs) with their keys in `directory`:
    those already there when still valid, new ones otherwise."""
    private_dir(directory)
    out = Certificates(directory / "ca.crt", directory / "tls.crt", directory / "tls.key")
    ca_key_path = directory / "ca.key"
    now = datetime.datetime.now(datetime.UTC)
    start = now - datetime.timedelta(minutes=5)
    try:
        ca_key, ca = _load(out.ca_path, ca_key_path)
        if not _fresh(ca, now):
            raise ValueError("the CA expires soon")
    except (OSError, ValueError) as exc:
        if out.ca_path.exists():
            log.warning("issuing a new cluster CA in %s: %s", directory, exc)
        ca_key, ca = _new_ca(start)
        write_private(ca_key_path, _pem_key(ca_key))
        write_private(out.ca_path, ca.public_bytes(serialization.Encoding.PEM))
    try:
        _key, cert = _load(out.cert_path, out.key_path)
        if not (_fresh(cert, now) and _covers(cert, ca, hosts)):
            raise ValueError("not for this CA, these hosts, or expires soon")
    except (OSError, ValueError):
        key, cert = _new_serving(ca_key, ca, hosts, start)
        write_private(out.key_path, _pem_key(key))
        write_private(out.cert_path, cert.public_bytes(serialization.Encoding.PEM))
    return out


def self_signed_context(*, hosts: list[str]) -> ssl.SSLContext:
    """A server context with a certificate for `hosts` made now and kept in memory only (its
    key touches disk for a moment, in a private temporary directory, because ssl loads keys
    from files)."""
    import shutil
    import tempfile

    directory = Path(tempfile.mkdtemp(prefix="berth-tls-"))
    try:
        return generate(directory=directory, hosts=hosts).server_context()
    finally:
        shutil.rmtree(directory, ignore_errors=True)
