from __future__ import annotations

import asyncio
import math
import time

from semcom.common.data.images import encode_png
from semcom.common.data.labels import colorize
from semcom.common.serving.config import ServerSettings
from semcom.common.serving.errors import InvalidInput, ServiceError
from semcom.common.serving.rpc import call_downstream
from semcom.common.wire import frames, tensors
from semcom.common.wire.pb import channel_emulator_pb2, channel_emulator_pb2_grpc, frame_pb2, tensor_pb2
from semcom.common.wire.pb import transmitter_pb2 as pb
from semcom.common.wire.pb import transmitter_pb2_grpc

from . import pipeline
from .metrics import TransmitterMetrics


class TransmitterServicer(transmitter_pb2_grpc.TransmitterServicer):
    def __init__(self, settings: ServerSettings, metrics: TransmitterMetrics, default_codec: str,
                 channel: channel_emulator_pb2_grpc.ChannelEmulatorStub, channel_address: str,
                 pilot_spacing: int = 0, design_snr_db: float = 10.0, report_miou: bool = True):
        self._settings = settings
        self._report_miou = report_miou
        self._pilot_spacing = pilot_spacing
        self._design_snr_db = design_snr_db
        self._metrics = metrics
        self._default_codec = default_codec
        self._channel = channel
        self._channel_address = channel_address

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
        encoded, frame_message, encode_seconds = await asyncio.to_thread(self._encode, request, codec_id)

        forwarded = await call_downstream(
            "channel emulator", self._channel_address,
            self._channel.Forward(channel_emulator_pb2.ForwardRequest(frame=frame_message),
                                  timeout=context.time_remaining()),
        )
        quality, png, map_png, quality_seconds = await asyncio.to_thread(self._assess, encoded, forwarded.decoded)
        end_to_end = time.perf_counter() - start

        frame = encoded.frame
        link = forwarded.link
        link_seconds = link.queue_seconds + link.transmit_seconds + link.propagation_seconds
        decode_seconds = forwarded.decoded.decode_seconds
        self._record(codec_id, frame, encode_seconds, end_to_end, quality)
        return pb.TransmitResponse(
            image_id=request.image_id,
            frame_id=frame.frame_id,
            codec=codec_id,
            channel_uses=forwarded.channel.channel_uses,
            bandwidth_ratio=forwarded.channel.bandwidth_ratio,
            channel=forwarded.channel,
            quality=quality,
            timings=pb.StageTimings(
                encode_seconds=encode_seconds,
                channel_seconds=forwarded.channel_seconds,
                decode_seconds=decode_seconds,
                quality_seconds=quality_seconds,
                link_seconds=link_seconds,
                end_to_end_seconds=end_to_end,
                overhead_seconds=end_to_end - encode_seconds - forwarded.channel_seconds - decode_seconds
                - quality_seconds - link_seconds,
            ),
            reconstruction_png=png,
            received_map_png=map_png,
            image_size=frame_pb2.ImageSize(height=frame.height, width=frame.width, channels=3),
        )

    def _encode(self, request: pb.TransmitRequest, codec_id: str):
        start = time.perf_counter()
        encoded = pipeline.encode(request.image, codec_id, request.bandwidth_ratio, max_pixels=self._settings.max_pixels,
                                  pilot_spacing=request.pilot_spacing or self._pilot_spacing,
                                  design_snr_db=request.design_snr_db if request.HasField("design_snr_db")
                                  else self._design_snr_db)
        message = frames.to_proto(encoded.frame)
        return encoded, message, time.perf_counter() - start

    def _assess(self, encoded: pipeline.Encoded, decoded):
        """Quality, the reconstruction's PNG and the received map's PNG (b"" without one): one thread hop."""
        start = time.perf_counter()
        reconstruction = tensors.from_proto(
            decoded.image, "decoded.image", dtype=tensor_pb2.DATA_TYPE_UINT8, ndim=3
        )
        if reconstruction.shape != encoded.image.shape:
            raise InvalidInput(
                f"decoded.image: receiver returned shape {list(reconstruction.shape)}, "
                f"sent {list(encoded.image.shape)}"
            )
        psnr, ssim = pipeline.quality(encoded.image, reconstruction)
        miou = (pipeline.semantic_fidelity(encoded.image, reconstruction, encoded.frame.codec)
                if self._report_miou else math.nan)
        map_png = b""
        if decoded.HasField("semantic_map"):
            labels = tensors.from_proto(decoded.semantic_map, "decoded.semantic_map",
                                        dtype=tensor_pb2.DATA_TYPE_UINT8, ndim=2)
            map_png = encode_png(colorize(labels))
        return (pb.Quality(psnr_db=psnr, ssim=ssim, miou=miou), encode_png(reconstruction), map_png,
                time.perf_counter() - start)

    def _record(self, codec_id, frame, encode_seconds, end_to_end, quality) -> None:
        m = self._metrics
        m.encode_seconds.labels(codec_id).observe(encode_seconds)
        m.end_to_end_seconds.labels(codec_id).observe(end_to_end)
        m.channel_uses.labels(codec_id).observe(frame.channel_uses)
        m.bandwidth_ratio.labels(codec_id).observe(frame.bandwidth_ratio)  # as sent, before any truncation
        m.ssim.labels(codec_id).observe(quality.ssim)
        if math.isfinite(quality.miou):
            m.miou.labels(codec_id).observe(quality.miou)
        if math.isfinite(quality.psnr_db):  # a lossless image has infinite PSNR
            m.psnr.labels(codec_id).observe(quality.psnr_db)
