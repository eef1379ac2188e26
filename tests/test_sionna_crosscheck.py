"""Our channel against Sionna's on the same settings, with fixed seeds: the noise power per complex
dimension, the measured SNR, the Rayleigh block-fading amplitudes (two-sample KS), and the bit error
rate of QPSK and 16-QAM through our emulator and receiver equalizer against Sionna's AWGN and
Rayleigh block fading, each demapped by Sionna. The conventions agree: Sionna's `no` is N0 per
complex symbol for unit-power constellations, as our Es/N0 is (no difference found)."""

import math

import numpy as np
import pytest
import sionna.phy
import torch
from scipy import stats
from sionna.phy.channel import AWGN as SionnaAWGN
from sionna.phy.channel import RayleighBlockFading
from sionna.phy.mapping import BinarySource, Demapper, Mapper

from semcom.channel_emulator.awgn import AWGN, noise_variance
from semcom.channel_emulator.emulator import ChannelConfig, ChannelEmulator
from semcom.channel_emulator.fading import RayleighFading
from semcom.channel_emulator.modulation import theoretical_ber
from semcom.common.wire.frames import Frame, SymbolBlock
from semcom.receiver.pipeline import equalize_frame

SAMPLES = 200_000
BLOCK = 16  # symbols per fading block in the BER comparison (Sionna: one block per batch example)


@pytest.fixture(autouse=True)
def sionna_seed():
    sionna.phy.config.seed = 7


def sionna_noise(snr_db: float, count: int) -> np.ndarray:
    return SionnaAWGN()(torch.zeros(count, dtype=torch.complex64), noise_variance(snr_db)).numpy()


@pytest.mark.parametrize("snr_db", [-5.0, 10.0, 20.0])
def test_the_noise_has_the_same_power_per_complex_and_per_real_dimension(snr_db):
    ours = AWGN(seed=1)(np.zeros(SAMPLES, np.complex64), snr_db)
    theirs = sionna_noise(snr_db, SAMPLES)
    n0 = noise_variance(snr_db)
    for noise in (ours, theirs):
        assert abs(np.mean(np.abs(noise) ** 2) / n0 - 1) < 0.01  # N0 per complex symbol
        assert abs(np.var(noise.real) / (n0 / 2) - 1) < 0.015 and abs(np.var(noise.imag) / (n0 / 2) - 1) < 0.015
        assert abs(np.mean(noise.real * noise.imag)) < 0.01 * n0  # circular
    assert stats.ks_2samp(ours.real, theirs.real).pvalue > 1e-3
    assert stats.ks_2samp(ours.imag, theirs.imag).pvalue > 1e-3


def test_the_measured_snr_agrees():
    bits = np.random.default_rng(3).integers(0, 2, (1, 2 * SAMPLES)).astype(np.float32)
    x = Mapper("qam", 2)(torch.from_numpy(bits))[0].numpy()
    frame = Frame("f", "linear_analog", 1, 1, 1, [SymbolBlock("x", x)])
    for snr_db in (0.0, 12.0):
        ours = ChannelEmulator(ChannelConfig(snr_db=snr_db, seed=2)).apply(frame)[0].channel.measured_snr_db
        y = SionnaAWGN()(torch.from_numpy(x), noise_variance(snr_db)).numpy()
        theirs = 10 * math.log10(np.mean(np.abs(x) ** 2) / np.mean(np.abs(y - x) ** 2))
        assert abs(ours - snr_db) < 0.03 and abs(theirs - snr_db) < 0.03 and abs(ours - theirs) < 0.04


def test_rayleigh_block_fading_amplitudes_have_one_distribution():
    _, ours = RayleighFading(coherence_symbols=1, seed=4)(np.ones(SAMPLES // 4, np.complex64), 30.0)
    theirs = RayleighBlockFading(1, 1, 1, 1)(SAMPLES // 4, 1)[0].reshape(-1).numpy()
    for h in (ours, theirs):
        assert abs(np.mean(np.abs(h) ** 2) - 1) < 0.02  # E|h|^2 = 1: fading keeps the average SNR
        assert stats.kstest(np.abs(h), stats.rayleigh(scale=1 / math.sqrt(2)).cdf).pvalue > 1e-3
        assert abs(np.mean(np.angle(h))) < 0.03  # uniform phase
    assert stats.ks_2samp(np.abs(ours), np.abs(theirs)).pvalue > 1e-3


def ber_through_ours(bits: np.ndarray, bits_per_symbol: int, model: str, snr_db: float) -> float:
    """Sionna's mapper -> our emulator (blocks of BLOCK symbols) -> our receiver's ZF equalizer with
    perfect CSI -> Sionna's demapper given our per-symbol error variance."""
    x = Mapper("qam", bits_per_symbol)(torch.from_numpy(bits).unsqueeze(0))[0].numpy()
    config = ChannelConfig(model=model, snr_db=snr_db, seed=5, coherence_symbols=BLOCK, equalizer="zf")
    received = ChannelEmulator(config).apply(Frame("f", "linear_analog", 1, 1, 1, [SymbolBlock("x", x)]))[0]
    block = equalize_frame(received).blocks[0]
    decided = Demapper("app", "qam", bits_per_symbol, hard_out=True)(
        torch.from_numpy(block.symbols).unsqueeze(0), torch.from_numpy(block.noise_variance).unsqueeze(0))[0]
    return float(np.mean(decided.numpy() != bits))


def ber_through_sionna(bits: np.ndarray, bits_per_symbol: int, model: str, snr_db: float) -> float:
    """Sionna's mapper -> Sionna's Rayleigh block fading (one coefficient per batch example of BLOCK
    symbols) and AWGN -> y / h with perfect CSI -> Sionna's demapper."""
    x = Mapper("qam", bits_per_symbol)(torch.from_numpy(bits).reshape(-1, BLOCK * bits_per_symbol))
    n0 = noise_variance(snr_db)
    if model == "awgn":
        h = torch.ones(x.shape[0], 1, dtype=torch.complex64)
    else:
        h = RayleighBlockFading(1, 1, 1, 1)(x.shape[0], 1)[0].reshape(-1, 1)
    y = SionnaAWGN()(h * x, n0)
    decided = Demapper("app", "qam", bits_per_symbol, hard_out=True)(y / h, (n0 / h.abs() ** 2).expand_as(y).float())
    return float(np.mean(decided.reshape(-1).numpy() != bits))


@pytest.mark.parametrize("bits_per_symbol,model,snr_db", [(2, "awgn", 4.0), (4, "awgn", 10.0),
                                                          (2, "rayleigh", 10.0), (4, "rayleigh", 16.0)])
def test_bit_error_rates_through_both_stacks_agree_within_their_statistical_error(bits_per_symbol, model, snr_db):
    bits = BinarySource()([SAMPLES * bits_per_symbol // BLOCK // bits_per_symbol, BLOCK * bits_per_symbol])
    bits = bits.reshape(-1).numpy().astype(np.float32)
    ours = ber_through_ours(bits, bits_per_symbol, model, snr_db)
    theirs = ber_through_sionna(bits, bits_per_symbol, model, snr_db)
    # Two-proportion z-test. Bits within a symbol (and symbols within a fading block) are not
    # independent, so the binomial error is inflated by the block's size for fading.
    correlated = BLOCK * bits_per_symbol if model == "rayleigh" else bits_per_symbol
    pooled = (ours + theirs) / 2
    z = abs(ours - theirs) / math.sqrt(2 * pooled * (1 - pooled) * correlated / bits.size)
    assert 1e-3 < pooled < 0.2 and z < 4, (ours, theirs, z)
    if bits_per_symbol == 2:  # QPSK also has a closed form
        assert abs(ours / theoretical_ber("qpsk", model, snr_db) - 1) < 0.1
