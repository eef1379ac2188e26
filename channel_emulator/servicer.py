from __future__ import annotations

import asyncio
import time

import numpy as np

from semcom.common.serving.config import ServerSettings
from semcom.common.serving.errors import InvalidInput, LimitExceeded, ServiceError
from semcom.common.serving.rpc import Downstream
from semcom.common.wire import frames
from semcom.common.wire.pb import channel_emulator_pb2 as pb
from semcom.common.wire.pb import channel_emulator_pb2_grpc, frame_pb2, receiver_pb2, receiver_pb2_grpc

from .emulator import CONFIG_FIELDS, ChannelEmulator
from .link import DeadlineTooSoon, QueueFull
from .metrics import ChannelMetrics


class ChannelEmulatorServicer(channel_emulator_pb2_grpc.ChannelEmulatorServicer):
    def __init__(self, settings: ServerSettings, emulator: ChannelEmulator, metrics: ChannelMetrics,
                 receivers: Downstream):
        self._settings = settings
        self._emulator = emulator
        self._metrics = metrics
        self._receivers = receivers
        self._receiver = receiver_pb2_grpc.ReceiverStub(receivers.grpc_channel)
        metrics.show_config(emulator.config)

    async def Forward(self, request: pb.ForwardRequest, context) -> pb.ForwardResponse:
        noisy, channel_seconds = await asyncio.to_thread(self._apply, request.frame)
        link = self._emulator.link
        try:
            transmission = link.book(noisy.channel.channel_uses, timeout=context.time_remaining())
        except QueueFull as error:
            self._metrics.rejected.labels("queue").inc()
            raise LimitExceeded(str(error)) from None
        except DeadlineTooSoon as error:
            self._metrics.rejected.labels("deadline").inc()
            raise ServiceError(str(error), "DEADLINE_EXCEEDED") from None
        loop = asyncio.get_running_loop()
        self._metrics.queue_seconds.observe(transmission.queue_seconds)
        self._metrics.link_busy.set(link.busy_seconds(loop.time()))
        try:
            await link.deliver(transmission)
        finally:
            self._metrics.link_busy.set(link.busy_seconds(loop.time()))
        self._metrics.link_seconds.observe(loop.time() - transmission.arrival)
        if transmission.lost:
            # The receiver sees the erasure (a frame with no symbols); it answers DATA_LOSS.
            self._metrics.lost.inc()
            noisy = frame_pb2.Frame(header=noisy.header, channel=noisy.channel)
            noisy.channel.erased = True
        start = time.perf_counter()
        decoded = await self._receivers.call(
            self._receiver.Decode(receiver_pb2.DecodeRequest(frame=noisy), timeout=context.time_remaining()))
        return pb.ForwardResponse(
            decoded=decoded, channel=noisy.channel, channel_seconds=channel_seconds,
            receiver_call_seconds=time.perf_counter() - start,
            link=pb.LinkTiming(queue_seconds=transmission.queue_seconds,
                               transmit_seconds=transmission.transmit_seconds,
                               propagation_seconds=transmission.propagation_seconds),
        )

    async def Apply(self, request: pb.ApplyRequest, context) -> pb.ApplyResponse:
        noisy, channel_seconds = await asyncio.to_thread(self._apply, request.frame)
        return pb.ApplyResponse(frame=noisy, channel_seconds=channel_seconds)

    async def Configure(self, request: pb.ChannelConfig, context) -> pb.ChannelConfig:
        changes = {name: getattr(request, name) for name in CONFIG_FIELDS if request.HasField(name)}
        for name, value in changes.items():
            if value == "":
                raise InvalidInput(f"{name}: empty; leave it unset to keep the current value")
        config = self._emulator.configure(**changes)
        self._metrics.show_config(config)
        return self._config_message()

    async def GetConfig(self, request: pb.GetConfigRequest, context) -> pb.ChannelConfig:
        return self._config_message()

    def _config_message(self) -> pb.ChannelConfig:
        config = self._emulator.config
        return pb.ChannelConfig(**{name: getattr(config, name) for name in CONFIG_FIELDS
                                   if getattr(config, name) is not None})

    def _apply(self, message: frame_pb2.Frame) -> tuple[frame_pb2.Frame, float]:
        """Validates, applies the channel and serializes: CPU work, run in a thread."""
        frame = frames.from_proto(
            message, max_pixels=self._settings.max_pixels, max_channel_uses=self._settings.max_message_bytes // 8
        )
        start = time.perf_counter()
        try:
            noisy, fading = self._emulator.apply(frame)
        except LimitExceeded:
            self._metrics.rejected.labels("budget").inc()
            raise
        seconds = time.perf_counter() - start
        model = noisy.channel.model
        self._metrics.measured_snr.labels(model).observe(noisy.channel.measured_snr_db)
        self._metrics.symbols.labels(model).inc(noisy.channel.channel_uses)
        self._metrics.frames.labels(model).inc()
        self._metrics.apply_seconds.labels(model).observe(seconds)
        if noisy.channel.truncated_symbols:
            self._metrics.truncated.labels(model).inc()
        if fading is not None:
            for gain in np.abs(fading[:4096]) ** 2:  # bounded work for fast fading
                self._metrics.fading_gain.labels(model).observe(float(gain))
        return frames.to_proto(noisy), seconds
