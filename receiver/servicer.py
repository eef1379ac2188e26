from __future__ import annotations

import asyncio
import time

from semcom.common import codecs
from semcom.common.models.runtime import DecoderRuntime
from semcom.common.serving.config import ServerSettings
from semcom.common.serving.errors import DataLost
from semcom.common.wire import frames, tensors
from semcom.common.wire.pb import receiver_pb2, receiver_pb2_grpc

from .batching import DynamicBatcher
from .metrics import ReceiverMetrics
from .pipeline import decode_frames


class ReceiverServicer(receiver_pb2_grpc.ReceiverServicer):
    def __init__(self, settings: ServerSettings, metrics: ReceiverMetrics, runtime: DecoderRuntime,
                 max_batch_size: int = 8, max_queue_delay: float = 0.0):
        self._settings = settings
        self._metrics = metrics
        self._runtime = runtime  # this receiver's precision and sampler, whatever others in the process run
        self._batcher = DynamicBatcher(self._decode_many, max_batch_size, max_queue_delay, metrics)

    async def Decode(self, request: receiver_pb2.DecodeRequest, context) -> receiver_pb2.DecodeResponse:
        arrived = time.perf_counter()
        # Validation is CPU work: keep it off the event loop. Decoding happens in the batcher's worker.
        frame = await asyncio.to_thread(self._validate, request)
        (image, semantic_map), seconds = await self._batcher.decode(frame, arrived)
        self._metrics.decode_seconds.labels(frame.codec).observe(seconds)
        self._metrics.frames.labels(frame.codec).inc()
        response = receiver_pb2.DecodeResponse(frame_id=frame.frame_id, image=tensors.to_proto(image),
                                               decode_seconds=seconds)
        if semantic_map is not None:
            response.semantic_map.CopyFrom(tensors.to_proto(semantic_map))
        choices = codecs.get(frame.codec).adapter_choices(frame, "receive", self._runtime)
        for choice in choices:
            self._metrics.adapter_frames.labels(frame.codec, choice.model, str(choice.expert)).inc()
        response.adapters.extend(frames.adapter_choices_to_proto(choices))
        return response

    async def on_decode_thread(self, function, *args):
        """function(*args) where this receiver decodes (model loading: DynamicBatcher.__init__ says why)."""
        return await self._batcher.on_decode_thread(function, *args)

    async def aclose(self) -> None:
        await self._batcher.aclose()

    def _decode_many(self, batch: list[frames.Frame]) -> list:
        return decode_frames(batch, self._runtime)

    def _validate(self, request: receiver_pb2.DecodeRequest) -> frames.Frame:
        if request.frame.channel.erased:
            self._metrics.erasures.inc()
            raise DataLost(f"frame {request.frame.header.frame_id or '(no id)'} was lost on the link (erasure)")
        return frames.from_proto(
            request.frame,
            max_pixels=self._settings.max_pixels,
            max_channel_uses=self._settings.max_message_bytes // 8,
        )
