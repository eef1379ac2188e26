"""Complex additive white Gaussian noise.

Conventions (DESIGN.md section 4): complex baseband; the transmitter
normalizes symbols to unit average power, Es = E|x|^2 = 1; SNR is Es/N0 in dB;
the noise is circularly symmetric CN(0, N0) with N0 = 10^(-SNR/10), that is
N0/2 per real dimension.
"""

from __future__ import annotations

import math

import numpy as np


def noise_variance(snr_db: float) -> float:
    """N0 per complex symbol for unit-power symbols at Es/N0 = snr_db."""
    return 10.0 ** (-snr_db / 10.0)


def measured_snr_db(sent: np.ndarray, received: np.ndarray) -> float:
    """10 log10(mean|x|^2 / mean|y - x|^2) over all symbols; inf without noise."""
    noise_power = float(np.mean(np.abs(received - sent) ** 2))
    signal_power = float(np.mean(np.abs(sent) ** 2))
    if noise_power == 0.0:
        return math.inf
    if signal_power == 0.0:
        return -math.inf
    return 10.0 * math.log10(signal_power / noise_power)


class AWGN:
    """y = x + n with n ~ CN(0, N0), N0 = 10^(-snr_db/10).

    Args:
        seed: seed of the noise generator; the same seed and the same sequence
            of calls give the same noise.
        rng: a generator to draw from instead (shared with a fading model, so
            one seed fixes the whole channel).

    Call with:
        x: complex64 array of any shape, unit average power (Es = 1).
        snr_db: Es/N0 in dB, a float.

    Returns:
        y: complex64 array of x's shape.
    """

    model = "awgn"

    def __init__(self, seed: int | None = None, rng: np.random.Generator | None = None):
        self._rng = rng if rng is not None else np.random.default_rng(seed)

    def __call__(self, x: np.ndarray, snr_db: float) -> np.ndarray:
        std_per_real_dimension = math.sqrt(noise_variance(snr_db) / 2.0)
        noise = self._rng.standard_normal((2, *x.shape), dtype=np.float32) * np.float32(std_per_real_dimension)
        return (x + (noise[0] + 1j * noise[1])).astype(np.complex64)
