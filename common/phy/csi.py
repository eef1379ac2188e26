"""Pilots, channel estimation and equalization: shared by the transmitter
(pilot insertion) and the receiver (estimation, equalization, pilot removal).

Pilot layout: with pilot spacing P > 0, one pilot symbol (1 + 0j, unit power)
precedes every P data symbols of the frame's symbol stream (all blocks
concatenated in order), so the stream reads p d1..dP p d1..dP ... and the
last group may be shorter. Pilots are channel uses: they count in k.

Equalization of y = h x + n with n ~ CN(0, N0):
  ZF:   x_hat = y / h,                    error variance N0 / |h|^2 (unbiased)
  MMSE: x_hat = conj(h) y / (|h|^2 + N0),  the linear MMSE estimate for unit-power x
"""

from __future__ import annotations

import numpy as np

PILOT = np.complex64(1.0)
EQUALIZERS = ("zf", "mmse")


def with_pilots_length(data_symbols: int, spacing: int) -> int:
    return data_symbols + (-(-data_symbols // spacing) if spacing > 0 else 0)


def insert_pilots(data: np.ndarray, spacing: int) -> np.ndarray:
    """complex64 [n] data -> [with_pilots_length(n, spacing)] stream with pilots."""
    if spacing <= 0:
        return data
    positions = np.arange(0, data.size, spacing)
    return np.insert(data, positions, PILOT).astype(np.complex64)


def pilot_mask(length: int, spacing: int) -> np.ndarray:
    """Boolean [length]: True where the stream holds a pilot."""
    mask = np.zeros(length, dtype=bool)
    if spacing > 0:
        mask[:: spacing + 1] = True
    return mask


def estimate_from_pilots(received: np.ndarray, spacing: int) -> np.ndarray:
    """Least-squares estimate of h for every symbol: y_pilot / pilot, held
    until the next pilot. complex64 [len(received)]."""
    if spacing <= 0:
        raise ValueError("the frame has no pilots to estimate the channel from")
    estimates = received[:: spacing + 1] / PILOT
    return np.repeat(estimates, spacing + 1)[: received.size].astype(np.complex64)


def equalize(received: np.ndarray, h: np.ndarray, noise_variance: float, method: str) -> tuple[np.ndarray, np.ndarray]:
    """Equalizes per symbol; returns (estimate complex64 [n], error variance float32 [n]).

    The error variance is that of an unbiased estimate (N0/|h|^2) for ZF, and
    the MMSE error N0/(|h|^2 + N0) for MMSE.
    """
    gain = np.abs(h) ** 2
    if method == "mmse" and noise_variance == 0:
        method = "zf"  # without noise the MMSE estimate is the ZF one
    if method == "zf":
        with np.errstate(divide="ignore", invalid="ignore"):
            estimate = np.where(gain > 0, received / np.where(gain > 0, h, 1), 0)
            error = np.where(gain > 0, noise_variance / gain, np.inf)
    elif method == "mmse":
        estimate = np.conj(h) * received / (gain + noise_variance)
        error = mmse_error(gain, noise_variance)
    else:
        raise ValueError(f"unknown equalizer '{method}'; use one of {EQUALIZERS}")
    return estimate.astype(np.complex64), np.asarray(error, dtype=np.float32)


def mmse_weights(h: np.ndarray, noise_variance: float) -> tuple[np.ndarray, np.ndarray]:
    """The linear MMSE equalizer per symbol: (w complex64 [n], error variance float32 [n]) with
    x_hat = w y, w = conj(h) / (|h|^2 + N0). Training applies w to its torch symbols, so that the
    decoders learn on the receiver's very estimates."""
    gain = np.abs(h) ** 2
    weights = np.conj(h) / (gain + noise_variance)
    return weights.astype(np.complex64), np.asarray(mmse_error(gain, noise_variance), dtype=np.float32)


def mmse_error(gain: np.ndarray, noise_variance: float) -> np.ndarray:
    """The MMSE estimate's error variance per symbol, N0 / (|h|^2 + N0), for channel gains |h|^2."""
    return noise_variance / (gain + noise_variance) if noise_variance > 0 else np.zeros_like(gain)
