"""`semcom certs`: a private CA and a certificate per service, for TLS and mutual TLS on every hop.

Each service's certificate names it (its compose service name), localhost and 127.0.0.1 (and any
--host), and serves both as its server certificate and as its client certificate downstream; the
`client` certificate is for the CLI and the load generator. Keys are ECDSA P-256, certificates valid
for --days. The keys are written owner-readable only. For demos and tests: a real deployment's
certificates come from its own CA.
"""

from __future__ import annotations

import datetime
import ipaddress
from pathlib import Path

SERVICES = ("transmitter", "channel", "receiver", "client")


def _name(common_name: str):
    from cryptography import x509
    from cryptography.x509.oid import NameOID

    return x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "semcom"),
                      x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _write(path: Path, data: bytes, private: bool = False) -> None:
    path.write_bytes(data)
    if private:
        path.chmod(0o600)


def make_certificates(out: Path, hosts: tuple[str, ...] = (), days: int = 365) -> list[Path]:
    """Writes ca.pem and, per service, <name>.pem and <name>-key.pem into `out`; returns the paths."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID

    out.mkdir(parents=True, exist_ok=True)
    now = datetime.datetime.now(datetime.timezone.utc)
    valid_from, valid_to = now - datetime.timedelta(minutes=5), now + datetime.timedelta(days=days)

    def pem_key(key) -> bytes:
        return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                 serialization.NoEncryption())

    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = (x509.CertificateBuilder().subject_name(_name("semcom CA")).issuer_name(_name("semcom CA"))
          .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
          .not_valid_before(valid_from).not_valid_after(valid_to)
          .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
          .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                       content_commitment=False, key_encipherment=False, data_encipherment=False,
                                       key_agreement=False, encipher_only=False, decipher_only=False), critical=True)
          .sign(ca_key, hashes.SHA256()))
    written = [out / "ca.pem", out / "ca-key.pem"]
    _write(written[0], ca.public_bytes(serialization.Encoding.PEM))
    _write(written[1], pem_key(ca_key), private=True)

    for service in SERVICES:
        key = ec.generate_private_key(ec.SECP256R1())
        names = [x509.DNSName(service), x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
        for host in hosts:
            try:
                names.append(x509.IPAddress(ipaddress.ip_address(host)))
            except ValueError:
                names.append(x509.DNSName(host))
        certificate = (
            x509.CertificateBuilder().subject_name(_name(service)).issuer_name(ca.subject)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(valid_from).not_valid_after(valid_to)
            .add_extension(x509.SubjectAlternativeName(names), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]),
                           critical=False)
            .sign(ca_key, hashes.SHA256()))
        cert_path, key_path = out / f"{service}.pem", out / f"{service}-key.pem"
        _write(cert_path, certificate.public_bytes(serialization.Encoding.PEM))
        _write(key_path, pem_key(key), private=True)
        written += [cert_path, key_path]
    return written
