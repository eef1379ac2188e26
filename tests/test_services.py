"""The three services as real gRPC servers on port 0: round trips, health,
reflection, bad input (each with its status code, the service staying up),
SNR through the service, downstream failures and metrics."""

from __future__ import annotations

import asyncio
import math
import time

import grpc
import numpy as np
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import ProtoReflectionDescriptorDatabase
from prometheus_client import CollectorRegistry

from conftest import settings_for_tests
from helpers import assert_rpc_error, encoded_frame, free_port, metric, png_bytes, png_header_only, sample_png, scrape
from semcom.channel_emulator import server as channel_server
from semcom.channel_emulator.awgn import measured_snr_db
from semcom.common.data import sample_images
from semcom.common.data.images import decode_image
from semcom.common.models.runtime import DecoderRuntime
from semcom.common.quality import psnr_db
from semcom.common.serving.server import ServiceServer
from semcom.common.wire import tensors
from semcom.common.wire.pb import (
    channel_emulator_pb2, receiver_pb2, receiver_pb2_grpc, tensor_pb2, transmitter_pb2, transmitter_pb2_grpc,
)
from semcom.receiver.metrics import ReceiverMetrics
from semcom.receiver.servicer import ReceiverServicer
from semcom.transmitter import server as transmitter_server


@pytest.fixture
def snr(channel):
    """Sets the channel SNR for one test and restores it after."""
    before = channel.GetConfig(channel_emulator_pb2.GetConfigRequest())

    def set_snr(snr_db: float, seed: int | None = None):
        return channel.Configure(channel_emulator_pb2.ChannelConfig(snr_db=snr_db, seed=seed))

    yield set_snr
    channel.Configure(channel_emulator_pb2.ChannelConfig(snr_db=before.snr_db))


def transmit(stub, image: bytes, **fields) -> transmitter_pb2.TransmitResponse:
    return stub.Transmit(transmitter_pb2.TransmitRequest(image=image, **fields), timeout=30)


def assert_chain_still_serves(transmitter) -> None:
    response = transmit(transmitter, sample_png())
    assert response.quality.psnr_db > 10


# --- the round trip ---------------------------------------------------------------------------------------------


def test_an_image_makes_the_round_trip_with_quality_and_timings(transmitter, snr):
    snr(30.0, seed=1)
    original = decode_image(sample_png())
    response = transmit(transmitter, sample_png(), image_id="scene")

    reconstruction = decode_image(response.reconstruction_png)
    assert reconstruction.shape == original.shape == (64, 128, 3)
    assert response.image_id == "scene" and response.codec == "linear_analog"
    assert response.channel_uses == 64 * 128 * 3 // 2
    assert response.bandwidth_ratio == pytest.approx(0.5)
    assert response.channel.model == "awgn" and response.channel.snr_db == 30.0
    assert abs(response.channel.measured_snr_db - 30.0) < 0.3  # one frame of 12288 symbols
    # The transmitter's PSNR is that of the image it sent back, and high at 30 dB.
    assert response.quality.psnr_db == pytest.approx(psnr_db(original, reconstruction), abs=1e-9)
    assert response.quality.psnr_db > 38 and response.quality.ssim > 0.97
    t = response.timings
    stages = t.encode_seconds + t.channel_seconds + t.decode_seconds + t.quality_seconds
    assert min(t.encode_seconds, t.channel_seconds, t.decode_seconds, t.quality_seconds) > 0
    assert t.overhead_seconds > 0 and t.end_to_end_seconds == pytest.approx(stages + t.overhead_seconds)


@pytest.mark.parametrize("scoring, scored, images", [
    (transmitter_pb2.SCORING_UNSPECIFIED, ("psnr_db", "ssim"), True),  # the transmitter's default, pixels
    (transmitter_pb2.SCORING_FULL, ("psnr_db", "ssim"), True),
    (transmitter_pb2.SCORING_PIXELS, ("psnr_db", "ssim"), True),
    (transmitter_pb2.SCORING_NONE, (), False),
])
def test_a_request_gets_the_scoring_it_asks_for(transmitter, services, scoring, scored, images):
    image = sample_images()[0].read_bytes()
    counted = metric(scrape(services.transmitter), "semcom_transmitter_ssim_ratio_count", codec="semantic")
    response = transmit(transmitter, image, codec="semantic", scoring=scoring, omit_images=not images)
    quality = response.quality
    for name in ("psnr_db", "ssim"):
        assert math.isfinite(getattr(quality, name)) == (name in scored), (name, quality)
    # mIoU: only with full scoring, the segmenter's on the reconstruction.
    full = scoring == transmitter_pb2.SCORING_FULL
    assert math.isfinite(quality.miou) == full and (not full or 0 <= quality.miou <= 1)
    assert bool(response.reconstruction_png) == bool(response.received_map_png) == images
    assert response.channel_uses > 0 and response.timings.decode_seconds > 0  # decoded all the same
    # Only scores computed are observed (an unscored call adds no NaN to the SSIM histogram).
    assert metric(scrape(services.transmitter), "semcom_transmitter_ssim_ratio_count",
                  codec="semantic") == counted + bool(scored)


def test_quality_falls_with_snr(transmitter, snr):
    psnrs = []
    for snr_db in (0.0, 10.0, 20.0):
        snr(snr_db, seed=2)
        psnrs.append(transmit(transmitter, sample_png()).quality.psnr_db)
    assert psnrs[0] < psnrs[1] < psnrs[2]


def test_a_stream_of_images_comes_back_in_order(transmitter):
    paths = sample_images()
    requests = [transmitter_pb2.TransmitRequest(image=p.read_bytes(), image_id=p.stem) for p in paths]
    responses = list(transmitter.TransmitStream(iter(requests), timeout=60))
    assert [r.image_id for r in responses] == [p.stem for p in paths]
    assert len({r.frame_id for r in responses}) == len(paths)


def test_a_lower_bandwidth_ratio_sends_fewer_symbols(transmitter):
    response = transmit(transmitter, sample_png(), bandwidth_ratio=1 / 12)
    assert response.channel_uses <= math.ceil(64 * 128 * 3 / 12)
    assert response.bandwidth_ratio == pytest.approx(response.channel_uses / (64 * 128 * 3))
    assert decode_image(response.reconstruction_png).shape == (64, 128, 3)


@pytest.mark.parametrize("mode,array", [
    ("L", np.full((31, 17), 77, np.uint8)),
    ("RGBA", np.full((9, 33, 4), 200, np.uint8)),
    ("I;16", np.full((15, 15), 40000, np.uint16)),
    ("RGB", np.random.default_rng(0).integers(0, 256, (13, 7, 3), dtype=np.uint8)),
])
def test_grayscale_rgba_sixteen_bit_and_odd_sizes_are_converted(transmitter, mode, array):
    response = transmit(transmitter, png_bytes(array, mode=mode if mode != "I;16" else None))
    assert decode_image(response.reconstruction_png).shape == (*array.shape[:2], 3)


# --- health and reflection -----------------------------------------------------------------------------------------


def test_health_is_not_serving_until_the_models_are_loaded(services):
    loaded = asyncio.Event()

    async def start_with_slow_load() -> ServiceServer:
        settings = settings_for_tests()
        server = ServiceServer("receiver", settings, CollectorRegistry())
        server.add_service("semcom.v1.Receiver", receiver_pb2_grpc.add_ReceiverServicer_to_server,
                           ReceiverServicer(settings, ReceiverMetrics(server.registry), DecoderRuntime()))
        asyncio.get_running_loop().create_task(server.start(load=loaded.wait))
        while server.port == 0 or server.metrics_port == 0:
            await asyncio.sleep(0.01)
        return server

    server = services.loop.run(start_with_slow_load())
    try:
        with grpc.insecure_channel(f"127.0.0.1:{server.port}") as ch:
            health = health_pb2_grpc.HealthStub(ch)
            for name in ("", "semcom.v1.Receiver"):
                status = health.Check(health_pb2.HealthCheckRequest(service=name), timeout=5).status
                assert status == health_pb2.HealthCheckResponse.NOT_SERVING
            services.loop.loop.call_soon_threadsafe(loaded.set)
            deadline = time.monotonic() + 5
            request = health_pb2.HealthCheckRequest(service="semcom.v1.Receiver")
            while health.Check(request, timeout=5).status != health_pb2.HealthCheckResponse.SERVING:
                assert time.monotonic() < deadline, "still NOT_SERVING 5 s after loading finished"
                time.sleep(0.01)
    finally:
        services.loop.run(server.stop(0))


@pytest.mark.parametrize("name,service", [
    ("transmitter", "semcom.v1.Transmitter"), ("channel", "semcom.v1.ChannelEmulator"),
    ("receiver", "semcom.v1.Receiver"),
])
def test_each_service_reports_serving_and_lists_itself_in_reflection(services, channel_to, name, service):
    ch = channel_to(getattr(services, name))
    health = health_pb2_grpc.HealthStub(ch)
    assert health.Check(health_pb2.HealthCheckRequest(service=service)).status == health_pb2.HealthCheckResponse.SERVING
    listed = set(ProtoReflectionDescriptorDatabase(ch).get_services())
    assert {service, "grpc.health.v1.Health", "grpc.reflection.v1alpha.ServerReflection"} <= listed
    methods = {m.name for m in ProtoReflectionDescriptorDatabase(ch).FindFileContainingSymbol(service).service[0].method}
    assert methods


# --- bad input ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("request_fields,code,fragment", [
    ({}, grpc.StatusCode.INVALID_ARGUMENT, "image: empty"),
    ({"image": b"\x00garbage\xff" * 10}, grpc.StatusCode.INVALID_ARGUMENT, "image: not a decodable image"),
    ({"image": png_header_only(5000, 5000)}, grpc.StatusCode.RESOURCE_EXHAUSTED, "over the limit of 1048576"),
    ({"image": sample_png(), "codec": "nope"}, grpc.StatusCode.INVALID_ARGUMENT, "codec: unknown codec 'nope'"),
    ({"image": sample_png(), "bandwidth_ratio": -1}, grpc.StatusCode.INVALID_ARGUMENT, "bandwidth_ratio"),
    ({"image": sample_png(), "bandwidth_ratio": math.nan}, grpc.StatusCode.INVALID_ARGUMENT, "bandwidth_ratio"),
    ({"image": sample_png(), "bandwidth_ratio": 0.9}, grpc.StatusCode.INVALID_ARGUMENT, "bandwidth_ratio"),
    ({"image": sample_png(), "scoring": 7}, grpc.StatusCode.INVALID_ARGUMENT, "scoring: 7 is not one of"),
])
def test_bad_transmit_requests_get_clear_errors_and_the_service_stays_up(transmitter, request_fields, code, fragment):
    assert_rpc_error(lambda: transmitter.Transmit(transmitter_pb2.TransmitRequest(**request_fields), timeout=10),
                     code, fragment)
    assert_chain_still_serves(transmitter)


def test_a_bad_image_in_a_stream_names_its_position(transmitter):
    requests = [transmitter_pb2.TransmitRequest(image=sample_png(), image_id="good"),
                transmitter_pb2.TransmitRequest(image=b"junk", image_id="bad")]
    stream = transmitter.TransmitStream(iter(requests), timeout=30)
    assert next(stream).image_id == "good"
    assert_rpc_error(lambda: next(stream), grpc.StatusCode.INVALID_ARGUMENT, "stream item 1 (bad)", "image")


def _frame_with(mutate):
    """An encoded sample frame (proto) changed by `mutate`."""
    frame = encoded_frame()
    mutate(frame)
    return frame


def _set_symbols(frame, values: np.ndarray) -> None:
    frame.blocks[0].symbols.CopyFrom(tensors.to_proto(values))


BAD_FRAMES = {
    "empty frame": (lambda f: f.Clear(), grpc.StatusCode.INVALID_ARGUMENT, "frame.header.codec: missing"),
    "unknown codec": (lambda f: setattr(f.header, "codec", "nope"), grpc.StatusCode.INVALID_ARGUMENT,
                      "frame.header.codec: unknown codec 'nope'"),
    "wrong length": (lambda f: setattr(f.blocks[0].symbols, "raw_contents", f.blocks[0].symbols.raw_contents[:-3]),
                     grpc.StatusCode.INVALID_ARGUMENT, "frame.blocks[0].symbols.raw_contents: 98301 bytes"),
    "wrong dtype": (lambda f: setattr(f.blocks[0].symbols, "dtype", tensor_pb2.DATA_TYPE_FLOAT32),
                    grpc.StatusCode.INVALID_ARGUMENT, "expected DATA_TYPE_COMPLEX64, got DATA_TYPE_FLOAT32"),
    "wrong rank": (lambda f: f.blocks[0].symbols.shape.append(1),
                   grpc.StatusCode.INVALID_ARGUMENT, "frame.blocks[0].symbols.shape: expected 1 dimensions"),
    "wrong symbol count": (lambda f: _set_symbols(f, np.ones(100, np.complex64)), grpc.StatusCode.INVALID_ARGUMENT,
                           "frame.blocks['image'].symbols: 100 symbols"),
    "NaN symbols": (lambda f: _set_symbols(f, np.full(12288, np.nan, np.complex64)),
                    grpc.StatusCode.INVALID_ARGUMENT, "frame.blocks[0].symbols: 12288 non-finite"),
    "inf symbols": (lambda f: _set_symbols(f, np.r_[np.ones(12287), np.inf].astype(np.complex64)),
                    grpc.StatusCode.INVALID_ARGUMENT, "1 non-finite"),
    "oversized image": (lambda f: setattr(f.header.image_size, "height", 100_000), grpc.StatusCode.RESOURCE_EXHAUSTED,
                        "frame.header.image_size: 100000x128 is over the limit"),
}
CHANNEL_CHECKS_CODEC = {"unknown codec", "wrong symbol count"}  # only the receiver knows the codecs


@pytest.mark.parametrize("case", BAD_FRAMES)
def test_bad_frames_are_rejected_by_the_receiver(receiver, transmitter, case):
    mutate, code, fragment = BAD_FRAMES[case]
    request = receiver_pb2.DecodeRequest(frame=_frame_with(mutate))
    assert_rpc_error(lambda: receiver.Decode(request, timeout=10), code, fragment)
    assert_chain_still_serves(transmitter)


@pytest.mark.parametrize("case", sorted(set(BAD_FRAMES) - CHANNEL_CHECKS_CODEC))
def test_bad_frames_are_rejected_by_the_channel(channel, transmitter, case):
    mutate, code, fragment = BAD_FRAMES[case]
    request = channel_emulator_pb2.ApplyRequest(frame=_frame_with(mutate))
    assert_rpc_error(lambda: channel.Apply(request, timeout=10), code, fragment)
    assert_rpc_error(lambda: channel.Forward(channel_emulator_pb2.ForwardRequest(frame=request.frame), timeout=10),
                     code, fragment)
    assert_chain_still_serves(transmitter)


@pytest.mark.parametrize("config,fragment", [
    ({"snr_db": 51.0}, "snr_db: 51.0 dB is outside the configured range [-30.0, 50.0] dB"),
    ({"snr_db": -31.0}, "outside the configured range"),
    ({"snr_db": math.inf}, "snr_db: inf dB"),
    ({"model": "fading-of-doom"}, "unknown channel model 'fading-of-doom'; available: awgn"),
    ({"model": ""}, "model: empty"),
])
def test_out_of_range_channel_settings_are_rejected_and_change_nothing(channel, transmitter, config, fragment):
    before = channel.GetConfig(channel_emulator_pb2.GetConfigRequest())
    assert_rpc_error(lambda: channel.Configure(channel_emulator_pb2.ChannelConfig(**config)),
                     grpc.StatusCode.INVALID_ARGUMENT, fragment)
    assert channel.GetConfig(channel_emulator_pb2.GetConfigRequest()) == before
    assert_chain_still_serves(transmitter)


def test_an_expired_deadline_is_deadline_exceeded(transmitter):
    big = png_bytes(np.random.default_rng(0).integers(0, 256, (1000, 1000, 3), dtype=np.uint8))
    assert_rpc_error(lambda: transmitter.Transmit(transmitter_pb2.TransmitRequest(image=big), timeout=0.05),
                     grpc.StatusCode.DEADLINE_EXCEEDED)
    assert_chain_still_serves(transmitter)


# --- downstream down ------------------------------------------------------------------------------------------------


def test_a_dead_channel_emulator_gives_unavailable_naming_it(services, channel_to):
    dead = f"127.0.0.1:{free_port()}"
    lonely = services.start(transmitter_server, channel=dead)
    try:
        stub = transmitter_pb2_grpc.TransmitterStub(channel_to(lonely))
        assert_rpc_error(lambda: transmit(stub, sample_png()), grpc.StatusCode.UNAVAILABLE,
                         f"channel emulator at {dead}: connections to all backends failing")
        assert_rpc_error(lambda: transmit(stub, sample_png()), grpc.StatusCode.UNAVAILABLE)  # and again: still up
    finally:
        services.loop.run(lonely.stop(0))


def test_a_dead_receiver_gives_unavailable_naming_it_through_the_chain(services, channel_to):
    dead = f"127.0.0.1:{free_port()}"
    channel = services.start(channel_server, receiver=dead)
    transmitter = services.start(transmitter_server, channel=services.address(channel))
    try:
        stub = transmitter_pb2_grpc.TransmitterStub(channel_to(transmitter))
        assert_rpc_error(lambda: transmit(stub, sample_png()), grpc.StatusCode.UNAVAILABLE,
                         f"channel emulator at {services.address(channel)}: receiver at {dead}: "
                         "connections to all backends failing")
    finally:
        for server in (transmitter, channel):
            services.loop.run(server.stop(0))


def test_with_the_receiver_down_each_client_call_is_one_attempt_per_hop(services, channel_to):
    # Before, every hop retried UNAVAILABLE (3 attempts each): a dead receiver saw 3.5 Forward calls per
    # client call. Now only the edge retries, within gRPC's retry throttling.
    dead = f"127.0.0.1:{free_port()}"
    channel = services.start(channel_server, receiver=dead)
    transmitter = services.start(transmitter_server, channel=services.address(channel))
    try:
        stub = transmitter_pb2_grpc.TransmitterStub(channel_to(transmitter))  # a client: retries, throttled
        calls = 20
        for _ in range(calls):
            assert_rpc_error(lambda: transmit(stub, sample_png()), grpc.StatusCode.UNAVAILABLE)
        forwards = metric(scrape(channel), "grpc_server_started_total", grpc_method="Forward")
        transmits = metric(scrape(transmitter), "grpc_server_started_total", grpc_method="Transmit")
        assert forwards == transmits  # the transmitter's hop does not retry
        assert calls <= transmits <= calls + 6  # the client's retries stop once its token bucket is half spent
    finally:
        for server in (transmitter, channel):
            services.loop.run(server.stop(0))


# --- the channel through the service ---------------------------------------------------------------------------------


@pytest.mark.parametrize("snr_db", [-10.0, 0.0, 10.0, 20.0, 30.0])
def test_snr_measured_through_the_service_equals_nominal(channel, snr, snr_db):
    """100 frames of 12288 symbols: the SNR of the noise the service added is
    within 0.1 dB of the configured one, and each frame's reported
    measured_snr_db is what the test measures itself."""
    snr(snr_db, seed=int(snr_db) + 50)
    signal_energy = noise_energy = 0.0
    for i in range(100):
        sent = encoded_frame(decode_image(sample_images()[i % 4].read_bytes()))
        received = channel.Apply(channel_emulator_pb2.ApplyRequest(frame=sent), timeout=10).frame
        x = tensors.from_proto(sent.blocks[0].symbols, "sent")
        y = tensors.from_proto(received.blocks[0].symbols, "received")
        assert received.channel.measured_snr_db == pytest.approx(measured_snr_db(x, y), abs=1e-4)
        signal_energy += float(np.sum(np.abs(x) ** 2))
        noise_energy += float(np.sum(np.abs(y - x) ** 2))
    assert abs(10 * math.log10(signal_energy / noise_energy) - snr_db) < 0.1


def test_the_same_seed_reproduces_the_same_noise(channel, snr):
    frame = encoded_frame()
    outputs = []
    for _ in range(2):
        snr(5.0, seed=99)
        outputs.append(channel.Apply(channel_emulator_pb2.ApplyRequest(frame=frame)).frame.blocks[0].symbols)
    assert outputs[0] == outputs[1]
    assert channel.Apply(channel_emulator_pb2.ApplyRequest(frame=frame)).frame.blocks[0].symbols != outputs[0]


def test_configure_changes_only_what_is_set(channel, snr):
    snr(7.5, seed=3)
    config = channel.Configure(channel_emulator_pb2.ChannelConfig(seed=4))
    assert (config.model, config.snr_db, config.seed) == ("awgn", 7.5, 4)
    assert channel.GetConfig(channel_emulator_pb2.GetConfigRequest()) == config


# --- metrics -----------------------------------------------------------------------------------------------------


def test_metrics_move_with_traffic(services, transmitter, snr):
    snr(12.0)
    before = {name: scrape(getattr(services, name)) for name in ("transmitter", "channel", "receiver")}
    response = transmit(transmitter, sample_png())
    assert_rpc_error(lambda: transmitter.Transmit(transmitter_pb2.TransmitRequest(), timeout=10),
                     grpc.StatusCode.INVALID_ARGUMENT)
    after = {name: scrape(getattr(services, name)) for name in ("transmitter", "channel", "receiver")}

    def moved(service, name, **labels):
        return metric(after[service], name, **labels) - metric(before[service], name, **labels)

    transmit_ok = dict(grpc_service="semcom.v1.Transmitter", grpc_method="Transmit", grpc_type="unary")
    assert moved("transmitter", "grpc_server_handled_total", grpc_code="OK", **transmit_ok) == 1
    assert moved("transmitter", "grpc_server_handled_total", grpc_code="INVALID_ARGUMENT", **transmit_ok) == 1
    assert moved("transmitter", "grpc_server_started_total", **transmit_ok) == 2
    assert moved("transmitter", "grpc_server_handling_seconds_count", **transmit_ok) == 2
    assert moved("transmitter", "semcom_transmitter_psnr_decibels_count", codec="linear_analog") == 1
    assert moved("transmitter", "semcom_transmitter_psnr_decibels_sum") == pytest.approx(response.quality.psnr_db)
    assert moved("transmitter", "semcom_transmitter_channel_uses_sum") == response.channel_uses
    for name in ("encode_seconds", "end_to_end_seconds", "ssim_ratio", "bandwidth_ratio"):
        assert moved("transmitter", f"semcom_transmitter_{name}_count") == 1, name
    assert moved("channel", "semcom_channel_symbols_total", model="awgn") == response.channel_uses
    assert moved("channel", "semcom_channel_measured_snr_decibels_count") == 1
    assert metric(after["channel"], "semcom_channel_configured_snr_decibels") == 12.0
    assert moved("channel", "grpc_server_handled_total", grpc_method="Forward", grpc_code="OK") == 1
    assert moved("receiver", "semcom_receiver_decode_seconds_count", codec="linear_analog") == 1
    assert metric(after["receiver"], "semcom_receiver_model_info", codec="linear_analog", precision="fp32") == 1


def test_metric_names_follow_prometheus_conventions(services):
    names = {name for service in ("transmitter", "channel", "receiver") for (name, _) in scrape(getattr(services, service))}
    ours = {n for n in names if n.startswith(("semcom_", "grpc_server_"))}
    assert ours
    for name in ours:
        assert name == name.lower() and " " not in name
        assert not name.endswith(("_milliseconds", "_ms", "_percent", "_db")), name
        base = name.removesuffix("_bucket").removesuffix("_count").removesuffix("_sum")
        # A unit, or a dimensionless count named for what it counts (promtool agrees: see test_deploy).
        assert base.endswith(("_total", "_seconds", "_decibels", "_ratio", "_info", "_channel_uses", "_batch_size",
                              "_created")), name
