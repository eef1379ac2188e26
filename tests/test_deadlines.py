"""Deadlines are forwarded downstream: each hop's downstream call carries the
caller's remaining time. The downstream here is a probe, a real gRPC server
that records the deadline it was called with, placed behind the real
transmitter and the real channel emulator."""

from __future__ import annotations

import grpc
import pytest

from helpers import sample_png
from semcom.channel_emulator import server as channel_server
from semcom.common.serving.rpc import sync_channel
from semcom.common.wire.pb import channel_emulator_pb2_grpc, receiver_pb2_grpc, transmitter_pb2, transmitter_pb2_grpc
from semcom.transmitter import server as transmitter_server


class DeadlineProbe(channel_emulator_pb2_grpc.ChannelEmulatorServicer, receiver_pb2_grpc.ReceiverServicer):
    """Answers Forward and Decode with ABORTED (never retried) after noting the time it was given."""

    def __init__(self):
        self.time_remaining: list[float | None] = []

    async def Forward(self, request, context):
        return await self._note(context)

    async def Decode(self, request, context):
        return await self._note(context)

    async def _note(self, context):
        self.time_remaining.append(context.time_remaining())
        await context.abort(grpc.StatusCode.ABORTED, "probe")


@pytest.fixture
def probe(services):
    probe = DeadlineProbe()

    async def start():
        server = grpc.aio.server()
        channel_emulator_pb2_grpc.add_ChannelEmulatorServicer_to_server(probe, server)
        receiver_pb2_grpc.add_ReceiverServicer_to_server(probe, server)
        port = server.add_insecure_port("127.0.0.1:0")
        await server.start()
        return server, port

    server, port = services.loop.run(start())
    probe.address = f"127.0.0.1:{port}"
    yield probe
    services.loop.run(server.stop(0))


@pytest.mark.parametrize("hop", ["transmitter -> channel", "channel -> receiver"])
def test_each_hop_forwards_the_callers_remaining_deadline(services, probe, hop):
    if hop == "transmitter -> channel":
        started = [services.start(transmitter_server, channel=probe.address)]
    else:
        channel = services.start(channel_server, receiver=probe.address)
        started = [channel, services.start(transmitter_server, channel=services.address(channel))]
    try:
        with sync_channel(services.address(started[-1])) as ch:
            stub = transmitter_pb2_grpc.TransmitterStub(ch)
            with pytest.raises(grpc.RpcError) as raised:
                stub.Transmit(transmitter_pb2.TransmitRequest(image=sample_png()), timeout=7.0)
        assert raised.value.code() == grpc.StatusCode.ABORTED and "probe" in raised.value.details()
        # The wire encodes deadlines with a few ms of slack, so allow 7.05 s.
        [remaining] = probe.time_remaining
        assert remaining is not None and 5.0 < remaining < 7.05
    finally:
        for server in reversed(started):
            services.loop.run(server.stop(0))
