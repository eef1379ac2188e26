"""Equalization, pilots and uncoded BER against closed forms, fixed seeds."""

import math

import numpy as np
import pytest

from semcom.channel_emulator.awgn import AWGN, noise_variance
from semcom.channel_emulator.fading import RayleighFading
from semcom.channel_emulator.modulation import (
    bpsk_demodulate, bpsk_modulate, qpsk_demodulate, qpsk_modulate, theoretical_ber,
)
from semcom.common.phy.csi import equalize, estimate_from_pilots, insert_pilots, pilot_mask, with_pilots_length
from semcom.common.phy.fading_layout import expand

BITS = 1_000_000


def measured_ber(modulation: str, channel: str, snr_db: float, seed: int, equalizer: str = "zf") -> tuple[float, int]:
    bits = np.random.default_rng(seed).integers(0, 2, BITS, dtype=np.uint8)
    modulate, demodulate = {"bpsk": (bpsk_modulate, bpsk_demodulate), "qpsk": (qpsk_modulate, qpsk_demodulate)}[modulation]
    x = modulate(bits)
    if channel == "awgn":
        estimate = AWGN(seed=seed + 1)(x, snr_db)
    else:
        y, h = RayleighFading(coherence_symbols=1, seed=seed + 1)(x, snr_db)
        estimate, _ = equalize(y, h, noise_variance(snr_db), equalizer)
    errors = int(np.count_nonzero(demodulate(estimate) != bits))
    return errors / BITS, errors


@pytest.mark.parametrize("modulation", ["bpsk", "qpsk"])
@pytest.mark.parametrize("channel,snr_db", [("awgn", 0.0), ("awgn", 4.0), ("awgn", 8.0),
                                             ("rayleigh", 0.0), ("rayleigh", 10.0), ("rayleigh", 20.0)])
def test_uncoded_ber_matches_the_closed_form(modulation, channel, snr_db):
    ber, errors = measured_ber(modulation, channel, snr_db, seed=int(snr_db * 10) + len(channel))
    expected = theoretical_ber(modulation, channel, snr_db)
    # Binomial standard deviation of the error count; 5 sigma.
    sigma = math.sqrt(BITS * expected * (1 - expected))
    assert abs(errors - BITS * expected) < 5 * sigma + 1, (ber, expected)


def test_mmse_and_zf_make_the_same_hard_decisions_for_psk():
    """For single-tap channels MMSE only scales the ZF estimate by a positive
    real factor, so PSK decisions are identical."""
    assert measured_ber("qpsk", "rayleigh", 5.0, seed=1, equalizer="mmse") == measured_ber("qpsk", "rayleigh", 5.0, seed=1)


def test_zf_post_equalization_snr_per_block_is_gain_times_snr():
    snr_db, length, blocks = 10.0, 20_000, 25
    x = qpsk_modulate(np.random.default_rng(2).integers(0, 2, 2 * length * blocks, dtype=np.uint8))
    y, h = RayleighFading(coherence_symbols=length, seed=3)(x, snr_db)
    estimate, error = equalize(y, h.repeat(length), noise_variance(snr_db), "zf")
    for b in range(blocks):
        part = slice(b * length, (b + 1) * length)
        measured = 10 * math.log10(1.0 / np.mean(np.abs(estimate[part] - x[part]) ** 2))
        expected = 10 * math.log10(abs(h[b]) ** 2) + snr_db
        assert measured == pytest.approx(expected, abs=0.1), b
        assert error[part][0] == pytest.approx(noise_variance(snr_db) / abs(h[b]) ** 2, rel=1e-5)


def test_mmse_error_is_below_zf_and_matches_its_prediction():
    snr_db = 0.0
    x = qpsk_modulate(np.random.default_rng(4).integers(0, 2, 400_000, dtype=np.uint8))
    y, h = RayleighFading(coherence_symbols=1, seed=5)(x, snr_db)
    n0 = noise_variance(snr_db)
    mmse, predicted = equalize(y, h, n0, "mmse")
    zf, _ = equalize(y, h, n0, "zf")
    mmse_error = np.mean(np.abs(mmse - x) ** 2)
    assert mmse_error == pytest.approx(np.mean(predicted), rel=0.02)
    assert mmse_error < 0.5 * np.mean(np.abs(zf - x) ** 2)


def test_pilots_are_inserted_before_every_spacing_data_symbols():
    data = np.arange(1, 11).astype(np.complex64) * 1j
    stream = insert_pilots(data, 4)
    assert stream.size == with_pilots_length(10, 4) == 13
    mask = pilot_mask(13, 4)
    assert list(np.flatnonzero(mask)) == [0, 5, 10]
    assert np.all(stream[mask] == 1) and np.array_equal(stream[~mask], data)
    assert insert_pilots(data, 0) is data


def test_least_squares_estimate_error_is_n0_and_costs_about_3_db():
    """Pilots aligned with coherence blocks: LS error variance N0 (one unit
    pilot per block). An estimate as noisy as the data costs about 3 dB: the
    QPSK BER is near the perfect-CSI closed form at SNR - 3 dB."""
    snr_db, spacing = 12.0, 31
    n0 = noise_variance(snr_db)
    bits = np.random.default_rng(6).integers(0, 2, 2 * 31 * 10_000, dtype=np.uint8)
    stream = insert_pilots(qpsk_modulate(bits), spacing)
    y, h = RayleighFading(coherence_symbols=spacing + 1, seed=7)(stream, snr_db)
    estimated = estimate_from_pilots(y, spacing)
    true = expand(h, stream.size, spacing + 1)
    assert np.mean(np.abs(estimated - true) ** 2) == pytest.approx(n0, rel=0.05)
    data = ~pilot_mask(stream.size, spacing)
    ber = {}
    for name, csi in (("estimated", estimated), ("perfect", true)):
        estimate, _ = equalize(y, csi, n0, "zf")
        ber[name] = np.mean(qpsk_demodulate(estimate[data]) != bits)
    assert ber["perfect"] == pytest.approx(theoretical_ber("qpsk", "rayleigh", snr_db), rel=0.05)
    assert ber["estimated"] > ber["perfect"]
    assert ber["estimated"] == pytest.approx(theoretical_ber("qpsk", "rayleigh", snr_db - 10 * math.log10(2)), rel=0.15)


def test_zero_gain_symbols_are_erasures():
    estimate, error = equalize(np.ones(3, np.complex64), np.array([1, 0, 1j], np.complex64), 0.1, "zf")
    assert estimate[1] == 0 and math.isinf(error[1]) and np.isfinite(error[[0, 2]]).all()
