"""The channel as a library: configuration, the bandwidth budget, and the
channel model applied to whole frames; the link (timing, loss, queue) is in
link.py and shares the configuration.

The service wraps one ChannelEmulator; training and sweeps use it in-process.
Configuration changes and frame applications are serialized by a lock, so a
seed reproduces the same channel for the same sequence of frames.

A frame's blocks are concatenated, in order, into one symbol stream; fading
coherence blocks run over that stream, and the budget truncates its tail.
"""

from __future__ import annotations

import logging
import math
import threading
from dataclasses import asdict, dataclass, fields, replace

import numpy as np

from semcom.common.phy.csi import EQUALIZERS
from semcom.common.phy.fading_layout import expand
from semcom.common.serving.config import setting
from semcom.common.serving.errors import InvalidInput, LimitExceeded, quoted
from semcom.common.wire.frames import CSI_MODES, ChannelState, Frame, SymbolBlock

from .awgn import AWGN, measured_snr_db, noise_variance
from .fading import RayleighFading, RicianFading
from .link import Link, LinkConfig

log = logging.getLogger(__name__)

MODELS = ("awgn", "rayleigh", "rician")
OVER_BUDGET = ("reject", "truncate")


@dataclass(frozen=True)
class ChannelConfig:
    """The whole channel, declared once: the serve flags, SEMCOM_* variables, `semcom channel set|get`
    and the proto conversion (channel_emulator.proto's ChannelConfig, one field each) follow from it."""

    model: str = setting("awgn", "channel model: awgn, rayleigh or rician")
    snr_db: float = setting(10.0, "SNR, Es/N0 in dB")
    seed: int | None = setting(None, "seed of fading, noise and link randomness (unset: fresh entropy)")
    k_factor: float = setting(0.0, "Rician K factor, LINEAR (not dB): line-of-sight over scattered power")
    coherence_symbols: int = setting(0, "symbols per fading block: 0 one per frame, 1 fast fading")
    csi: str = setting("perfect", "receiver channel knowledge: perfect, none or estimated (from pilots)")
    equalizer: str = setting("mmse", "receiver equalizer: zf or mmse")
    max_channel_uses: int = setting(0, "bandwidth budget, complex channel uses per frame (0: unlimited)")
    over_budget: str = setting("reject", "a frame over the budget is: reject (RESOURCE_EXHAUSTED) or truncate")
    symbol_rate: float = setting(0.0, "link rate in complex channel uses per second (0: infinitely fast)")
    delay_seconds: float = setting(0.0, "link propagation delay")
    jitter_seconds: float = setting(0.0, "extra delay drawn uniformly from [0, jitter]")
    loss_probability: float = setting(0.0, "probability a frame is lost on the link (the client gets DATA_LOSS)")
    queue_frames: int = setting(64, "frames that may wait for the link; one more gets RESOURCE_EXHAUSTED")

    @property
    def link(self) -> LinkConfig:
        return LinkConfig(self.symbol_rate, self.delay_seconds, self.jitter_seconds, self.loss_probability,
                          self.queue_frames)

    def describe(self) -> str:
        """`key=value ...` of every field, for logs and the CLI."""
        return " ".join(f"{k}={'unset' if v is None else f'{v:g}' if isinstance(v, float) else v}"
                        for k, v in asdict(self).items())


CONFIG_FIELDS = tuple(f.name for f in fields(ChannelConfig))


class ChannelEmulator:
    """Applies the configured channel to frames.

    Args:
        config: initial configuration.
        snr_range_db: (low, high) SNRs that may be configured, in dB.
    """

    def __init__(self, config: ChannelConfig = ChannelConfig(), snr_range_db: tuple[float, float] = (-30.0, 50.0)):
        self.snr_range_db = snr_range_db
        self._lock = threading.Lock()
        self._validate(config)
        self._config = config
        self._model = _make_model(config)
        self.link = Link(config.link, seed=_derived_seed(config.seed, 1))

    @property
    def config(self) -> ChannelConfig:
        return self._config

    def configure(self, **changes) -> ChannelConfig:
        """Changes the given settings (None: keep). A new seed, model, K factor or
        coherence restarts the random generators; the change is logged."""
        unknown = set(changes) - set(CONFIG_FIELDS)
        if unknown:
            raise InvalidInput(f"{sorted(unknown)[0]}: not a channel setting")
        with self._lock:
            new = replace(self._config, **{k: v for k, v in changes.items() if v is not None})
            self._validate(new)
            if any(changes.get(k) is not None for k in ("model", "seed", "k_factor", "coherence_symbols")):
                self._model = _make_model(new)
            self.link.reconfigure(new.link, seed=_derived_seed(new.seed, 1) if changes.get("seed") is not None else None)
            log.info("channel configured: %s", new.describe())
            self._config = new
            return new

    def apply(self, frame: Frame) -> tuple[Frame, np.ndarray | None]:
        """The channel's effect on one frame.

        Returns a copy of `frame` after the budget, fading and noise, with the
        channel state attached, and the fading coefficients it drew (complex64
        [blocks]; None for AWGN) whether or not the receiver is given them.
        """
        sizes = [b.symbols.size for b in frame.blocks]
        with self._lock:
            config, model = self._config, self._model
            kept = self._within_budget(sum(sizes), config)
            sent = np.concatenate([b.symbols for b in frame.blocks])[:kept]
            if isinstance(model, AWGN):
                received, fading = model(sent, config.snr_db), None
            else:
                received, fading = model(sent, config.snr_db)
        blocks, offset = [], 0
        for block, size in zip(frame.blocks, sizes):
            arrived = min(size, max(0, kept - offset))
            blocks.append(SymbolBlock(block.name, received[offset:offset + arrived], block.power_scale,
                                      erased_tail=block.erased_tail + size - arrived))
            offset += size
        state = ChannelState(
            model=config.model,
            snr_db=config.snr_db,
            noise_variance=noise_variance(config.snr_db),
            measured_snr_db=measured_snr_db(sent, _noise_free(received, sent, fading, config)) if kept else math.nan,
            k_factor=config.k_factor if config.model == "rician" else 0.0,
            coherence_symbols=config.coherence_symbols,
            csi=config.csi,
            equalizer=config.equalizer,
            fading=fading if config.csi == "perfect" else None,
            channel_uses=kept,
            bandwidth_ratio=kept / frame.source_values,
            truncated_symbols=sum(sizes) - kept,
        )
        return replace(frame, blocks=blocks, channel=state), fading

    def _within_budget(self, channel_uses: int, config: ChannelConfig) -> int:
        budget = config.max_channel_uses
        if budget == 0 or channel_uses <= budget:
            return channel_uses
        if config.over_budget == "reject":
            raise LimitExceeded(
                f"frame: {channel_uses} complex channel uses, over the channel's bandwidth budget of {budget} "
                "(max_channel_uses; over_budget=reject)"
            )
        return budget

    def _validate(self, config: ChannelConfig) -> None:
        def require(ok: bool, message: str) -> None:
            if not ok:
                raise InvalidInput(message)

        require(config.model in MODELS, f"model: unknown channel model '{quoted(config.model)}'; available: {', '.join(MODELS)}")
        low, high = self.snr_range_db
        require(math.isfinite(config.snr_db) and low <= config.snr_db <= high,
                f"snr_db: {config.snr_db} dB is outside the configured range [{low}, {high}] dB")
        require(config.seed is None or 0 <= config.seed < 2**64, f"seed: {config.seed} is not an unsigned 64-bit integer")
        require(math.isfinite(config.k_factor) and config.k_factor >= 0,
                f"k_factor: {config.k_factor} must be a finite linear value >= 0 (not dB)")
        require(config.coherence_symbols >= 0, f"coherence_symbols: {config.coherence_symbols} must be >= 0")
        require(config.csi in CSI_MODES, f"csi: '{config.csi}', expected one of {', '.join(CSI_MODES)}")
        require(config.equalizer in EQUALIZERS, f"equalizer: '{config.equalizer}', expected one of {', '.join(EQUALIZERS)}")
        require(config.max_channel_uses >= 0, f"max_channel_uses: {config.max_channel_uses} must be >= 0")
        require(config.over_budget in OVER_BUDGET,
                f"over_budget: '{config.over_budget}', expected one of {', '.join(OVER_BUDGET)}")
        try:
            config.link.validate()
        except ValueError as error:
            raise InvalidInput(str(error)) from None


def _make_model(config: ChannelConfig):
    seed = _derived_seed(config.seed, 0)
    if config.model == "awgn":
        return AWGN(seed=seed)
    if config.model == "rayleigh":
        return RayleighFading(config.coherence_symbols, seed=seed)
    return RicianFading(config.k_factor, config.coherence_symbols, seed=seed)


def _derived_seed(seed: int | None, stream: int) -> list[int] | None:
    """Independent generators for the channel model and the link from one seed."""
    return None if seed is None else [seed, stream]


def _noise_free(received: np.ndarray, sent: np.ndarray, fading: np.ndarray | None, config: ChannelConfig) -> np.ndarray:
    """sent + noise: removes the fading so measured SNR is the noise's Es/N0."""
    if fading is None:
        return received
    h = expand(fading, sent.size, config.coherence_symbols)
    return sent + (received - h * sent)
