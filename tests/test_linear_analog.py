import math

import numpy as np
import pytest

from semcom.channel_emulator.awgn import AWGN, noise_variance
from semcom.common import codecs
from semcom.common.models.runtime import DecoderRuntime
from semcom.common.serving.errors import InvalidInput
from semcom.common.wire.frames import ChannelState

codec = codecs.get("linear_analog")


def random_image(height, width, seed=0):
    return np.random.default_rng(seed).integers(0, 256, size=(height, width, 3), dtype=np.uint8)


@pytest.mark.parametrize("height,width", [(64, 64), (63, 37), (1, 1), (5, 200)])
def test_noiseless_round_trip_is_exact_at_full_bandwidth(height, width):
    image = random_image(height, width)
    frame = codec.encode(image, 0.5, "f")
    assert frame.channel_uses == math.ceil(height * width * 3 / 2)  # two real values per complex use
    np.testing.assert_array_equal(codec.decode(frame, DecoderRuntime())[0], image)


@pytest.mark.parametrize("ratio", [0.5, 0.25, 1 / 6, 1 / 12, 0.02])
def test_symbols_have_unit_power_and_respect_the_bandwidth_ratio(ratio):
    image = random_image(64, 128, seed=1)
    frame = codec.encode(image, ratio, "f")
    symbols = frame.block("image").symbols
    assert symbols.dtype == np.complex64
    assert np.mean(np.abs(symbols) ** 2) == pytest.approx(1.0, abs=1e-5)
    assert frame.channel_uses <= math.ceil(ratio * frame.source_values)
    assert frame.bandwidth_ratio >= 0.85 * ratio  # uses most of what it was given
    assert codec.decode(frame, DecoderRuntime())[0].shape == image.shape


@pytest.mark.parametrize("ratio", [0.0, -0.1, 0.6, math.nan, 1e-6])
def test_unusable_bandwidth_ratios_are_rejected(ratio):
    with pytest.raises(InvalidInput, match="bandwidth_ratio"):
        codec.encode(random_image(16, 16), ratio, "f")


def test_lmmse_scaling_matches_theory_and_beats_plain_inversion():
    """For unit-power symbols in CN(0, N0), x_hat = y/(1+N0) has MSE N0/(1+N0)
    per symbol, below the N0 of using y as it is."""
    image = random_image(128, 128, seed=2)
    frame = codec.encode(image, 0.5, "f")
    sent = frame.block("image").symbols
    snr_db = 0.0
    n0 = noise_variance(snr_db)
    channel = AWGN(seed=3)
    frame.blocks[0].symbols = channel(sent, snr_db)
    received = frame.blocks[0].symbols
    lmmse_error = np.mean(np.abs(received / (1 + n0) - sent) ** 2)
    assert lmmse_error == pytest.approx(n0 / (1 + n0), rel=0.03)
    assert np.mean(np.abs(received - sent) ** 2) == pytest.approx(n0, rel=0.03)

    frame.channel = ChannelState("awgn", snr_db, n0)
    with_lmmse = np.mean((codec.decode(frame, DecoderRuntime())[0].astype(float) - image) ** 2)
    frame.channel = ChannelState("awgn", snr_db, 0.0)  # decoder told there was no noise
    without = np.mean((codec.decode(frame, DecoderRuntime())[0].astype(float) - image) ** 2)
    assert with_lmmse < 0.8 * without


def test_decoder_rejects_inconsistent_frames():
    frame = codec.encode(random_image(8, 8), 0.5, "f")
    frame.blocks[0].symbols = frame.blocks[0].symbols[:-1]
    with pytest.raises(InvalidInput, match=r"blocks\['image'\].symbols: 95 symbols"):
        codec.decode(frame, DecoderRuntime())
    frame = codec.encode(random_image(8, 8), 0.5, "f")
    del frame.side_info["mean"]
    with pytest.raises(InvalidInput, match=r"side_info\['mean'\]: .*missing"):
        codec.decode(frame, DecoderRuntime())
    frame = codec.encode(random_image(8, 8), 0.5, "f")
    frame.codec_version = 99
    with pytest.raises(InvalidInput, match="codec_version"):
        codec.decode(frame, DecoderRuntime())
