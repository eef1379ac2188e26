"""JPEG/WebP over an ideal capacity-achieving code: the bit budget, decoding
when the channel's capacity covers the rate, and the cliff below it."""

import math

import numpy as np
import pytest

from helpers import decode_frame
from semcom.channel_emulator.emulator import ChannelConfig, ChannelEmulator
from semcom.common import codecs
from semcom.common.codecs.separate import FALLBACK_GREY, bit_budget
from semcom.common.data.scenes import generate_scene
from semcom.common.quality import psnr_db

IMAGE = generate_scene(64, 128, seed=3)[0]
RATIO = 1280 / (64 * 128 * 3)


def test_bit_budget_is_k_log2_one_plus_snr():
    assert bit_budget(1000, 0.0) == 1000
    assert bit_budget(1280, 10.0) == int(1280 * math.log2(11))


@pytest.mark.parametrize("codec_id", ["jpeg", "webp"])
def test_the_file_fits_the_budget_of_the_design_snr(codec_id):
    frame = codecs.get(codec_id).encode(IMAGE, RATIO, "f", design_snr_db=20.0)
    assert frame.channel_uses == 1280
    assert 0 < frame.side_info["payload"].size * 8 <= bit_budget(1280, 20.0)


def test_decodes_at_the_design_snr_and_falls_off_the_cliff_below_it():
    codec = codecs.get("webp")
    frame = codec.encode(IMAGE, RATIO, "f", design_snr_db=10.0)
    at_design, _ = ChannelEmulator(ChannelConfig(snr_db=10.0, seed=1)).apply(frame)
    good = decode_frame(at_design)
    assert psnr_db(IMAGE, good) > 20
    below, _ = ChannelEmulator(ChannelConfig(snr_db=7.0, seed=1)).apply(frame)
    assert (decode_frame(below) == FALLBACK_GREY).all()
    above, _ = ChannelEmulator(ChannelConfig(snr_db=25.0, seed=1)).apply(frame)
    assert np.array_equal(decode_frame(above), good)  # no gain above capacity: the digital plateau


def test_a_deep_fade_breaks_decoding_and_a_strong_one_does_not():
    codec = codecs.get("webp")
    outcomes = []
    for seed in range(20):
        frame = codec.encode(IMAGE, RATIO, f"f{seed}", design_snr_db=10.0)
        received, fading = ChannelEmulator(ChannelConfig(model="rayleigh", snr_db=10.0, seed=seed)).apply(frame)
        failed = bool((decode_frame(received) == FALLBACK_GREY).all())
        outcomes.append((abs(fading[0]) ** 2, failed))
    assert all(failed for gain, failed in outcomes if gain < 0.9)
    assert not any(failed for gain, failed in outcomes if gain > 1.1)


def test_truncated_codewords_lose_capacity():
    frame = codecs.get("webp").encode(IMAGE, RATIO, "f", design_snr_db=10.0)
    received, _ = ChannelEmulator(ChannelConfig(snr_db=30.0, seed=1, max_channel_uses=200,
                                                over_budget="truncate")).apply(frame)
    assert (decode_frame(received) == FALLBACK_GREY).all()


def test_jpeg_cannot_fit_a_tiny_budget_and_sends_nothing():
    frame = codecs.get("jpeg").encode(IMAGE, RATIO, "f", design_snr_db=0.0)  # 160 bytes: below any JPEG file
    assert frame.side_info["payload"].size == 0
    assert (decode_frame(frame) == FALLBACK_GREY).all()
