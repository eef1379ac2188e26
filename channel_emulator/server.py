"""The channel emulator service: `semcom serve channel`."""

from __future__ import annotations

import argparse

from prometheus_client import CollectorRegistry

from semcom.common.config import ServerSettings, add_option, add_server_options, server_settings
from semcom.common.pb import channel_emulator_pb2_grpc, receiver_pb2_grpc
from semcom.common.rpc import aio_channel
from semcom.common.server import ServiceServer

from .emulator import ChannelConfig, ChannelEmulator
from .metrics import ChannelMetrics
from .servicer import ChannelEmulatorServicer

DEFAULT_PORT, DEFAULT_METRICS_PORT = 50052, 9102

CHANNEL_FLAGS = {  # ChannelConfig field: (type, help)
    "model": (str, "channel model: awgn, rayleigh or rician"),
    "snr_db": (float, "SNR, Es/N0 in dB"),
    "seed": (int, "seed of fading, noise and link randomness (unset: fresh entropy)"),
    "k_factor": (float, "Rician K factor, LINEAR (not dB): line-of-sight over scattered power"),
    "coherence_symbols": (int, "symbols per fading block: 0 one per frame, 1 fast fading"),
    "csi": (str, "receiver channel knowledge: perfect, none or estimated (from pilots)"),
    "equalizer": (str, "receiver equalizer: zf or mmse"),
    "max_channel_uses": (int, "bandwidth budget, complex channel uses per frame (0: unlimited)"),
    "over_budget": (str, "a frame over the budget is: reject (RESOURCE_EXHAUSTED) or truncate"),
    "symbol_rate": (float, "link rate in complex channel uses per second (0: infinitely fast)"),
    "delay_seconds": (float, "link propagation delay"),
    "jitter_seconds": (float, "extra delay drawn uniformly from [0, jitter]"),
    "loss_probability": (float, "probability a frame is lost on the link (the client gets DATA_LOSS)"),
    "queue_frames": (int, "frames that may wait for the link; one more gets RESOURCE_EXHAUSTED"),
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_server_options(parser, port=DEFAULT_PORT, metrics_port=DEFAULT_METRICS_PORT)
    add_option(parser, "--receiver", default="127.0.0.1:50053", help="receiver address HOST:PORT")
    defaults = ChannelConfig()
    for name, (kind, help) in CHANNEL_FLAGS.items():
        add_option(parser, "--" + name.replace("_", "-"), type=kind, default=getattr(defaults, name), help=help)
    add_option(parser, "--snr-min-db", type=float, default=-30.0, help="lowest SNR that may be configured")
    add_option(parser, "--snr-max-db", type=float, default=50.0, help="highest SNR that may be configured")


def settings_from(args: argparse.Namespace) -> tuple[ServerSettings, dict]:
    channel = {
        "receiver": args.receiver,
        "config": ChannelConfig(**{name: getattr(args, name) for name in CHANNEL_FLAGS}),
        "snr_range_db": (args.snr_min_db, args.snr_max_db),
    }
    return server_settings(args), channel


async def start(settings: ServerSettings, receiver: str, config: ChannelConfig = ChannelConfig(),
                snr_range_db: tuple[float, float] = (-30.0, 50.0)) -> ServiceServer:
    registry = CollectorRegistry()
    emulator = ChannelEmulator(config, snr_range_db)
    server = ServiceServer("channel_emulator", settings, registry)
    receiver_stub = receiver_pb2_grpc.ReceiverStub(aio_channel(receiver, settings.max_message_bytes))
    servicer = ChannelEmulatorServicer(settings, emulator, ChannelMetrics(registry), receiver_stub, receiver)
    server.add_service("semcom.v1.ChannelEmulator", channel_emulator_pb2_grpc.add_ChannelEmulatorServicer_to_server,
                       servicer)
    await server.start()
    return server
