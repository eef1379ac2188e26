"""The channel emulator service: `semcom serve channel`."""

from __future__ import annotations

import argparse

from prometheus_client import CollectorRegistry

from semcom.common.serving.config import (
    ServerSettings, add_option, add_server_options, add_settings, server_settings, setting_flags, settings_from_args,
)
from semcom.common.serving.rpc import aio_channel
from semcom.common.serving.server import ServiceServer
from semcom.common.wire.pb import channel_emulator_pb2_grpc, receiver_pb2_grpc

from .emulator import ChannelConfig, ChannelEmulator
from .metrics import ChannelMetrics
from .servicer import ChannelEmulatorServicer

DEFAULT_PORT, DEFAULT_METRICS_PORT = 50052, 9102

CHANNEL_FLAGS = setting_flags(ChannelConfig)  # ChannelConfig field: (flag, type, help); `channel set` uses them


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_server_options(parser, port=DEFAULT_PORT, metrics_port=DEFAULT_METRICS_PORT)
    add_option(parser, "--receiver", default="127.0.0.1:50053", help="receiver address HOST:PORT")
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
    server = ServiceServer("channel_emulator", settings, registry)
    receiver_stub = receiver_pb2_grpc.ReceiverStub(aio_channel(receiver, settings.max_message_bytes, tls=settings.tls))
    servicer = ChannelEmulatorServicer(settings, emulator, ChannelMetrics(registry), receiver_stub, receiver)
    server.add_service("semcom.v1.ChannelEmulator", channel_emulator_pb2_grpc.add_ChannelEmulatorServicer_to_server,
                       servicer)
    await server.start()
    return server
