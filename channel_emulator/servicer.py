from __future__ import annotations

import asyncio
import time

from semcom.common import frames
from semcom.common.config import ServerSettings
from semcom.common.errors import InvalidInput
from semcom.common.pb import channel_emulator_pb2 as pb
from semcom.common.pb import channel_emulator_pb2_grpc, receiver_pb2, receiver_pb2_grpc
from semcom.common.rpc import call_downstream

from .emulator import ChannelEmulator
from .metrics import ChannelMetrics


class ChannelEmulatorServicer(channel_emulator_pb2_grpc.ChannelEmulatorServicer):
    def __init__(self, settings: ServerSettings, emulator: ChannelEmulator, metrics: ChannelMetrics,
                 receiver: receiver_pb2_grpc.ReceiverStub, receiver_address: str):
        self._settings = settings
        self._emulator = emulator
        self._metrics = metrics
        self._receiver = receiver
        self._receiver_address = receiver_address
        metrics.show_config(emulator.config.model, emulator.config.snr_db)

    async def Forward(self, request: pb.ForwardRequest, context) -> pb.ForwardResponse:
        noisy, channel_seconds = await asyncio.to_thread(self._apply, request.frame)
        start = time.perf_counter()
        decoded = await call_downstream(
            "receiver", self._receiver_address,
            self._receiver.Decode(receiver_pb2.DecodeRequest(frame=noisy), timeout=context.time_remaining()),
        )
        return pb.ForwardResponse(
            decoded=decoded, channel=noisy.channel, channel_seconds=channel_seconds,
            receiver_call_seconds=time.perf_counter() - start,
        )

    async def Apply(self, request: pb.ApplyRequest, context) -> pb.ApplyResponse:
        noisy, channel_seconds = await asyncio.to_thread(self._apply, request.frame)
        return pb.ApplyResponse(frame=noisy, channel_seconds=channel_seconds)

    async def Configure(self, request: pb.ChannelConfig, context) -> pb.ChannelConfig:
        if request.HasField("model") and not request.model:
            raise InvalidInput("model: empty; leave it unset to keep the current model")
        config = self._emulator.configure(
            model=request.model if request.HasField("model") else None,
            snr_db=request.snr_db if request.HasField("snr_db") else None,
            seed=request.seed if request.HasField("seed") else None,
        )
        self._metrics.show_config(config.model, config.snr_db)
        return self._config_message()

    async def GetConfig(self, request: pb.GetConfigRequest, context) -> pb.ChannelConfig:
        return self._config_message()

    def _config_message(self) -> pb.ChannelConfig:
        config = self._emulator.config
        message = pb.ChannelConfig(model=config.model, snr_db=config.snr_db)
        if config.seed is not None:
            message.seed = config.seed
        return message

    def _apply(self, message):
        """Validates, applies the channel and serializes: CPU work, run in a thread."""
        frame = frames.from_proto(
            message, max_pixels=self._settings.max_pixels, max_channel_uses=self._settings.max_message_bytes // 8
        )
        start = time.perf_counter()
        noisy = self._emulator.apply(frame)
        seconds = time.perf_counter() - start
        model = noisy.channel.model
        self._metrics.measured_snr.labels(model).observe(noisy.channel.measured_snr_db)
        self._metrics.symbols.labels(model).inc(noisy.channel_uses)
        self._metrics.frames.labels(model).inc()
        self._metrics.apply_seconds.labels(model).observe(seconds)
        return frames.to_proto(noisy), seconds
