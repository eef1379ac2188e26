"""Statistical tests of the fading models, fixed seeds, large samples."""

import math

import numpy as np
import pytest
from scipy import stats

from semcom.channel_emulator.awgn import noise_variance
from semcom.channel_emulator.fading import RayleighFading, RicianFading, rician_coefficients
from semcom.common.phy.fading_layout import blocks_of, expand

N = 200_000


def rice_distribution(k_factor: float):
    """|h| for h = sqrt(K/(K+1)) + CN(0, 1/(K+1)): Rice with nu and sigma^2 = 1/(2(K+1))."""
    sigma = math.sqrt(0.5 / (k_factor + 1.0))
    nu = math.sqrt(k_factor / (k_factor + 1.0))
    return stats.rice(b=nu / sigma, scale=sigma)


def coefficients(model, count):
    """Fading draws through the model's public call: one block per symbol."""
    _, h = model(np.ones(count, np.complex64), 30.0)
    return h


def test_rayleigh_amplitude_passes_ks_against_rayleigh():
    h = coefficients(RayleighFading(coherence_symbols=1, seed=1), N)
    assert stats.kstest(np.abs(h), stats.rayleigh(scale=math.sqrt(0.5)).cdf).pvalue > 0.01


@pytest.mark.parametrize("k_factor", [0.5, 3.0, 10.0])
def test_rician_amplitude_passes_ks_against_rice_with_its_k(k_factor):
    h = coefficients(RicianFading(k_factor, coherence_symbols=1, seed=2), N)
    assert stats.kstest(np.abs(h), rice_distribution(k_factor).cdf).pvalue > 0.01


@pytest.mark.parametrize("true_k,tested_k", [(3.0, 4.0), (3.0, 2.0), (0.0, 1.0), (10.0, 8.0)])
def test_ks_rejects_a_wrong_k_factor(true_k, tested_k):
    """The KS tests have teeth: the same draws fail against a nearby wrong K."""
    h = coefficients(RicianFading(true_k, coherence_symbols=1, seed=3), N)
    assert stats.kstest(np.abs(h), rice_distribution(tested_k).cdf).pvalue < 1e-6


@pytest.mark.parametrize("model", [RayleighFading(1, seed=4), RicianFading(0.5, 1, seed=5),
                                   RicianFading(3.0, 1, seed=6), RicianFading(30.0, 1, seed=7)])
def test_every_fading_model_has_unit_mean_power(model):
    h = coefficients(model, N)
    assert np.mean(np.abs(h) ** 2) == pytest.approx(1.0, abs=0.01)


def test_rician_line_of_sight_mean_is_sqrt_k_over_k_plus_one():
    h = rician_coefficients(np.random.default_rng(8), N, k_factor=3.0)
    assert np.mean(h) == pytest.approx(math.sqrt(3 / 4), abs=0.005)


@pytest.mark.parametrize("coherence", [0, 1, 7, 100])
def test_block_fading_is_constant_within_a_block_and_independent_across_blocks(coherence):
    n = 50_000 if coherence else 1000
    x = np.exp(2j * np.pi * np.random.default_rng(9).random(n)).astype(np.complex64)  # unit modulus
    y, h = RayleighFading(coherence, seed=10)(x, snr_db=300.0)  # noise 1e-30: y = h x to float precision
    assert h.size == blocks_of(n, coherence)
    per_symbol = y / x
    np.testing.assert_allclose(per_symbol, expand(h, n, coherence), rtol=1e-5, atol=1e-6)
    if coherence == 0:
        assert np.ptp(per_symbol.real) < 1e-5 and np.ptp(per_symbol.imag) < 1e-5  # one h for the frame
    else:
        length = coherence
        within = per_symbol[: (n // length) * length].reshape(-1, length)
        assert np.max(np.abs(within - within[:, :1])) < 1e-5
        # Consecutive blocks uncorrelated: |rho| within 5 standard errors of 0.
        rho = np.mean(h[1:] * np.conj(h[:-1])) / np.mean(np.abs(h) ** 2)
        assert abs(rho) < 5 / math.sqrt(h.size)


def test_fading_channel_noise_is_the_configured_n0():
    x = np.exp(2j * np.pi * np.random.default_rng(11).random(N)).astype(np.complex64)
    y, h = RicianFading(2.0, coherence_symbols=50, seed=12)(x, snr_db=7.0)
    noise = y - expand(h, N, 50) * x
    assert np.mean(np.abs(noise) ** 2) == pytest.approx(noise_variance(7.0), rel=0.01)


def test_fading_is_reproducible_under_a_seed():
    x = np.ones(1000, np.complex64)
    first, second = RicianFading(1.0, 10, seed=13)(x, 5.0), RicianFading(1.0, 10, seed=13)(x, 5.0)
    assert np.array_equal(first[0], second[0]) and np.array_equal(first[1], second[1])
