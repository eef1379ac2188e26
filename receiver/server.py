"""The receiver service: `semcom serve receiver`."""

from __future__ import annotations

import argparse
import asyncio
import logging

from prometheus_client import CollectorRegistry

from semcom.common import codecs
from semcom.common.config import ServerSettings, add_server_options, server_settings
from semcom.common.pb import receiver_pb2_grpc
from semcom.common.server import ServiceServer

from .metrics import ReceiverMetrics
from .servicer import ReceiverServicer

DEFAULT_PORT, DEFAULT_METRICS_PORT = 50053, 9103
log = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_server_options(parser, port=DEFAULT_PORT, metrics_port=DEFAULT_METRICS_PORT)


def settings_from(args: argparse.Namespace) -> tuple[ServerSettings, dict]:
    return server_settings(args), {}


async def start(settings: ServerSettings) -> ServiceServer:
    registry = CollectorRegistry()
    metrics = ReceiverMetrics(registry)
    server = ServiceServer("receiver", settings, registry)
    server.add_service("semcom.v1.Receiver", receiver_pb2_grpc.add_ReceiverServicer_to_server,
                       ReceiverServicer(settings, metrics))

    async def load_models() -> None:
        loaded, missing = await asyncio.to_thread(codecs.load_all)
        for reason in missing.values():  # serve the others; frames for these get UNAVAILABLE
            log.warning("%s", reason)
        for codec_id, codec in loaded.items():
            metrics.model_info.labels(codec_id, str(codec.version), "fp32").set(1)

    await server.start(load=load_models)
    return server
