"""Command-line flags whose defaults come from SEMCOM_* environment variables.

Every flag `--some-name` of a service can also be set as SEMCOM_SOME_NAME
(flags win). `--help` shows both and the default.
"""

from __future__ import annotations

import argparse
import os
from dataclasses import dataclass
from typing import Any

from .images import DEFAULT_MAX_PIXELS
from .rpc import DEFAULT_MAX_MESSAGE_BYTES


def env_name(flag: str) -> str:
    return "SEMCOM_" + flag.lstrip("-").replace("-", "_").upper()


def add_option(parser: argparse.ArgumentParser, flag: str, *, type: Any = str, default: Any = None, help: str) -> None:
    """Adds `flag` with its default read from SEMCOM_<FLAG> when that is set."""
    variable = env_name(flag)
    raw = os.environ.get(variable)
    if raw is not None:
        try:
            default = type(raw)
        except ValueError:
            parser.error(f"environment variable {variable}={raw!r} is not a valid {type.__name__}")
    parser.add_argument(flag, type=type, default=default, help=f"{help} [env {variable}; default: %(default)s]")


@dataclass
class ServerSettings:
    """What every service's server needs, whatever it serves."""

    host: str = "127.0.0.1"
    port: int = 0
    metrics_host: str = "127.0.0.1"
    metrics_port: int = 0
    max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES
    max_pixels: int = DEFAULT_MAX_PIXELS
    grace_seconds: float = 10.0
    ready_file: str = ""


def add_server_options(parser: argparse.ArgumentParser, *, port: int, metrics_port: int) -> None:
    add_option(parser, "--host", default="127.0.0.1", help="address to serve gRPC on (0.0.0.0 for all)")
    add_option(parser, "--port", type=int, default=port, help="gRPC port (0 picks a free one)")
    add_option(parser, "--metrics-host", default="127.0.0.1", help="address of the Prometheus /metrics endpoint")
    add_option(parser, "--metrics-port", type=int, default=metrics_port, help="Prometheus port (0 picks a free one)")
    add_option(
        parser, "--max-message-bytes", type=int, default=DEFAULT_MAX_MESSAGE_BYTES,
        help="largest gRPC message sent or received; set the same on every service",
    )
    add_option(parser, "--max-pixels", type=int, default=DEFAULT_MAX_PIXELS, help="largest image accepted, in pixels")
    add_option(parser, "--grace-seconds", type=float, default=10.0, help="on SIGTERM, time calls in flight get to finish")
    add_option(
        parser, "--ready-file", default="",
        help="write a JSON line with the bound ports here once serving (for launchers)",
    )


def server_settings(args: argparse.Namespace) -> ServerSettings:
    return ServerSettings(
        host=args.host,
        port=args.port,
        metrics_host=args.metrics_host,
        metrics_port=args.metrics_port,
        max_message_bytes=args.max_message_bytes,
        max_pixels=args.max_pixels,
        grace_seconds=args.grace_seconds,
        ready_file=args.ready_file,
    )
