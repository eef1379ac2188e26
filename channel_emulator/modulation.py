"""Uncoded BPSK and QPSK with hard decisions, unit symbol energy (Es = 1):
a check of the channel against textbook bit error rates.

Closed forms with gamma = Es/N0 (linear):
  BPSK, AWGN:      Q(sqrt(2 gamma))
  QPSK, AWGN:      Q(sqrt(gamma))              (per bit; Gray mapping)
  BPSK, Rayleigh:  (1 - sqrt(gamma / (1 + gamma))) / 2           (coherent, perfect CSI)
  QPSK, Rayleigh:  (1 - sqrt((gamma/2) / (1 + gamma/2))) / 2
"""

from __future__ import annotations

import math

import numpy as np


def q_function(x: float) -> float:
    return 0.5 * math.erfc(x / math.sqrt(2.0))


def bpsk_modulate(bits: np.ndarray) -> np.ndarray:
    """bits (0/1) [n] -> complex64 [n], 0 -> +1, 1 -> -1."""
    return (1.0 - 2.0 * bits).astype(np.complex64)


def bpsk_demodulate(symbols: np.ndarray) -> np.ndarray:
    return (symbols.real < 0).astype(np.uint8)


def qpsk_modulate(bits: np.ndarray) -> np.ndarray:
    """bits [2n] -> complex64 [n], Gray mapped: I from even bits, Q from odd bits."""
    return ((1.0 - 2.0 * bits[0::2]) + 1j * (1.0 - 2.0 * bits[1::2])).astype(np.complex64) / np.float32(math.sqrt(2))


def qpsk_demodulate(symbols: np.ndarray) -> np.ndarray:
    bits = np.empty(2 * symbols.size, dtype=np.uint8)
    bits[0::2], bits[1::2] = symbols.real < 0, symbols.imag < 0
    return bits


def theoretical_ber(modulation: str, channel: str, snr_db: float) -> float:
    gamma = 10.0 ** (snr_db / 10.0)
    per_dimension = gamma if modulation == "bpsk" else gamma / 2.0  # QPSK splits Es over I and Q
    if channel == "awgn":
        return q_function(math.sqrt(2.0 * per_dimension))
    if channel == "rayleigh":
        return 0.5 * (1.0 - math.sqrt(per_dimension / (1.0 + per_dimension)))
    raise ValueError(f"no closed form for {modulation} over {channel}")
