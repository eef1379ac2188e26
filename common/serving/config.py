"""Command-line flags whose defaults come from SEMCOM_* environment variables, and settings
declared once as dataclasses whose fields are their flags.

Every flag `--some-name` of a service can also be set as SEMCOM_SOME_NAME
(flags win). `--help` shows both and the default. A settings dataclass declares each
field with `setting(default, help)`; `add_settings` makes its flags and `settings_from_args`
reads them back, so a new field is a new flag and variable without another line.
"""

from __future__ import annotations

import argparse
import os
from dataclasses import dataclass, field, fields
from typing import Any, get_args, get_type_hints

from ..data.images import DEFAULT_MAX_PIXELS
from .rpc import DEFAULT_MAX_MESSAGE_BYTES
from .tls import TlsFiles


def env_name(flag: str) -> str:
    return "SEMCOM_" + flag.lstrip("-").replace("-", "_").upper()


def add_option(parser: argparse.ArgumentParser, flag: str, *, type: Any = str, default: Any = None, help: str,
               choices: tuple | None = None) -> None:
    """Adds `flag` with its default read from SEMCOM_<FLAG> when that is set."""
    variable = env_name(flag)
    raw = os.environ.get(variable)
    if raw is not None:
        try:
            default = type(raw)
        except ValueError:
            parser.error(f"environment variable {variable}={raw!r} is not a valid {type.__name__}")
        if choices is not None and default not in choices:
            parser.error(f"environment variable {variable}={raw!r}: expected one of {', '.join(choices)}")
    parser.add_argument(flag, type=type, default=default, choices=choices,
                        help=f"{help} [env {variable}; default: %(default)s]")


def boolean(text: str) -> bool:
    """A flag's or variable's truth value: 1/0, true/false, yes/no, on/off."""
    value = text.strip().lower()
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off"):
        return False
    raise ValueError(f"not a truth value: {text!r}")


def setting(default: Any, help: str, flag: str | None = None):
    """A settings dataclass field that is also a flag (`--field-name` unless `flag` names another)."""
    return field(default=default, metadata={"help": help, "flag": flag})


def setting_flags(settings_class: type) -> dict[str, tuple[str, Any, str]]:
    """{field: (flag, the type it parses, help)} of a settings dataclass, in declaration order."""
    hints = get_type_hints(settings_class)
    flags = {}
    for declared in fields(settings_class):
        kind = next(t for t in get_args(hints[declared.name]) or (hints[declared.name],) if t is not type(None))
        flag = declared.metadata["flag"] or "--" + declared.name.replace("_", "-")
        flags[declared.name] = flag, boolean if kind is bool else kind, declared.metadata["help"]
    return flags


def add_settings(parser: argparse.ArgumentParser, settings_class: type, **defaults: Any) -> None:
    """A flag (and SEMCOM_* variable) per field of `settings_class`; `defaults` override the declared ones."""
    declared = {f.name: f.default for f in fields(settings_class)}
    for name, (flag, kind, help) in setting_flags(settings_class).items():
        add_option(parser, flag, type=kind, default=defaults.get(name, declared[name]), help=help)


def settings_from_args(settings_class: type, args: argparse.Namespace):
    """The `settings_class` instance the flags of `add_settings` were parsed into."""
    return settings_class(**{name: getattr(args, flag.lstrip("-").replace("-", "_"))
                             for name, (flag, _, _) in setting_flags(settings_class).items()})


@dataclass
class ServerSettings:
    """What every service's server needs, whatever it serves."""

    host: str = setting("127.0.0.1", "address to serve gRPC on (0.0.0.0 for all)")
    port: int = setting(0, "gRPC port (0 picks a free one)")
    metrics_host: str = setting("127.0.0.1", "address of the Prometheus /metrics endpoint")
    metrics_port: int = setting(0, "Prometheus port (0 picks a free one)")
    max_message_bytes: int = setting(DEFAULT_MAX_MESSAGE_BYTES,
                                     "largest gRPC message sent or received; set the same on every service")
    max_pixels: int = setting(DEFAULT_MAX_PIXELS, "largest image accepted, in pixels")
    grace_seconds: float = setting(10.0, "on SIGTERM, time calls in flight get to finish")
    ready_file: str = setting("", "write a JSON line with the bound ports here once serving (for launchers)")
    tls_cert: str = setting("", "PEM certificate: serve TLS only (with --tls-key), and present it downstream")
    tls_key: str = setting("", "PEM private key of --tls-cert")
    tls_ca: str = setting("", "PEM CA: require client certificates it signed (mutual TLS), and check the "
                              "downstream service's certificate against it")
    admin_token: str = setting("", "require this bearer token for state-changing calls (Configure); "
                                   "empty: none")
    node_name: str = setting("", "this service's name in its replies (trailing metadata semcom-node) and in the "
                                 "calling service's per-backend metrics; empty: HOSTNAME:PORT")
    max_connection_age_seconds: float = setting(30.0, "close each client connection this old (gracefully), so that "
                                                      "pools resolve their DNS name again and find new backends")
    health_port: int = setting(-1, "also answer grpc.health.v1, alone and in plaintext, on this port, for probes that "
                                   "cannot do TLS (Kubernetes' gRPC probes); -1: no such port, 0: a free one")

    @property
    def tls(self) -> TlsFiles:
        return TlsFiles(self.tls_cert, self.tls_key, self.tls_ca)


def add_server_options(parser: argparse.ArgumentParser, *, port: int, metrics_port: int) -> None:
    add_settings(parser, ServerSettings, port=port, metrics_port=metrics_port)


def server_settings(args: argparse.Namespace) -> ServerSettings:
    return settings_from_args(ServerSettings, args)
