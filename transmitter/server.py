"""The transmitter service: `semcom serve transmitter`."""

from __future__ import annotations

import argparse
import asyncio

from prometheus_client import CollectorRegistry

from semcom.common import codecs
from semcom.common.codecs.base import DEFAULT_DESIGN_SNR_DB
from semcom.common.codecs.learned import MAP_ENCODERS, load_encoder_student
from semcom.common.models.adapters import ADAPTED_MODELS
from semcom.common.models.adapters import load as load_adapters
from semcom.common.serving.config import ServerSettings, add_option, add_server_options, boolean, server_settings
from semcom.common.serving.metrics import backend_calls
from semcom.common.serving.rpc import Downstream
from semcom.common.serving.server import ServiceServer
from semcom.common.wire.pb import transmitter_pb2_grpc

from . import pipeline
from .metrics import TransmitterMetrics
from .servicer import TransmitterServicer

DEFAULT_PORT, DEFAULT_METRICS_PORT = 50051, 9101
DEFAULT_CODEC = "linear_analog"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_server_options(parser, port=DEFAULT_PORT, metrics_port=DEFAULT_METRICS_PORT)
    add_option(parser, "--channel", default="127.0.0.1:50052",
               help="the channel emulator: HOST:PORT, or a pool as the channel emulator's --receiver (round-robin "
                    "over those SERVING; Forward is not retried: each emulator is its own link)")
    add_option(parser, "--default-codec", default=DEFAULT_CODEC,
               help=f"codec for requests that name none ({', '.join(codecs.available())})")
    add_option(parser, "--pilot-spacing", type=int, default=0,
               help="insert a pilot before every N data symbols, for estimated CSI (0: no pilots)")
    add_option(parser, "--scoring", default=pipeline.DEFAULT_SCORING, choices=pipeline.SCORINGS,
               help="what a Transmit that asks for no scoring gets scored: none; pixels: PSNR and SSIM; full: those "
                    "and the semantic fidelity (mIoU, two segmenter passes); see the README's Serving throughput")
    add_option(parser, "--design-snr-db", type=float, default=DEFAULT_DESIGN_SNR_DB,
               help="the SNR frames are designed for: the ideal-code digital codecs (jpeg, webp, avif) size their "
                    "file for it, the LDPC ones (jpeg_ldpc, webp_ldpc, avif_ldpc) pick their MCS for it, the encoder "
                    "student (--map-encoder student) adapts to it; a request's design_snr_db overrides it")
    add_option(parser, "--design-snr", default="fixed", choices=pipeline.DESIGN_SNRS,
               help="fixed: --design-snr-db; feedback: the channel's feedback, the mean SNR the last 8 frames saw "
                    "(each Forward's reply says it; --design-snr-db until the first comes back)")
    add_option(parser, "--map-encoder", default="segmenter", choices=MAP_ENCODERS,
               help="what makes the semantic map's features (semantic_map, semantic): the segmenter and the map "
                    "codec's encoder, or the lightweight channel-adaptive encoder student (`semcom train "
                    "encoder_student`), told the design SNR; receivers decode both alike")
    add_option(parser, "--adapters", type=boolean, default=False,
               help="encode the codecs that have condition-aware adapters (deep_jscc, semantic_map, semantic; `semcom "
                    "train adapters`) with them, gated on the design SNR and the frame's k/n; receivers decode such "
                    "frames with the same adapters, and both report the gate (on/off)")
    add_option(parser, "--out-of-domain", default="fallback", choices=pipeline.OUT_OF_DOMAIN,
               help="an image outside a semantic codec's domain (segmenter confidence below "
                    f"{pipeline.DOMAIN_THRESHOLD}, e.g. a photo): fallback: send it with --fallback-codec (the "
                    "response names the codec used); refuse: FAILED_PRECONDITION; off: send it as asked")
    add_option(parser, "--fallback-codec", default="deep_jscc", help="the image codec of --out-of-domain fallback")


def settings_from(args: argparse.Namespace) -> tuple[ServerSettings, dict]:
    return server_settings(args), {"channel": args.channel, "default_codec": args.default_codec,
                                   "pilot_spacing": args.pilot_spacing, "design_snr_db": args.design_snr_db,
                                   "scoring": args.scoring, "map_encoder": args.map_encoder,
                                   "design_snr": args.design_snr, "adapters": args.adapters,
                                   "domain": pipeline.DomainPolicy(args.out_of_domain, args.fallback_codec)}


async def start(settings: ServerSettings, channel: str, default_codec: str = DEFAULT_CODEC,
                pilot_spacing: int = 0, design_snr_db: float = DEFAULT_DESIGN_SNR_DB,
                scoring: str = pipeline.DEFAULT_SCORING, domain: pipeline.DomainPolicy = pipeline.DomainPolicy(),
                map_encoder: str = "segmenter", design_snr: str = "fixed", adapters: bool = False) -> ServiceServer:
    codecs.get(default_codec, field="--default-codec")  # fail at start, not on the first request
    if map_encoder not in MAP_ENCODERS:
        raise ValueError(f"--map-encoder: {map_encoder!r}, expected one of {', '.join(MAP_ENCODERS)}")
    if design_snr not in pipeline.DESIGN_SNRS:
        raise ValueError(f"--design-snr: {design_snr!r}, expected one of {', '.join(pipeline.DESIGN_SNRS)}")
    if map_encoder == "student":
        load_encoder_student()  # missing or stale weights: say so now
    if adapters:
        if map_encoder == "student":
            raise ValueError("--adapters adapt the map codec's own encoder, which --map-encoder student replaces")
        for model in ADAPTED_MODELS:
            load_adapters(model)  # missing, or made for other base weights: say so now
    if domain.action == "fallback":
        codecs.get(domain.fallback_codec, field="--fallback-codec")
    if pilot_spacing < 0:
        raise ValueError(f"--pilot-spacing: {pilot_spacing} must be >= 0")
    if scoring not in pipeline.SCORINGS:
        raise ValueError(f"--scoring: {scoring!r}, expected one of {', '.join(pipeline.SCORINGS)}")
    registry = CollectorRegistry()
    channels = Downstream("channel emulator", channel, "semcom.v1.ChannelEmulator", "--channel",
                          backend_calls(registry, "transmitter", "channel emulator"),
                          max_message_bytes=settings.max_message_bytes, tls=settings.tls, tls_name="channel")
    server = ServiceServer("transmitter", settings, registry)
    servicer = TransmitterServicer(settings, TransmitterMetrics(registry), default_codec, channels,
                                   pilot_spacing, design_snr_db, scoring, domain, map_encoder, design_snr, adapters)
    server.add_service("semcom.v1.Transmitter", transmitter_pb2_grpc.add_TransmitterServicer_to_server, servicer,
                       close=channels.close)

    async def load_models() -> None:
        await asyncio.to_thread(codecs.load_all, "encode")

    await server.start(load=load_models)
    return server
