"""The channel emulator service: `semcom serve channel`."""

from __future__ import annotations

import argparse

from prometheus_client import CollectorRegistry

from semcom.common.serving.config import (
    ServerSettings, add_option, add_server_options, add_settings, server_settings, setting_flags, settings_from_args,
)
from semcom.common.serving.metrics import backend_calls
from semcom.common.serving.rpc import Downstream
from semcom.common.serving.server import ServiceServer
from semcom.common.wire.pb import channel_emulator_pb2_grpc

from .emulator import ChannelConfig, ChannelEmulator
from .metrics import ChannelMetrics
from .servicer import ChannelEmulatorServicer

DEFAULT_PORT, DEFAULT_METRICS_PORT = 50052, 9102

CHANNEL_FLAGS = setting_flags(ChannelConfig)  # ChannelConfig field: (flag, type, help); `channel set` uses them


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_server_options(parser, port=DEFAULT_PORT, metrics_port=DEFAULT_METRICS_PORT)
    add_option(parser, "--receiver", default="127.0.0.1:50053",
               help="the receiver pool: HOST:PORT (a DNS name that resolves to several receivers, e.g. a Kubernetes "
                    "headless Service, is a pool) or IP:PORT,IP:PORT,...; frames go round-robin to the receivers "
                    "that report SERVING, and a Decode that fails UNAVAILABLE is retried once on another. Over TLS "
                    "a list of IPs is checked against the name 'receiver'")
    add_settings(parser, ChannelConfig)
    add_option(parser, "--snr-min-db", type=float, default=-30.0, help="lowest SNR that may be configured")
    add_option(parser, "--snr-max-db", type=float, default=50.0, help="highest SNR that may be configured")


def settings_from(args: argparse.Namespace) -> tuple[ServerSettings, dict]:
    channel = {
        "receiver": args.receiver,
        "config": settings_from_args(ChannelConfig, args),
        "snr_range_db": (args.snr_min_db, args.snr_max_db),
    }
    return server_settings(args), channel


async def start(settings: ServerSettings, receiver: str, config: ChannelConfig = ChannelConfig(),
                snr_range_db: tuple[float, float] = (-30.0, 50.0)) -> ServiceServer:
    registry = CollectorRegistry()
    emulator = ChannelEmulator(config, snr_range_db)
    receivers = Downstream("receiver", receiver, "semcom.v1.Receiver", "--receiver",
                           backend_calls(registry, "channel", "receiver"), max_message_bytes=settings.max_message_bytes,
                           tls=settings.tls, tls_name="receiver", idempotent_methods=("Decode",))
    server = ServiceServer("channel_emulator", settings, registry)
    servicer = ChannelEmulatorServicer(settings, emulator, ChannelMetrics(registry), receivers)
    server.add_service("semcom.v1.ChannelEmulator", channel_emulator_pb2_grpc.add_ChannelEmulatorServicer_to_server,
                       servicer, close=receivers.close)
    await server.start()
    return server
