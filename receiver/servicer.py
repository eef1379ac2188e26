from __future__ import annotations

import asyncio
import time

import grpc

from semcom.common import frames, tensors
from semcom.common.config import ServerSettings
from semcom.common.errors import ServiceError
from semcom.common.pb import receiver_pb2, receiver_pb2_grpc

from .metrics import ReceiverMetrics
from .pipeline import decode_frame_with_map


class ReceiverServicer(receiver_pb2_grpc.ReceiverServicer):
    def __init__(self, settings: ServerSettings, metrics: ReceiverMetrics):
        self._settings = settings
        self._metrics = metrics

    async def Decode(self, request: receiver_pb2.DecodeRequest, context) -> receiver_pb2.DecodeResponse:
        # Validation and decoding are CPU work: keep them off the event loop.
        return await asyncio.to_thread(self._decode, request, time.perf_counter())

    def _decode(self, request: receiver_pb2.DecodeRequest, arrived: float) -> receiver_pb2.DecodeResponse:
        self._metrics.queue_seconds.observe(time.perf_counter() - arrived)
        if request.frame.channel.erased:
            self._metrics.erasures.inc()
            raise ServiceError(f"frame {request.frame.header.frame_id or '(no id)'} was lost on the link (erasure)",
                               code=grpc.StatusCode.DATA_LOSS)
        frame = frames.from_proto(
            request.frame,
            max_pixels=self._settings.max_pixels,
            max_channel_uses=self._settings.max_message_bytes // 8,
        )
        start = time.perf_counter()
        image, semantic_map = decode_frame_with_map(frame)
        seconds = time.perf_counter() - start
        self._metrics.batch_size.observe(1)  # one frame per model call until dynamic batching
        self._metrics.decode_seconds.labels(frame.codec).observe(seconds)
        self._metrics.frames.labels(frame.codec).inc()
        response = receiver_pb2.DecodeResponse(frame_id=frame.frame_id, image=tensors.to_proto(image),
                                               decode_seconds=seconds)
        if semantic_map is not None:
            response.semantic_map.CopyFrom(tensors.to_proto(semantic_map))
        return response
