"""The receiver service: `semcom serve receiver`."""

from __future__ import annotations

import argparse
import logging
from dataclasses import replace

from prometheus_client import CollectorRegistry

from semcom.common import codecs
from semcom.common.models import cpu
from semcom.common.models import device as model_device
from semcom.common.models import precision as model_precision
from semcom.common.models import runtime as decoder_runtime
from semcom.common.models.runtime import DecoderRuntime
from semcom.common.models.sampling import SamplerSettings
from semcom.common.serving.config import (
    ServerSettings, add_option, add_server_options, add_settings, server_settings, settings_from_args,
)
from semcom.common.serving.server import ServiceServer
from semcom.common.wire.pb import receiver_pb2_grpc

from .metrics import ReceiverMetrics
from .servicer import ReceiverServicer

DEFAULT_PORT, DEFAULT_METRICS_PORT = 50053, 9103
log = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_server_options(parser, port=DEFAULT_PORT, metrics_port=DEFAULT_METRICS_PORT)
    add_option(parser, "--precision", default="auto",
               help=f"learned decoders: {model_precision.CHOICES_HELP}. This CPU: {cpu.detect().describe()}")
    add_option(parser, "--device", default="cpu", choices=model_device.CHOICES,
               help="where the learned decoders run: cpu; cuda (torch on CUDA for fp32/bf16, ONNX Runtime's CUDA "
                    "provider for int8: a CUDA torch build, onnxruntime-gpu); auto: cuda where the precision runs "
                    "there. The GPU path is not measured (README)")
    add_option(parser, "--max-batch-size", type=int, default=8,
               help="dynamic batching: decode up to this many concurrent frames together (1: no batching)")
    add_option(parser, "--max-queue-delay-ms", type=float, default=0.0,
               help="dynamic batching: wait this long after a frame arrives for more to batch with it "
                    "(0: batch only frames already waiting)")
    add_option(parser, "--decoder", default="diffusion", choices=list(decoder_runtime.DIFFUSION_DECODERS),
               help="the semantic and gesco codecs' diffusion decoder: diffusion (the shipped UNet, --ddim-steps "
                    "steps) or student (its distilled one-step student, `semcom train diffusion_student`: one "
                    "network call per frame, at every precision; its int8 graphs by `semcom quantize`)")
    add_settings(parser, SamplerSettings)


def settings_from(args: argparse.Namespace) -> tuple[ServerSettings, dict]:
    return server_settings(args), {"sampler": settings_from_args(SamplerSettings, args), "precision": args.precision,
                                   "device": args.device, "decoder": args.decoder,
                                   "max_batch_size": args.max_batch_size,
                                   "max_queue_delay": args.max_queue_delay_ms / 1000}


def _sampler_changed(sampler: SamplerSettings) -> bool:
    """Whether a sampler flag other than the condition cache is not its default (a student ignores them)."""
    return replace(sampler, condition_cache=SamplerSettings.condition_cache) != SamplerSettings()


async def start(settings: ServerSettings, sampler: SamplerSettings = SamplerSettings(), precision: str = "fp32",
                max_batch_size: int = 8, max_queue_delay: float = 0.0, device: str = "cpu",
                decoder: str = "diffusion") -> ServiceServer:
    """precision: one of model_precision.CHOICES; "auto" and bf16 are resolved against this CPU. The default
    stays fp32 for callers in Python (the tests' fixture); the command line's is auto."""
    if not 1 <= sampler.steps <= 1000:
        raise ValueError(f"--ddim-steps: {sampler.steps} is outside 1..1000")
    capabilities = cpu.detect()
    requested, precision = precision, model_precision.resolve(precision, capabilities)
    log.info("precision %s (asked: %s) on %s", precision, requested, capabilities.describe())
    requested_device, device = device, model_device.resolve(device, precision)
    log.info("device %s (asked: %s)", device, requested_device)
    runtime = DecoderRuntime(precision, sampler, device=device, diffusion_decoder=decoder)  # checks the pair
    if decoder != "diffusion":
        if _sampler_changed(sampler):
            log.warning("--decoder %s samples as it was distilled (%s): the sampler flags (--ddim-steps, --sampler, "
                        "--guidance-scale, --start-from-channel ...) apply to latent_diffusion alone", decoder,
                        decoder_runtime.STUDENT_SAMPLER)
        runtime.noise_predictor()  # loaded now: fail at start when it (or its int8) is missing or its teacher changed
    if precision == "int8":
        # Loaded now: fail at start, with the reason, when an ONNX artifact is missing or stale.
        unet = decoder_runtime.load_int8(capabilities=capabilities, device=device)
        log.info("int8 diffusion decoder %s: %s", unet.path.name, unet.card["for"])
        calibration = unet.card["calibration"]
        calibrated = calibration["ddim_steps"], calibration.get("sampler", "ddim")
        if calibrated != (sampler.steps, sampler.method):
            log.warning("the int8 decoder was calibrated on %d-step %s trajectories and this receiver runs %d %s "
                        "steps: `semcom quantize --ddim-steps %d --sampler %s` calibrates for it", *calibrated,
                        sampler.steps, sampler.method, sampler.steps, sampler.method)
    registry = CollectorRegistry()
    metrics = ReceiverMetrics(registry)
    server = ServiceServer("receiver", settings, registry)
    servicer = ReceiverServicer(settings, metrics, runtime, max_batch_size, max_queue_delay)
    server.add_service("semcom.v1.Receiver", receiver_pb2_grpc.add_ReceiverServicer_to_server, servicer,
                       close=servicer.aclose)

    async def load_models() -> None:
        for codec_id, codec in (await servicer.on_decode_thread(codecs.load_all, "decode", runtime)).items():
            generative = "diffusion" in codec.capabilities.decoder_models
            metrics.model_info.labels(codec_id, str(codec.version), precision, capabilities.isa,
                                      str(capabilities.native_bf16).lower(),
                                      runtime.diffusion_model if generative else "").set(1)

    await server.start(load=load_models)
    return server
