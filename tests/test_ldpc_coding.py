"""The real separation baseline: JPEG/WebP/AVIF over CRC-24A, 5G LDPC and QAM with link adaptation.
A file decodes exactly above its MCS's threshold and is an outage below it, also through the services."""

import math

import numpy as np
import pytest

from helpers import decode_frame, needs_photos, png_bytes
from semcom.channel_emulator.awgn import AWGN
from semcom.channel_emulator.emulator import ChannelConfig, ChannelEmulator
from semcom.common import codecs
from semcom.common.codecs.separate import FALLBACK_GREY
from semcom.common.data import photos
from semcom.common.data.images import decode_image
from semcom.common.data.scenes import generate_scene
from semcom.common.phy import ldpc
from semcom.common.phy.csi import equalize
from semcom.common.serving.errors import InvalidInput
from semcom.common.wire.pb import channel_emulator_pb2, transmitter_pb2
from semcom.tools.evaluation.mcs import block_error_rate, shannon_limit_db

IMAGE = generate_scene(96, 128, seed=7)[0]
RNG_SEED = 5


def random_file(size: int, seed: int = 0) -> bytes:
    return np.random.default_rng(seed).integers(0, 256, size, dtype=np.uint8).tobytes()


@pytest.mark.parametrize("index,codeword_bits", [(0, 8064), (1, 2400), (9, 8064), (19, 4032), (27, 8064)])
def test_a_file_comes_back_exactly_without_noise_and_a_corrupted_one_fails_its_crc(index, codeword_bits):
    layout = ldpc.layout_for(ldpc.MCS_TABLE[index], codeword_bits, 1500)  # several codewords; MCS 0 and 1 repeat bits
    symbols = ldpc.encode_bits(random_file(1500), layout)
    assert symbols.size == layout.symbols and abs(np.mean(np.abs(symbols) ** 2) - 1) < 0.05  # unit power
    clean = np.full(symbols.size, 1e-4, np.float32)
    assert ldpc.decode_bits(symbols, clean, False, layout, 1500) == random_file(1500)
    garbled = symbols.copy()
    garbled[: symbols.size // 3] *= -1  # a third of the symbols flipped, and told reliable: BP cannot mend it
    assert ldpc.decode_bits(garbled, clean, False, layout, 1500) is None


def test_the_lowest_rates_repeat_the_mother_codes_bits():
    layout = ldpc.largest_layout(ldpc.MCS_TABLE[0], 4032)  # 8064 bits at rate 0.117, below Sionna's 1/5
    assert layout.mother_bits < layout.codeword_bits and layout.info_bits / layout.mother_bits >= ldpc.MIN_MOTHER_RATE
    sent = np.bincount(layout.circular_buffer, minlength=layout.mother_bits)
    assert sent.min() == 1 and sent.max() == 2 and sent.sum() == layout.codeword_bits  # each once, some twice
    full = ldpc.largest_layout(ldpc.MCS_TABLE[9], 4032)
    assert full.mother_bits == full.codeword_bits


@pytest.mark.parametrize("channel_uses", [130, 1000, 2048, 4032, 6000, 100_000])
def test_the_codewords_fill_the_frame_in_equal_lengths_of_at_most_8064_bits(channel_uses):
    for mcs in ldpc.MCS_TABLE:
        layout = ldpc.largest_layout(mcs, channel_uses)
        if layout is None:
            assert channel_uses * mcs.bits_per_symbol < ldpc.MIN_CODEWORD_BITS
            continue
        assert layout.codeword_bits <= ldpc.CODEWORD_BITS and layout.codeword_bits % 24 == 0
        assert layout.symbols <= channel_uses
        assert layout.symbols > 0.97 * channel_uses - 24  # at most 23 bits per codeword lost to the length grid


def test_link_adaptation_picks_the_fastest_mcs_below_the_design_snr():
    lowest = ldpc.MCS_TABLE[0].threshold_db + ldpc.LINK_MARGIN_DB
    assert ldpc.choose_mcs(lowest - 0.01) is None
    rates = [ldpc.choose_mcs(snr).spectral_efficiency for snr in np.arange(lowest, 30, 0.5)]
    assert rates == sorted(rates) and rates[-1] == max(mcs.spectral_efficiency for mcs in ldpc.MCS_TABLE)
    for mcs in ldpc.MCS_TABLE:
        assert ldpc.choose_mcs(mcs.threshold_db + ldpc.LINK_MARGIN_DB) == mcs  # the thresholds rise with the rate
        assert mcs.threshold_db > shannon_limit_db(mcs.spectral_efficiency)  # no code beats capacity


@pytest.mark.parametrize("index", [2, 11])
def test_the_shipped_threshold_is_where_the_block_errors_fall(index):
    """A check of `semcom bench mcs`'s table: most 8064-bit codewords fail 1 dB below the shipped
    threshold, and none of 40 fails 0.5 dB above it (the waterfall is about 0.5 dB wide)."""
    mcs = ldpc.MCS_TABLE[index]
    rng = np.random.default_rng(RNG_SEED)
    assert block_error_rate(mcs, mcs.threshold_db - 1.0, 20, rng) >= 0.5
    assert block_error_rate(mcs, mcs.threshold_db + 0.5, 40, rng) == 0.0


def test_mmse_estimates_are_made_unbiased_with_the_right_variance():
    rng = np.random.default_rng(2)
    n, noise = 200_000, 0.3
    x = (rng.choice([-1, 1], n) + 1j * rng.choice([-1, 1], n)) / math.sqrt(2)
    h = np.full(n, 0.8 + 0.3j, np.complex64)  # one gain, so that moments are per that gain
    y = h * x + AWGN(rng=rng)(np.zeros(n, np.complex64), -10 * math.log10(noise))
    estimate, error = equalize(y.astype(np.complex64), h, noise, "mmse")
    unbiased, variance = ldpc.unbiased_estimate(estimate, error, mmse=True)
    assert abs(np.mean(unbiased * np.conj(x)) - 1) < 0.01  # E[x_u x*] = 1: no shrinkage left
    residual = np.var(unbiased - x)
    assert abs(residual / variance[0] - 1) < 0.02 and abs(variance[0] - noise / abs(h[0]) ** 2) < 1e-3
    erased, unreliable = ldpc.unbiased_estimate(np.zeros(2, np.complex64), np.array([np.inf, 1.0], np.float32), True)
    assert (erased == 0).all() and (unreliable == ldpc.UNRELIABLE).all()


@pytest.mark.parametrize("codec_id", ["jpeg_ldpc", "webp_ldpc", "avif_ldpc"])
def test_a_file_decodes_exactly_above_its_mcs_threshold_and_is_an_outage_below(codec_id):
    codec = codecs.get(codec_id)
    frame = codec.encode(IMAGE, 1 / 6, "f", design_snr_db=12.0)
    mcs = ldpc.MCS_TABLE[int(frame.side_info["mcs"][0])]
    assert mcs == ldpc.choose_mcs(12.0) and frame.side_info["file_bytes"][0] > 0
    assert frame.channel_uses <= math.ceil(IMAGE.size / 6)
    exact = decode_frame(frame)  # no channel: the file itself
    assert not (exact == FALLBACK_GREY).all()
    above, _ = ChannelEmulator(ChannelConfig(snr_db=mcs.threshold_db + 1.0, seed=1)).apply(frame)
    assert np.array_equal(decode_frame(above), exact)
    below, _ = ChannelEmulator(ChannelConfig(snr_db=mcs.threshold_db - 1.0, seed=1)).apply(frame)
    assert (decode_frame(below) == FALLBACK_GREY).all()


def test_a_deep_rayleigh_fade_is_an_outage_and_a_strong_one_is_not():
    codec = codecs.get("webp_ldpc")
    frame = codec.encode(IMAGE, 1 / 12, "f", design_snr_db=10.0)
    threshold = ldpc.MCS_TABLE[int(frame.side_info["mcs"][0])].threshold_db
    outcomes = []
    for seed in range(16):
        received, fading = ChannelEmulator(ChannelConfig(model="rayleigh", snr_db=10.0, seed=seed)).apply(frame)
        effective_db = 10 + 10 * math.log10(abs(fading[0]) ** 2)
        outcomes.append((effective_db, bool((decode_frame(received) == FALLBACK_GREY).all())))
    assert all(failed for snr, failed in outcomes if snr < threshold - 0.7)
    assert not any(failed for snr, failed in outcomes if snr > threshold + 0.7)
    assert any(failed for _, failed in outcomes) and not all(failed for _, failed in outcomes)


def test_a_budget_cut_is_an_outage_and_a_frame_too_short_for_a_codeword_is_grey():
    frame = codecs.get("webp_ldpc").encode(IMAGE, 1 / 12, "f", design_snr_db=10.0)
    cut, _ = ChannelEmulator(ChannelConfig(snr_db=30.0, seed=1, max_channel_uses=frame.channel_uses // 2,
                                           over_budget="truncate")).apply(frame)
    assert (decode_frame(cut) == FALLBACK_GREY).all()
    tiny = codecs.get("jpeg_ldpc").encode(IMAGE[:5, :3], 0.05, "tiny", design_snr_db=10.0)
    assert tiny.side_info["codeword_bits"][0] == 0 and (decode_frame(tiny) == FALLBACK_GREY).all()


def test_bad_control_information_is_invalid_input():
    good = codecs.get("webp_ldpc").encode(IMAGE, 1 / 12, "f", design_snr_db=10.0)
    for key, value, fragment in [("mcs", np.array([99], np.int32), "not an MCS index"),
                                 ("codeword_bits", np.array([100], np.int32), "not a codeword length"),
                                 ("file_bytes", np.array([10_000], np.int32), "symbols"),
                                 ("file_bytes", np.array([2**31 - 1], np.int32), "symbols"),
                                 ("file_bytes", np.array([-1], np.int32), "one int32 >= 0"),
                                 ("mcs", np.array([3.0], np.float32), "one int32 >= 0"),
                                 ("codeword_bits", np.array([8064, 8064], np.int32), "one int32 >= 0")]:
        frame = codecs.get("webp_ldpc").encode(IMAGE, 1 / 12, "f", design_snr_db=10.0)
        frame.side_info[key] = value
        with pytest.raises(InvalidInput, match=fragment):
            decode_frame(frame)
    assert not (decode_frame(good) == FALLBACK_GREY).all()


def test_our_crc24a_is_sionnas_and_3gpps():
    import torch
    from sionna.phy.fec.crc import CRCEncoder

    for size in (0, 1, 3, 500):
        data = random_file(size, seed=size)
        bits = torch.from_numpy(np.unpackbits(np.frombuffer(data, np.uint8)).astype(np.float32)).unsqueeze(0)
        theirs = CRCEncoder("CRC24A")(bits)[0, -24:].numpy().astype(np.uint8)
        assert np.array_equal(np.unpackbits(np.frombuffer(ldpc.crc24a(data).to_bytes(3, "big"), np.uint8)), theirs)


def test_erased_symbols_give_the_outage_not_an_error():
    frame = codecs.get("webp_ldpc").encode(IMAGE, 1 / 12, "f", design_snr_db=10.0)
    frame.blocks[0].symbols[:] = 0  # all-zero symbols: all-zero LLRs decode to zeros, whose CRC-24A is 0
    assert (decode_frame(frame) == FALLBACK_GREY).all()


@pytest.mark.parametrize("source", ["scene", pytest.param("photo", marks=needs_photos)])
def test_through_the_services_the_file_is_exact_above_the_threshold_and_grey_below(transmitter, channel, source):
    """The transmitter picks the MCS for its design SNR; the channel is set 1 dB to either side of that
    MCS's threshold; the response's reconstruction is the file itself, or the outage."""
    image = IMAGE if source == "scene" else photos.load_photos("kodak")[0]  # 384x512: 36 codewords
    before = channel.GetConfig(channel_emulator_pb2.GetConfigRequest())
    mcs = ldpc.choose_mcs(10.0)
    local = codecs.get("webp_ldpc").encode(image, 1 / 12, "f", design_snr_db=10.0)
    exact = decode_frame(local)
    try:
        for offset_db, expect_exact in ((1.0, True), (-1.0, False)):
            channel.Configure(channel_emulator_pb2.ChannelConfig(snr_db=mcs.threshold_db + offset_db, seed=3))
            response = transmitter.Transmit(transmitter_pb2.TransmitRequest(
                image=png_bytes(image), codec="webp_ldpc", bandwidth_ratio=1 / 12, design_snr_db=10.0), timeout=60)
            received = decode_image(response.reconstruction_png)
            assert response.codec == "webp_ldpc" and response.channel_uses == local.channel_uses
            if expect_exact:
                assert np.array_equal(received, exact)
            else:
                assert (received == FALLBACK_GREY).all()
    finally:
        channel.Configure(channel_emulator_pb2.ChannelConfig(snr_db=before.snr_db, seed=1234))
