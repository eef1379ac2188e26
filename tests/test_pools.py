"""Receiver pools behind one channel emulator, through real servers on port 0: the same frame
decodes alike on any receiver, frames go round-robin and are counted per backend, a receiver that
reports NOT_SERVING leaves the rotation and rejoins, a refused Decode is retried once on another
receiver, and a receiver stopped under load drains without losing a frame."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest
from grpc_health.v1 import health_pb2

from conftest import settings_for_tests
from helpers import answered_by, failed_calls, metric, png_bytes, sample_png, scrape
from semcom.channel_emulator import server as channel_server
from semcom.channel_emulator.emulator import ChannelConfig
from semcom.common import codecs
from semcom.common.data.images import decode_image
from semcom.common.serving.rpc import pool_target, sync_channel
from semcom.common.wire import frames, tensors
from semcom.common.wire.pb import (
    channel_emulator_pb2, channel_emulator_pb2_grpc, receiver_pb2, receiver_pb2_grpc, transmitter_pb2,
    transmitter_pb2_grpc,
)
from semcom.receiver import server as receiver_server
from semcom.transmitter import server as transmitter_server

RECEIVER_SERVICE = "semcom.v1.Receiver"


def start_receiver(services, name: str):
    return services.loop.run(receiver_server.start(settings_for_tests(node_name=name)))


@pytest.fixture(scope="module")
def pool(services):
    """Three receivers (rx0..rx2), a channel emulator balancing over them, a transmitter in front."""
    receivers = [start_receiver(services, f"rx{i}") for i in range(3)]
    addresses = ",".join(f"127.0.0.1:{server.port}" for server in receivers)
    channel = services.loop.run(channel_server.start(settings_for_tests(), receiver=addresses,
                                                     config=ChannelConfig(snr_db=20.0, seed=7)))
    transmitter = services.start(transmitter_server, channel=services.address(channel))
    client = sync_channel(services.address(transmitter))
    yield receivers, channel, transmitter_pb2_grpc.TransmitterStub(client), transmitter
    client.close()
    for server in (transmitter, channel, *receivers):
        services.loop.run(server.stop(0))


def send(stub, count: int, image: bytes | None = None) -> None:
    for _ in range(count):
        stub.Transmit(transmitter_pb2.TransmitRequest(image=image or sample_png(), codec="linear_analog"), timeout=30)


def calls_by_backend(channel) -> dict[str, float]:
    return answered_by(scrape(channel))


def test_the_same_frame_decodes_to_the_same_image_on_any_receiver(pool, services, channel_to):
    receivers, channel, _, _ = pool
    image = decode_image(sample_png())
    semantic = codecs.get("semantic")
    frame = frames.to_proto(semantic.encode(image, semantic.default_bandwidth_ratio, "pool-frame"))
    applied = channel_emulator_pb2_grpc.ChannelEmulatorStub(channel_to(channel)).Apply(
        channel_emulator_pb2.ApplyRequest(frame=frame), timeout=30).frame
    decoded = [tensors.from_proto(receiver_pb2_grpc.ReceiverStub(channel_to(server)).Decode(
        receiver_pb2.DecodeRequest(frame=applied), timeout=60).image, "image") for server in receivers[:2]]
    assert decoded[0].shape == image.shape and decoded[0].std() > 5  # a real picture, not a constant
    assert np.array_equal(decoded[0], decoded[1])  # the diffusion noise is seeded by the frame id


def test_frames_go_round_robin_and_are_counted_per_backend(pool):
    receivers, channel, stub, transmitter = pool
    before = calls_by_backend(channel)
    send(stub, 30)
    counts = {name: calls_by_backend(channel).get(name, 0) - before.get(name, 0) for name in ("rx0", "rx1", "rx2")}
    assert sum(counts.values()) == 30
    assert all(count >= 5 for count in counts.values()), counts  # one caller in turn: about 10 each
    to_channel = metric(scrape(transmitter), "semcom_transmitter_backend_calls_total", grpc_code="OK")
    assert to_channel >= 30  # the transmitter counts its hop the same way


def test_a_receiver_reporting_not_serving_leaves_the_rotation_and_rejoins(pool, services):
    receivers, channel, stub, _ = pool
    services.loop.run(receivers[1].health.set(RECEIVER_SERVICE, health_pb2.HealthCheckResponse.NOT_SERVING))
    try:
        start = time.monotonic()
        time.sleep(0.3)
        before = calls_by_backend(channel).get("rx1", 0)
        send(stub, 12)
        assert calls_by_backend(channel).get("rx1", 0) == before  # out of rotation
        assert time.monotonic() - start < 5
    finally:
        services.loop.run(receivers[1].health.set(RECEIVER_SERVICE, health_pb2.HealthCheckResponse.SERVING))
    deadline = time.monotonic() + 1.0
    while calls_by_backend(channel).get("rx1", 0) == before:
        assert time.monotonic() < deadline, "rx1 did not rejoin within a second of serving again"
        send(stub, 1)


def test_a_decode_refused_with_unavailable_is_retried_once_on_another_receiver(pool, services):
    _, channel, stub, _ = pool
    refusing = start_receiver(services, "refusing")
    healthy = start_receiver(services, "healthy")
    pair = services.loop.run(channel_server.start(
        settings_for_tests(), receiver=f"127.0.0.1:{refusing.port},127.0.0.1:{healthy.port}"))
    front = services.start(transmitter_server, channel=services.address(pair))
    try:
        with sync_channel(services.address(front)) as client:
            pair_stub = transmitter_pb2_grpc.TransmitterStub(client)
            # 256x512: a 1.5 MiB frame, past gRPC's default retry buffer (256 KiB), which would forbid the retry.
            large = png_bytes(np.random.default_rng(0).integers(0, 256, (256, 512, 3), dtype=np.uint8))
            deadline = time.monotonic() + 10
            while len(calls_by_backend(pair)) < 2:  # until both are in rotation (each has answered)
                assert time.monotonic() < deadline, calls_by_backend(pair)
                send(pair_stub, 1, large)
            before = sum(calls_by_backend(pair).values())
            # Draining without the health update yet: the window in which a stopping receiver still gets calls.
            services.loop.run(refusing.interceptor.drain(0))
            # One caller: each refusal and its retry advance round-robin by two, so the next call's first pick is the
            # refusing receiver again. 3 calls: at most 3 refusals, within the retry budget (about 5 in a row).
            send(pair_stub, 3, large)
        assert failed_calls(scrape(pair), "Forward") == 0  # none failed at the channel (not the client's retry)
        refused = metric(scrape(refusing), "grpc_server_handled_total", grpc_method="Decode",
                         grpc_code="UNAVAILABLE")
        assert refused >= 1  # round-robin picked it: each refusal was retried on `healthy`
        answered = calls_by_backend(pair)
        assert sum(answered.values()) == before + 3 and answered["healthy"] >= 3 + 1
    finally:
        for server in (front, pair, refusing, healthy):
            services.loop.run(server.stop(0))


def test_a_receiver_stopped_under_load_drains_and_no_frame_is_lost(pool, services):
    leaving = start_receiver(services, "leaving")
    staying = start_receiver(services, "staying")
    pair = services.loop.run(channel_server.start(
        settings_for_tests(), receiver=f"127.0.0.1:{leaving.port},127.0.0.1:{staying.port}"))
    front = services.start(transmitter_server, channel=services.address(pair))
    failures: list[Exception] = []
    done = threading.Event()

    def caller():
        with sync_channel(services.address(front)) as client:
            while not done.is_set():
                try:
                    send(transmitter_pb2_grpc.TransmitterStub(client), 1)
                except Exception as error:  # noqa: BLE001 - every failure is a lost frame, reported below
                    failures.append(error)

    threads = [threading.Thread(target=caller) for _ in range(4)]
    try:
        for thread in threads:
            thread.start()
        time.sleep(1.0)
        stopping = time.monotonic()
        services.loop.run(leaving.stop(grace=2.0))  # health NOT_SERVING first, then the drain
        stop_seconds = time.monotonic() - stopping
        time.sleep(1.0)
    finally:
        done.set()
        for thread in threads:
            thread.join(30)
        answered, failed = calls_by_backend(pair), failed_calls(scrape(pair), "Forward")
        for server in (front, pair, staying):
            services.loop.run(server.stop(0))
    assert failures == [] and failed == 0  # at the client, and at the channel (no client retry hid one)
    assert answered["leaving"] > 0 and answered["staying"] > answered["leaving"]
    assert stop_seconds < 1.5  # the pool's health Watch streams do not hold the exit for the whole grace


def test_the_transmitter_balances_over_a_pool_of_channel_emulators(pool, services):
    receivers, _, _, _ = pool
    channels = [services.loop.run(channel_server.start(settings_for_tests(node_name=f"ch{i}"),
                                                       receiver=f"127.0.0.1:{receivers[0].port}")) for i in range(2)]
    front = services.start(transmitter_server, channel=",".join(f"127.0.0.1:{c.port}" for c in channels))
    try:
        with sync_channel(services.address(front)) as client:
            send(transmitter_pb2_grpc.TransmitterStub(client), 10)
        samples = scrape(front)
        counts = [metric(samples, "semcom_transmitter_backend_calls_total", backend=f"ch{i}", grpc_code="OK")
                  for i in range(2)]
        assert sum(counts) == 10 and min(counts) >= 3, counts
        forwards = [metric(scrape(c), "grpc_server_handled_total", grpc_method="Forward", grpc_code="OK")
                    for c in channels]
        assert forwards == counts  # each emulator saw exactly the frames counted for it
    finally:
        for server in (front, *channels):
            services.loop.run(server.stop(0))


@pytest.mark.parametrize("addresses, target", [
    ("receiver:50053", "receiver:50053"),
    ("10.0.0.2:50053,10.0.0.3:50053", "ipv4:10.0.0.2:50053,10.0.0.3:50053"),
    ("[::1]:1, [::2]:2", "ipv6:[::1]:1,[::2]:2"),
])
def test_pool_addresses_become_grpc_targets(addresses, target):
    assert pool_target(addresses, "--receiver")[0] == target


@pytest.mark.parametrize("addresses, fragment", [
    ("a:1,b:2", "'a:1' in a list must be IP:PORT"),
    ("10.0.0.1:1,,10.0.0.2:2", "has an empty address"),
    ("10.0.0.1,10.0.0.2:2", "'10.0.0.1' in a list must be IP:PORT"),
    ("10.0.0.1:1,[::1]:2", "mixes IPv4 and IPv6"),
])
def test_bad_pool_addresses_are_refused_at_start_with_the_flag_named(services, addresses, fragment):
    with pytest.raises(ValueError, match=r"--receiver: .*" + fragment.replace("[", r"\[").replace("]", r"\]")):
        services.loop.run(channel_server.start(settings_for_tests(), receiver=addresses))
