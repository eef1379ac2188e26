from __future__ import annotations

import asyncio
import math
import time
from dataclasses import asdict

from semcom.common import codecs
from semcom.common.codecs.base import DEFAULT_DESIGN_SNR_DB
from semcom.common.serving.config import ServerSettings
from semcom.common.serving.errors import FailedPrecondition, InvalidInput, ServiceError
from semcom.common.serving.rpc import Downstream
from semcom.common.wire import frames, tensors
from semcom.common.wire.pb import channel_emulator_pb2, channel_emulator_pb2_grpc, frame_pb2, tensor_pb2
from semcom.common.wire.pb import transmitter_pb2 as pb
from semcom.common.wire.pb import transmitter_pb2_grpc

from . import pipeline
from .metrics import TransmitterMetrics

SCORINGS = {value: name for name, value in pipeline.SCORING_VALUES.items()}  # TransmitRequest.scoring's names


class TransmitterServicer(transmitter_pb2_grpc.TransmitterServicer):
    def __init__(self, settings: ServerSettings, metrics: TransmitterMetrics, default_codec: str,
                 channels: Downstream,
                 pilot_spacing: int = 0, design_snr_db: float = DEFAULT_DESIGN_SNR_DB,
                 scoring: str = pipeline.DEFAULT_SCORING, domain: pipeline.DomainPolicy = pipeline.DomainPolicy(),
                 map_encoder: str = "segmenter", design_snr: str = "fixed", adapters: bool = False):
        self._settings = settings
        self._adapters = adapters
        self._map_encoder = map_encoder
        self._feedback = pipeline.ChannelFeedback() if design_snr == "feedback" else None
        self._scoring = scoring
        self._domain = domain
        self._pilot_spacing = pilot_spacing
        self._design_snr_db = design_snr_db
        self._metrics = metrics
        self._default_codec = default_codec
        self._channels = channels
        self._channel_stub = channel_emulator_pb2_grpc.ChannelEmulatorStub(channels.grpc_channel)

    async def Transmit(self, request: pb.TransmitRequest, context) -> pb.TransmitResponse:
        return await self._transmit(request, context)

    async def TransmitStream(self, request_iterator, context):
        index = 0
        async for request in request_iterator:
            try:
                yield await self._transmit(request, context)
            except ServiceError as error:
                # Earlier responses have reached the client; say which item failed.
                name = request.image_id or "no image_id"
                raise ServiceError(f"stream item {index} ({name}): {error}", status=error.status) from None
            index += 1

    async def _transmit(self, request: pb.TransmitRequest, context) -> pb.TransmitResponse:
        start = time.perf_counter()
        if not math.isfinite(request.bandwidth_ratio) or request.bandwidth_ratio < 0:
            raise InvalidInput(f"bandwidth_ratio: {request.bandwidth_ratio} must be a finite number >= 0 (0: default)")
        codec_id = request.codec or self._default_codec
        scoring = self._scoring_of(request)
        design_snr_db = self._design_snr_of(request)
        encoded, frame_message, encode_seconds = await asyncio.to_thread(self._encode, request, codec_id,
                                                                         design_snr_db)

        forwarded = await self._channels.call(self._channel_stub.Forward(
            channel_emulator_pb2.ForwardRequest(frame=frame_message), timeout=context.time_remaining()))
        if self._feedback is not None:
            self._feedback.observe(forwarded.channel.measured_snr_db)
        assessment, quality_seconds = await asyncio.to_thread(self._assess, encoded, forwarded.decoded, scoring,
                                                              not request.omit_images)
        link = forwarded.link
        timings = pipeline.StageTimings(
            encode_seconds=encode_seconds, channel_seconds=forwarded.channel_seconds,
            decode_seconds=forwarded.decoded.decode_seconds, quality_seconds=quality_seconds,
            link_seconds=link.queue_seconds + link.transmit_seconds + link.propagation_seconds,
            end_to_end_seconds=time.perf_counter() - start)
        frame = encoded.frame
        quality = pb.Quality(psnr_db=assessment.psnr_db, ssim=assessment.ssim, miou=assessment.miou)
        self._record(frame.codec, frame, encode_seconds, timings.end_to_end_seconds, quality)  # the codec used
        return pb.TransmitResponse(
            image_id=request.image_id,
            frame_id=frame.frame_id,
            codec=frame.codec,
            requested_codec=codec_id,
            domain_score=encoded.domain_score,
            design_snr_db=design_snr_db,
            channel_uses=forwarded.channel.channel_uses,
            bandwidth_ratio=forwarded.channel.bandwidth_ratio,
            channel=forwarded.channel,
            quality=quality,
            timings=pb.StageTimings(**asdict(timings), overhead_seconds=timings.overhead_seconds),
            reconstruction_png=assessment.reconstruction_png,
            received_map_png=assessment.received_map_png,
            image_size=frame_pb2.ImageSize(height=frame.height, width=frame.width, channels=3),
            transmitter_adapters=frames.adapter_choices_to_proto(codecs.get(frame.codec).adapter_choices(frame,
                                                                                                      "transmit")),
            receiver_adapters=forwarded.decoded.adapters,
        )

    def _design_snr_of(self, request: pb.TransmitRequest) -> float:
        """The SNR the frame is designed for: the request's, else the channel's feedback, else --design-snr-db."""
        if request.HasField("design_snr_db"):
            return request.design_snr_db
        return self._design_snr_db if self._feedback is None else self._feedback.design_snr_db(self._design_snr_db)

    def _encode(self, request: pb.TransmitRequest, codec_id: str, design_snr_db: float):
        start = time.perf_counter()
        try:
            encoded = pipeline.encode(request.image, codec_id, request.bandwidth_ratio,
                                      max_pixels=self._settings.max_pixels, domain=self._domain,
                                      pilot_spacing=request.pilot_spacing or self._pilot_spacing,
                                      design_snr_db=design_snr_db, map_encoder=self._map_encoder,
                                      adapters=self._adapters)
        except FailedPrecondition:
            self._metrics.out_of_domain.labels(codec_id, "refuse").inc()
            raise
        if encoded.frame.codec != codec_id:
            self._metrics.out_of_domain.labels(codec_id, "fallback").inc()
        message = frames.to_proto(encoded.frame)
        return encoded, message, time.perf_counter() - start

    def _scoring_of(self, request: pb.TransmitRequest) -> str:
        """The request's scoring level (one of pipeline.SCORINGS), or this transmitter's default."""
        if request.scoring == pb.SCORING_UNSPECIFIED:
            return self._scoring
        if request.scoring not in SCORINGS:  # a number from a newer or a broken client
            raise InvalidInput(f"scoring: {request.scoring} is not one of "
                               f"{', '.join(pb.Scoring.Name(value) for value in pb.Scoring.values())}")
        return SCORINGS[request.scoring]

    def _assess(self, encoded: pipeline.Encoded, decoded, scoring: str,
                images: bool) -> tuple[pipeline.Assessment, float]:
        """The receiver's reply as arrays, assessed (one thread hop); and the seconds it took."""
        start = time.perf_counter()
        reconstruction = tensors.from_proto(decoded.image, "decoded.image", dtype=tensor_pb2.DATA_TYPE_UINT8, ndim=3)
        received_map = (tensors.from_proto(decoded.semantic_map, "decoded.semantic_map",
                                           dtype=tensor_pb2.DATA_TYPE_UINT8, ndim=2)
                        if decoded.HasField("semantic_map") else None)
        return pipeline.assess(encoded, reconstruction, received_map, scoring, images), time.perf_counter() - start

    def _record(self, codec_id, frame, encode_seconds, end_to_end, quality) -> None:
        m = self._metrics
        m.encode_seconds.labels(codec_id).observe(encode_seconds)
        m.end_to_end_seconds.labels(codec_id).observe(end_to_end)
        m.channel_uses.labels(codec_id).observe(frame.channel_uses)
        m.bandwidth_ratio.labels(codec_id).observe(frame.bandwidth_ratio)  # as sent, before any truncation
        if math.isfinite(quality.ssim):  # NaN where not scored
            m.ssim.labels(codec_id).observe(quality.ssim)
        if math.isfinite(quality.miou):
            m.miou.labels(codec_id).observe(quality.miou)
        if math.isfinite(quality.psnr_db):  # a lossless image has infinite PSNR
            m.psnr.labels(codec_id).observe(quality.psnr_db)
