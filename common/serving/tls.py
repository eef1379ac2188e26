"""TLS and mutual TLS on every hop, and the bearer token that guards state-changing calls.

A service given --tls-cert and --tls-key serves TLS only; given --tls-ca as well, it asks every
client for a certificate signed by that CA (mutual TLS). The same three files make its own calls
downstream secure: it checks the next service's certificate against the CA and presents its own.
Without them everything is plaintext, the loopback default. `semcom certs` makes a CA and a
certificate per service (tools/certs.py).

With --admin-token set, calls that change a service's state (the channel emulator's Configure)
need the metadata `authorization: Bearer <token>`: without it UNAUTHENTICATED, with another
token PERMISSION_DENIED, compared in constant time.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from pathlib import Path

import grpc

from .errors import ServiceError


@dataclass(frozen=True)
class TlsFiles:
    """PEM files: this side's certificate and key, and the CA that signs the peers' ("": none)."""

    cert: str = ""
    key: str = ""
    ca: str = ""

    @property
    def enabled(self) -> bool:
        return bool(self.cert or self.key or self.ca)

    def _read(self) -> tuple[bytes | None, bytes | None, bytes | None]:
        if bool(self.cert) != bool(self.key):
            raise ValueError("--tls-cert and --tls-key go together: give both or neither")
        contents = []
        for flag, path in (("--tls-cert", self.cert), ("--tls-key", self.key), ("--tls-ca", self.ca)):
            if path and not Path(path).is_file():
                raise FileNotFoundError(f"{flag} {path}: no such file (`semcom certs` makes them)")
            contents.append(Path(path).read_bytes() if path else None)
        return tuple(contents)

    def server_credentials(self) -> grpc.ServerCredentials:
        """TLS with this side's certificate; mutual (client certificates required) when a CA is given."""
        cert, key, ca = self._read()
        if cert is None:
            raise ValueError("serving TLS needs --tls-cert and --tls-key")
        return grpc.ssl_server_credentials([(key, cert)], root_certificates=ca, require_client_auth=ca is not None)

    def channel_credentials(self) -> grpc.ChannelCredentials:
        """The server checked against the CA (the system's roots without one); this side's certificate
        presented when it has one (for mutual TLS)."""
        cert, key, ca = self._read()
        return grpc.ssl_channel_credentials(root_certificates=ca, private_key=key, certificate_chain=cert)


ADMIN_METHODS = frozenset({"/semcom.v1.ChannelEmulator/Configure"})  # the calls that change a service's state


def check_admin(token: str, method: str, metadata) -> None:
    """Raises UNAUTHENTICATED or PERMISSION_DENIED for an admin method called without `token`
    (nothing is checked when no token is configured)."""
    if not token or method not in ADMIN_METHODS:
        return
    given = dict(metadata or ()).get("authorization", "")
    if not given.startswith("Bearer "):
        raise ServiceError(f"{method.rsplit('/', 1)[-1]} needs an admin token: send the metadata "
                           "'authorization: Bearer <token>' (`semcom --token ...`)", "UNAUTHENTICATED")
    if not hmac.compare_digest(given[len("Bearer "):].encode(), token.encode()):
        raise ServiceError(f"{method.rsplit('/', 1)[-1]}: the admin token is not the configured one",
                           "PERMISSION_DENIED")


def bearer(token: str) -> tuple[tuple[str, str], ...]:
    """Call metadata that carries `token` ("" -> none)."""
    return (("authorization", f"Bearer {token}"),) if token else ()
