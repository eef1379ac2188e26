"""The channel emulator service with fading, CSI, the bandwidth budget and the
link: real servers on port 0, fixed seeds."""

from __future__ import annotations

import math
import time
from concurrent.futures import ThreadPoolExecutor

import grpc
import pytest

from helpers import assert_rpc_error, metric, sample_png, scrape
from semcom.common import codecs
from semcom.common.data.images import decode_image
from semcom.common.wire import frames
from semcom.common.wire.pb import channel_emulator_pb2 as pb
from semcom.common.wire.pb import transmitter_pb2

SAMPLE_SYMBOLS = 64 * 128 * 3 // 2  # linear analog at full resolution


@pytest.fixture
def configure(channel):
    """Applies channel settings for one test; restores the previous ones after."""
    before = channel.GetConfig(pb.GetConfigRequest())
    yield lambda **settings: channel.Configure(pb.ChannelConfig(**settings))
    before.ClearField("seed")
    channel.Configure(before)


def transmit(stub, **fields):
    return stub.Transmit(transmitter_pb2.TransmitRequest(image=sample_png(), **fields), timeout=30)


def forward_request():
    frame = codecs.get("linear_analog").encode(decode_image(sample_png()), 0.5, "link-test")
    return pb.ForwardRequest(frame=frames.to_proto(frame))


# --- bandwidth budget ----------------------------------------------------------------------------------------------


def test_a_frame_over_the_budget_is_rejected_naming_budget_and_size(transmitter, configure, services):
    configure(max_channel_uses=5000, over_budget="reject")
    before = scrape(services.channel)
    assert_rpc_error(lambda: transmit(transmitter), grpc.StatusCode.RESOURCE_EXHAUSTED,
                     f"{SAMPLE_SYMBOLS} complex channel uses, over the channel's bandwidth budget of 5000")
    after = scrape(services.channel)
    assert metric(after, "semcom_channel_frames_rejected_total", reason="budget") - \
        metric(before, "semcom_channel_frames_rejected_total", reason="budget") == 1


def test_a_truncated_frame_arrives_with_its_tail_erased(transmitter, configure):
    configure(snr_db=30.0, seed=1)
    full = transmit(transmitter)
    configure(max_channel_uses=5000, over_budget="truncate")
    cut = transmit(transmitter)
    assert cut.channel.channel_uses == cut.channel_uses == 5000
    assert cut.channel.truncated_symbols == SAMPLE_SYMBOLS - 5000
    assert cut.bandwidth_ratio == pytest.approx(5000 / (64 * 128 * 3))
    # What arrived (the top rows) is as good as before; the erased rest falls back to the mean colour.
    original, received = decode_image(sample_png()), decode_image(cut.reconstruction_png)
    top_rows = 5000 * 2 // (128 * 3) - 1
    top_error = abs(received[:top_rows].astype(int) - original[:top_rows]).mean()
    assert top_error < 3 and cut.quality.psnr_db < full.quality.psnr_db - 10


# --- fading and CSI through the chain --------------------------------------------------------------------------------


def test_fading_with_perfect_csi_decodes_and_without_csi_does_not(transmitter, configure):
    configure(model="rayleigh", coherence_symbols=0, snr_db=25.0, seed=7, csi="perfect", equalizer="mmse")
    perfect = [transmit(transmitter).quality.psnr_db for _ in range(5)]
    configure(csi="none", seed=7)
    blind = [transmit(transmitter).quality.psnr_db for _ in range(5)]
    # The same five fades: equalized they decode, unequalized a random phase scrambles colours.
    assert min(perfect) > 20 and max(blind) < min(perfect) - 5


def test_estimated_csi_from_pilots_decodes_close_to_perfect_csi(transmitter, configure):
    configure(model="rician", k_factor=2.0, coherence_symbols=64, snr_db=20.0, seed=3, csi="perfect")
    perfect = transmit(transmitter)
    configure(csi="estimated", seed=3)
    estimated = transmit(transmitter, pilot_spacing=63)
    assert estimated.channel_uses == SAMPLE_SYMBOLS + math.ceil(SAMPLE_SYMBOLS / 63)  # pilots are channel uses
    assert estimated.channel.csi == "estimated" and estimated.channel.k_factor == 2.0
    assert estimated.quality.psnr_db > perfect.quality.psnr_db - 4  # about the 3 dB of one-pilot LS
    assert_rpc_error(lambda: transmit(transmitter), grpc.StatusCode.INVALID_ARGUMENT,
                     "frame.header.pilot_spacing: 0, but csi is 'estimated'")


def test_fading_metrics_record_gain_and_k_factor(transmitter, configure, services):
    configure(model="rician", k_factor=5.0, coherence_symbols=1000, seed=4)
    before = scrape(services.channel)
    transmit(transmitter)
    after = scrape(services.channel)
    blocks = math.ceil(SAMPLE_SYMBOLS / 1000)
    assert metric(after, "semcom_channel_fading_gain_ratio_count") - metric(before, "semcom_channel_fading_gain_ratio_count") == blocks
    assert metric(after, "semcom_channel_k_factor_ratio") == 5.0
    assert metric(after, "semcom_channel_model_info", model="rician", csi="perfect") == 1


@pytest.mark.parametrize("settings,fragment", [
    ({"csi": "psychic"}, "csi: 'psychic', expected one of perfect, none, estimated"),
    ({"equalizer": "ml"}, "equalizer: 'ml'"),
    ({"k_factor": -1.0}, "k_factor: -1.0 must be a finite linear value >= 0 (not dB)"),
    ({"loss_probability": 1.5}, "loss_probability: 1.5 is outside [0, 1]"),
    ({"over_budget": "ignore"}, "over_budget: 'ignore'"),
    ({"symbol_rate": -5.0}, "symbol_rate"),
    ({"queue_frames": 0}, "queue_frames"),
])
def test_invalid_channel_settings_are_rejected_naming_the_field(channel, configure, settings, fragment):
    before = channel.GetConfig(pb.GetConfigRequest())
    assert_rpc_error(lambda: configure(**settings), grpc.StatusCode.INVALID_ARGUMENT, fragment)
    assert channel.GetConfig(pb.GetConfigRequest()) == before


# --- the link --------------------------------------------------------------------------------------------------


def test_transmission_time_is_symbols_over_symbol_rate_plus_delay(channel, configure):
    configure(symbol_rate=1e6, delay_seconds=0.02)
    request = forward_request()
    channel.Forward(request, timeout=10)  # warm the connection to the receiver
    for _ in range(3):
        start = time.perf_counter()
        response = channel.Forward(request, timeout=10)
        elapsed = time.perf_counter() - start
        assert response.link.transmit_seconds == pytest.approx(SAMPLE_SYMBOLS / 1e6)
        assert response.link.propagation_seconds == pytest.approx(0.02)
        link = response.link.transmit_seconds + response.link.propagation_seconds
        # The rest is the channel, the decode and two gRPC hops: measured 8-16 ms on 2 busy cores. The bound
        # still catches a link time counted twice (32 ms more).
        assert link <= elapsed < link + 0.03


def test_a_burst_queues_on_the_link_first_in_first_out(channel, configure, services):
    configure(symbol_rate=1e5, queue_frames=16)  # 0.123 s on the link per frame
    request = forward_request()
    before = scrape(services.channel)
    with ThreadPoolExecutor(6) as pool:
        responses = list(pool.map(lambda _: channel.Forward(request, timeout=30), range(6)))
    waits = sorted(r.link.queue_seconds for r in responses)
    per_frame = SAMPLE_SYMBOLS / 1e5
    assert waits[0] < 0.02
    for i, wait in enumerate(waits):
        assert wait == pytest.approx(i * per_frame, abs=0.03)
    after = scrape(services.channel)
    assert metric(after, "semcom_channel_queue_seconds_count") - metric(before, "semcom_channel_queue_seconds_count") == 6


def test_a_full_queue_refuses_frames_with_resource_exhausted(channel, configure):
    configure(symbol_rate=1e5, queue_frames=2)
    request = forward_request()

    def forward(_):
        try:
            channel.Forward(request, timeout=30)
            return "OK"
        except grpc.RpcError as error:
            assert "link queue full" in error.details()
            return error.code().name

    with ThreadPoolExecutor(6) as pool:
        outcomes = list(pool.map(forward, range(6)))
    assert sorted(outcomes) == ["OK"] * 3 + ["RESOURCE_EXHAUSTED"] * 3  # one on the link, two waiting


def test_an_abandoned_frame_cannot_wedge_the_link(channel, configure, services):
    # The attack: a slow link, one long frame, then the rate set back. Before, the frame kept the link
    # for its whole airtime (12,288 uses at 1/s: 3.4 hours) and every later Forward timed out.
    request = forward_request()
    configure(symbol_rate=1.0)
    start = time.perf_counter()
    assert_rpc_error(lambda: channel.Forward(request, timeout=3), grpc.StatusCode.DEADLINE_EXCEEDED,
                     "after the call's deadline")
    assert time.perf_counter() - start < 1.0  # refused at once, not after 3 s
    configure(symbol_rate=SAMPLE_SYMBOLS / 2.0)  # 2 s of airtime, within a 20 s deadline: booked
    pending = channel.Forward.future(request, timeout=20)
    time.sleep(0.5)
    pending.cancel()  # the caller goes away half-way through
    configure(symbol_rate=0.0)
    start = time.perf_counter()
    channel.Forward(request, timeout=10)
    assert time.perf_counter() - start < 1.0  # the cancelled frame gave the link back
    assert metric(scrape(services.channel), "semcom_channel_frames_rejected_total", reason="deadline") >= 1
    assert metric(scrape(services.channel), "semcom_channel_link_busy_seconds") == 0


def test_lost_frames_reach_the_client_as_data_loss_and_none_silently(channel, configure, services, transmitter):
    configure(loss_probability=0.25, seed=11)
    sent = 400
    before = {name: scrape(getattr(services, name)) for name in ("channel", "receiver")}
    outcomes = {"OK": 0, "DATA_LOSS": 0}
    request = forward_request()
    for _ in range(sent):
        try:
            channel.Forward(request, timeout=10)
            outcomes["OK"] += 1
        except grpc.RpcError as error:
            assert error.code() == grpc.StatusCode.DATA_LOSS, error.details()
            assert "was lost on the link (erasure)" in error.details()
            outcomes["DATA_LOSS"] += 1
    assert sum(outcomes.values()) == sent
    assert abs(outcomes["DATA_LOSS"] - 0.25 * sent) < 5 * math.sqrt(sent * 0.25 * 0.75)
    after = {name: scrape(getattr(services, name)) for name in ("channel", "receiver")}
    assert metric(after["channel"], "semcom_channel_frames_lost_total") - \
        metric(before["channel"], "semcom_channel_frames_lost_total") == outcomes["DATA_LOSS"]
    assert metric(after["receiver"], "semcom_receiver_erasures_total") - \
        metric(before["receiver"], "semcom_receiver_erasures_total") == outcomes["DATA_LOSS"]
    configure(loss_probability=1.0)
    assert_rpc_error(lambda: transmit(transmitter), grpc.StatusCode.DATA_LOSS, "receiver at", "erasure")
