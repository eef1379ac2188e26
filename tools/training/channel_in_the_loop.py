"""The real channel inside a training loop.

Channel realizations (fading coefficients per coherence block, and noise) are
drawn by the channel emulator's own ChannelEmulator, exactly as the service
draws them; they are then applied to the encoder's torch symbols, y = h x + n,
so gradients flow through x. The receiver side is the service's own MMSE
equalizer with perfect CSI (common/phy/csi.py's `mmse_weights`, applied to the torch
symbols), giving the decoder the estimate and its error variance per symbol,
the same inputs it gets in the receiver service.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from semcom.channel_emulator.emulator import ChannelConfig, ChannelEmulator
from semcom.common.models.jscc import from_symbols, to_symbols
from semcom.common.phy.csi import mmse_weights
from semcom.common.phy.fading_layout import expand
from semcom.common.wire.frames import Frame, SymbolBlock


class ChannelInTheLoop:
    """Per item: a channel model drawn from `models` and an SNR uniform in `snr_range_db`.

    Call with complex symbols [B, k] (unit power per item); returns
    (MMSE estimate complex [B, k], error variance float [B, k]).
    """

    def __init__(self, models: tuple[str, ...] = ("awgn", "rayleigh"), snr_range_db: tuple[float, float] = (-5.0, 20.0),
                 seed: int = 0, coherence_symbols: int = 0):
        self.snr_range_db = snr_range_db
        self._rng = np.random.default_rng(seed)
        self._emulators = [ChannelEmulator(ChannelConfig(model=m, seed=seed + i, csi="perfect",
                                                         coherence_symbols=coherence_symbols))
                           for i, m in enumerate(models)]

    def draw_snrs(self, count: int) -> list[float]:
        """SNRs in dB uniform in the range, one per item, for encoders told the SNR before they send."""
        return self._rng.uniform(*self.snr_range_db, count).tolist()

    def __call__(self, symbols: torch.Tensor, snr_db: float | Sequence[float] | None = None
                 ) -> tuple[torch.Tensor, torch.Tensor]:
        """snr_db: one for every item, one per item, or None: drawn per item."""
        estimates, variances = [], []
        for index, x in enumerate(symbols):
            emulator = self._emulators[self._rng.integers(len(self._emulators))]
            if snr_db is None:
                snr = float(self._rng.uniform(*self.snr_range_db))
            else:
                snr = float(snr_db) if np.isscalar(snr_db) else float(snr_db[index])
            emulator.configure(snr_db=snr)
            sent = x.detach().cpu().numpy().astype(np.complex64)
            noisy, fading = emulator.apply(Frame("train", "train", 0, 1, sent.size, [SymbolBlock("x", sent)]))
            h = np.ones_like(sent) if fading is None else expand(fading, sent.size, emulator.config.coherence_symbols)
            noise = noisy.blocks[0].symbols - h * sent
            weights, error = mmse_weights(h, noisy.channel.noise_variance)
            received = torch.from_numpy(h).to(x.device) * x + torch.from_numpy(noise).to(x.device)
            estimates.append(torch.from_numpy(weights).to(x.device) * received)
            variances.append(torch.from_numpy(error).to(x.device))
        return torch.stack(estimates), torch.stack(variances).float()

    def features(self, encoder_output: torch.Tensor, snr_db: float | Sequence[float] | None = None) -> torch.Tensor:
        """An encoder's output [B, C, h, w] through the channel, as its decoder receives it (the
        receiver's layout: models.jscc.from_symbols)."""
        estimate, variance = self(to_symbols(encoder_output), snr_db)
        return from_symbols(estimate, variance, tuple(encoder_output.shape[1:]))
