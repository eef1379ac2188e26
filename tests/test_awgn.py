"""Statistical tests of the AWGN channel, fixed seeds, large samples."""

import numpy as np
import pytest

from semcom.channel_emulator.awgn import AWGN, measured_snr_db, noise_variance
from semcom.channel_emulator.emulator import ChannelConfig, ChannelEmulator
from semcom.common.serving.errors import InvalidInput
from semcom.common.wire.frames import Frame, SymbolBlock

N = 1_000_000


def unit_power_symbols(n, seed):
    """Random QPSK-like unit-power symbols with varying amplitude."""
    rng = np.random.default_rng(seed)
    x = (rng.standard_normal(n) + 1j * rng.standard_normal(n)).astype(np.complex64)
    return (x / np.sqrt(np.mean(np.abs(x) ** 2))).astype(np.complex64)


@pytest.mark.parametrize("snr_db", [-10, -5, 0, 5, 10, 15, 20, 25, 30])
def test_measured_snr_equals_nominal_within_a_tenth_of_a_db(snr_db):
    x = unit_power_symbols(N, seed=snr_db + 100)
    y = AWGN(seed=7)(x, snr_db)
    assert abs(measured_snr_db(x, y) - snr_db) < 0.1


def test_noise_is_circular_complex_gaussian_with_n0_over_two_per_real_dimension():
    snr_db = 3.0
    n0 = noise_variance(snr_db)
    x = np.zeros(N, dtype=np.complex64)
    noise = AWGN(seed=11)(x, snr_db)
    assert np.var(noise.real) == pytest.approx(n0 / 2, rel=0.01)
    assert np.var(noise.imag) == pytest.approx(n0 / 2, rel=0.01)
    assert abs(np.mean(noise)) < 5 * np.sqrt(n0 / N)
    correlation = np.mean(noise.real * noise.imag) / (n0 / 2)
    assert abs(correlation) < 5 / np.sqrt(N)
    # Gaussian: fourth moment of a real component is 3 sigma^4.
    assert np.mean(noise.real.astype(np.float64) ** 4) / (n0 / 2) ** 2 == pytest.approx(3.0, rel=0.02)


def test_noise_variance_is_ten_to_minus_snr_over_ten():
    assert noise_variance(0.0) == 1.0
    assert noise_variance(10.0) == pytest.approx(0.1)
    assert noise_variance(-3.0) == pytest.approx(10**0.3)


def test_same_seed_same_noise_other_seed_other_noise():
    x = unit_power_symbols(1000, seed=1)
    assert np.array_equal(AWGN(seed=5)(x, 10.0), AWGN(seed=5)(x, 10.0))
    assert not np.array_equal(AWGN(seed=5)(x, 10.0), AWGN(seed=6)(x, 10.0))


def test_emulator_applies_the_channel_to_every_block_and_records_its_state():
    blocks = [SymbolBlock("a", unit_power_symbols(50_000, 1)), SymbolBlock("b", unit_power_symbols(70_000, 2))]
    frame = Frame("id", "linear_analog", 1, 10, 10, blocks)
    emulator = ChannelEmulator(ChannelConfig(snr_db=6.0, seed=9))
    noisy, _ = emulator.apply(frame)
    assert [b.name for b in noisy.blocks] == ["a", "b"]
    assert noisy.channel.model == "awgn" and noisy.channel.snr_db == 6.0
    assert noisy.channel.noise_variance == pytest.approx(noise_variance(6.0))
    sent = np.concatenate([b.symbols for b in blocks])
    received = np.concatenate([b.symbols for b in noisy.blocks])
    assert noisy.channel.measured_snr_db == pytest.approx(measured_snr_db(sent, received))
    assert abs(noisy.channel.measured_snr_db - 6.0) < 0.1
    assert frame.channel is None and frame.blocks[0].symbols is blocks[0].symbols  # input untouched


def test_emulator_configuration_is_validated_and_unchanged_on_error():
    emulator = ChannelEmulator(ChannelConfig(snr_db=10.0), snr_range_db=(-20.0, 40.0))
    with pytest.raises(InvalidInput, match=r"snr_db: 41.0 dB is outside the configured range \[-20.0, 40.0\]"):
        emulator.configure(snr_db=41.0)
    with pytest.raises(InvalidInput, match="unknown channel model 'rayleigh2'"):
        emulator.configure(model="rayleigh2")
    assert emulator.config == ChannelConfig(snr_db=10.0)
    assert emulator.configure(snr_db=-20.0, seed=3) == ChannelConfig(snr_db=-20.0, seed=3)
