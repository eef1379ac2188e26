"""Flat fading: Rayleigh and Rician, block or fast.

    y = h x + n,   n ~ CN(0, N0),   E|h|^2 = 1

Rayleigh: h ~ CN(0, 1). Rician with K factor K (linear, not dB: the power
ratio of the line-of-sight part to the scattered part; K = 0 is Rayleigh):
h = sqrt(K/(K+1)) + sqrt(1/(K+1)) CN(0, 1), line-of-sight phase 0.

Coherence: one coefficient per block of `coherence_symbols` consecutive
symbols, independent across blocks (common/phy/fading_layout.py). 0 means one
coefficient for the whole frame (block fading per frame); 1 is fast fading.
"""

from __future__ import annotations

import math

import numpy as np

from semcom.common.phy.fading_layout import blocks_of, expand

from .awgn import AWGN


def rician_coefficients(rng: np.random.Generator, count: int, k_factor: float) -> np.ndarray:
    """`count` i.i.d. fading coefficients with E|h|^2 = 1 (complex64)."""
    scattered = (rng.standard_normal(count) + 1j * rng.standard_normal(count)) * math.sqrt(0.5 / (k_factor + 1.0))
    return (math.sqrt(k_factor / (k_factor + 1.0)) + scattered).astype(np.complex64)


class RicianFading:
    """Flat Rician block or fast fading plus complex AWGN.

    Args:
        k_factor: linear K factor >= 0 (0: Rayleigh).
        coherence_symbols: symbols per coherence block (0: the whole frame, 1: fast fading).
        seed: seeds fading and noise together.

    Call with:
        x: complex64 [n] symbols, unit average power.
        snr_db: Es/N0 in dB.

    Returns:
        y: complex64 [n] received symbols.
        h: complex64 [blocks_of(n, coherence_symbols)] coefficients, one per block.
    """

    model = "rician"

    def __init__(self, k_factor: float = 0.0, coherence_symbols: int = 0, seed: int | None = None):
        if not (math.isfinite(k_factor) and k_factor >= 0):
            raise ValueError(f"k_factor must be a finite linear value >= 0, got {k_factor}")
        if coherence_symbols < 0:
            raise ValueError(f"coherence_symbols must be >= 0, got {coherence_symbols}")
        self.k_factor = k_factor
        self.coherence_symbols = coherence_symbols
        self._rng = np.random.default_rng(seed)
        self._noise = AWGN(rng=self._rng)

    def __call__(self, x: np.ndarray, snr_db: float) -> tuple[np.ndarray, np.ndarray]:
        h = rician_coefficients(self._rng, blocks_of(x.size, self.coherence_symbols), self.k_factor)
        faded = (expand(h, x.size, self.coherence_symbols) * x).astype(np.complex64)
        return self._noise(faded, snr_db), h


class RayleighFading(RicianFading):
    """Flat Rayleigh block or fast fading (h ~ CN(0, 1)) plus complex AWGN; see RicianFading."""

    model = "rayleigh"

    def __init__(self, coherence_symbols: int = 0, seed: int | None = None):
        super().__init__(0.0, coherence_symbols, seed)
