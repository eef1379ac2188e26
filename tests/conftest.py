"""Fixtures: the three real services on port 0, sharing one uvloop event loop
in a background thread of the test process, so their state and metrics can be
inspected. The demo and shutdown tests run them as separate processes."""

from __future__ import annotations

import asyncio
import threading
from dataclasses import dataclass

import pytest
import uvloop

from semcom.channel_emulator import server as channel_server
from semcom.channel_emulator.emulator import ChannelConfig
from semcom.common.serving.config import ServerSettings
from semcom.common.serving.rpc import sync_channel
from semcom.common.serving.server import ServiceServer
from semcom.common.wire.pb import channel_emulator_pb2_grpc, receiver_pb2_grpc, transmitter_pb2_grpc
from semcom.receiver import server as receiver_server
from semcom.transmitter import server as transmitter_server

TEST_MAX_PIXELS = 1024 * 1024
KINDS = ("unit", "service", "process", "deploy")  # pyproject.toml's markers


def pytest_collection_modifyitems(items):
    """Each test gets exactly one kind: `service` where it starts the servers (the services fixture),
    `unit` where it is marked nothing else; process and deploy tests are marked where they are."""
    for item in items:
        kinds = [kind for kind in KINDS if item.get_closest_marker(kind)]
        if not kinds:
            kind = "service" if "services" in item.fixturenames else "unit"
            item.add_marker(kind)
            kinds = [kind]
        elif "services" in item.fixturenames and "service" not in kinds and "deploy" not in kinds:
            raise pytest.UsageError(f"{item.nodeid}: marked {kinds[0]} but starts servers (the services fixture)")
        if len(kinds) > 1:
            raise pytest.UsageError(f"{item.nodeid}: marked {' and '.join(kinds)}; a test is of one kind")


class EventLoopThread:
    """One event loop in a daemon thread; `run` executes a coroutine on it."""

    def __init__(self):
        self.loop = uvloop.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self._thread.start()

    def run(self, coroutine, timeout: float = 60.0):
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout)

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(10)


@dataclass
class Services:
    loop: EventLoopThread
    transmitter: ServiceServer
    channel: ServiceServer
    receiver: ServiceServer

    def address(self, server: ServiceServer) -> str:
        return f"127.0.0.1:{server.port}"

    def start(self, module, **kwargs) -> ServiceServer:
        """Starts one more service on the shared loop (stopped by the fixture)."""
        return self.loop.run(module.start(settings_for_tests(), **kwargs))


def settings_for_tests(**overrides) -> ServerSettings:
    return ServerSettings(**{"port": 0, "metrics_port": 0, "max_pixels": TEST_MAX_PIXELS,
                             "grace_seconds": 2.0, **overrides})


@pytest.fixture(scope="module")
def services():
    loop = EventLoopThread()
    receiver = loop.run(receiver_server.start(settings_for_tests()))
    channel = loop.run(channel_server.start(settings_for_tests(), receiver=f"127.0.0.1:{receiver.port}",
                                            config=ChannelConfig(snr_db=20.0, seed=1234)))
    transmitter = loop.run(transmitter_server.start(settings_for_tests(), channel=f"127.0.0.1:{channel.port}"))
    yield Services(loop, transmitter, channel, receiver)
    for server in (transmitter, channel, receiver):
        loop.run(server.stop(0))
    loop.close()


@pytest.fixture(scope="module")
def channel_to(services):
    """Opens a blocking gRPC channel to a running service; all are closed at the end."""
    opened = []

    def open_channel(server: ServiceServer):
        channel = sync_channel(services.address(server))
        opened.append(channel)
        return channel

    yield open_channel
    for channel in opened:
        channel.close()




@pytest.fixture(scope="module")
def transmitter(services, channel_to):
    return transmitter_pb2_grpc.TransmitterStub(channel_to(services.transmitter))


@pytest.fixture(scope="module")
def channel(services, channel_to):
    return channel_emulator_pb2_grpc.ChannelEmulatorStub(channel_to(services.channel))


@pytest.fixture(scope="module")
def receiver(services, channel_to):
    return receiver_pb2_grpc.ReceiverStub(channel_to(services.receiver))
