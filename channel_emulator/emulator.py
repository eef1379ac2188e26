"""The channel as a library: configuration plus application to whole frames.

The service wraps one ChannelEmulator; training and sweeps use it in-process.
Configuration changes and frame applications are serialized by a lock, so a
seed reproduces the same noise for the same sequence of frames.
"""

from __future__ import annotations

import logging
import math
import threading
from dataclasses import dataclass, replace

import numpy as np

from semcom.common.errors import InvalidInput
from semcom.common.frames import ChannelState, Frame, SymbolBlock

from .awgn import AWGN, measured_snr_db, noise_variance

log = logging.getLogger(__name__)

MODELS = {"awgn": AWGN}


@dataclass(frozen=True)
class ChannelConfig:
    model: str = "awgn"
    snr_db: float = 10.0
    seed: int | None = None


class ChannelEmulator:
    """Applies the configured channel model to every block of a frame.

    Args:
        config: initial configuration.
        snr_range_db: (low, high) SNRs that may be configured, in dB.
    """

    def __init__(self, config: ChannelConfig = ChannelConfig(), snr_range_db: tuple[float, float] = (-30.0, 50.0)):
        self.snr_range_db = snr_range_db
        self._lock = threading.Lock()
        self._validate(config)
        self._config = config
        self._model = MODELS[config.model](seed=config.seed)

    @property
    def config(self) -> ChannelConfig:
        return self._config

    def configure(self, *, model: str | None = None, snr_db: float | None = None, seed: int | None = None) -> ChannelConfig:
        """Changes the given settings; a new seed or model restarts the noise generator."""
        with self._lock:
            new = replace(
                self._config,
                **{k: v for k, v in {"model": model, "snr_db": snr_db, "seed": seed}.items() if v is not None},
            )
            self._validate(new)
            if model is not None or seed is not None:
                self._model = MODELS[new.model](seed=new.seed)
            log.info("channel configured: %s (was %s)", new, self._config)
            self._config = new
            return new

    def apply(self, frame: Frame) -> Frame:
        """Returns a copy of `frame` with noisy symbols and the channel state attached."""
        with self._lock:
            config, model = self._config, self._model
            noisy = [SymbolBlock(b.name, model(b.symbols, config.snr_db), b.power_scale) for b in frame.blocks]
        sent = np.concatenate([b.symbols for b in frame.blocks])
        received = np.concatenate([b.symbols for b in noisy])
        state = ChannelState(
            model=config.model,
            snr_db=config.snr_db,
            noise_variance=noise_variance(config.snr_db),
            measured_snr_db=measured_snr_db(sent, received),
        )
        return replace(frame, blocks=noisy, channel=state)

    def _validate(self, config: ChannelConfig) -> None:
        if config.model not in MODELS:
            raise InvalidInput(f"model: unknown channel model '{config.model}'; available: {', '.join(MODELS)}")
        low, high = self.snr_range_db
        if not math.isfinite(config.snr_db) or not low <= config.snr_db <= high:
            raise InvalidInput(f"snr_db: {config.snr_db} dB is outside the configured range [{low}, {high}] dB")
        if config.seed is not None and not 0 <= config.seed < 2**64:
            raise InvalidInput(f"seed: {config.seed} is not an unsigned 64-bit integer")
