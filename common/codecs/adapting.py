"""The learned codecs' condition-aware adapters (models/adapters.py) on the encode and decode paths.

A codec that can be adapted lists `adapted`: (block, model) for each block a learned JSCC model sends.
The transmitter encodes with adapters when asked (encode option adapters=True): each model's encoder merged
for (its design SNR, the block's k/n), and the frame carries that SNR and the adapters' versions in its side
information (adapters.SIDE_INFO). The receiver decodes such a frame with the same adapters, each decoder
merged for (the SNR of the frame's channel state, or the carried one where it has none, the block's k/n);
a frame without that side information decodes with the plain networks, as before. A frame of other adapter
versions than the receiver's is refused (FAILED_PRECONDITION), never decoded by luck.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..models import adapters
from ..models.adapters import SNR_KEY, VERSION_KEY, Condition, block_ratio
from ..models.store import WEIGHTS_DIR, WeightsMissing
from ..phy.csi import pilot_mask
from ..serving.errors import FailedPrecondition, InvalidInput
from ..wire.frames import Frame, SymbolBlock

SIDES = ("transmit", "receive")


@dataclass(frozen=True)
class Choice:
    """What one model's gate chose for a frame, at one end: its condition (the band served) and the expert
    weights [K]."""

    model: str
    condition: Condition
    gate: np.ndarray

    @property
    def expert(self) -> int:
        """The expert with the largest weight (the metric's label)."""
        return int(np.argmax(self.gate))


def side_info(models: tuple[str, ...], design_snr_db: float) -> dict[str, np.ndarray]:
    """What an adapted frame carries: the transmitter's design SNR and its adapters' versions, in block order."""
    if not math.isfinite(design_snr_db):
        raise InvalidInput(f"design_snr_db: {design_snr_db} is not finite")
    return {SNR_KEY: np.array([design_snr_db], np.float32),
            VERSION_KEY: np.concatenate([adapters.version(model) for model in models])}


def is_adapted(frame: Frame) -> bool:
    return SNR_KEY in frame.side_info


def encoder(model: str, condition: Condition | None):
    """Model `model`'s encoder (torch): the shipped one, or with its adapters merged for `condition`."""
    from ..models import store

    if condition is None:
        return store.load(model)["encoder"]
    return adapter_set(model).network("encoder", condition)


def sent_symbols(block: SymbolBlock, pilot_spacing: int) -> int:
    """The data symbols a block holds, pilots left out and the budget's cut counted: the same number at the
    transmitter (after pilots went in) and at the receiver (before or after equalization)."""
    total = block.symbols.size + block.erased_tail
    if block.noise_variance is not None or not pilot_spacing:  # equalized: pilots already removed
        return total
    return int(total - pilot_mask(total, pilot_spacing).sum())


def condition(frame: Frame, block: str, padded: tuple[int, int], side: str) -> Condition | None:
    """The condition a model of block `block` is gated on at `side` (SIDES), None for a plain frame."""
    if not is_adapted(frame):
        return None
    design = _design_snr(frame)
    snr = design if side == "transmit" or frame.channel is None else frame.channel.snr_db
    return Condition(float(snr), block_ratio(sent_symbols(frame.block(block), frame.pilot_spacing), *padded))


def check_versions(frame: Frame, models: tuple[str, ...], weights_dir: Path = WEIGHTS_DIR) -> None:
    """Raises FailedPrecondition unless an adapted frame's adapters are this end's (those in weights_dir)."""
    carried = frame.side_info[VERSION_KEY]
    try:
        expected = np.concatenate([adapters.version(model, weights_dir) for model in models])
    except WeightsMissing as error:
        raise FailedPrecondition(f"adapters: {error}") from error
    if carried.dtype != np.uint8 or carried.shape != expected.shape:
        raise InvalidInput(f"frame.side_info['{VERSION_KEY}']: expected uint8 [{expected.size}], got "
                           f"{carried.dtype} {list(carried.shape)}")
    if not np.array_equal(carried, expected):
        raise FailedPrecondition(f"frame {frame.frame_id} was encoded with adapters {carried.tobytes().hex()}, this "
                                 f"receiver has {expected.tobytes().hex()}: ship the same adapters to both ends")


def choices(frame: Frame, adapted: tuple[tuple[str, str], ...], padded: tuple[int, int], side: str,
            gate: Callable[[str, Condition], np.ndarray] | None = None) -> list[Choice]:
    """Each adapted model's gate for the frame at `side` (empty for a plain frame): the encoder's at the
    transmitter, the decoder's at the receiver, where `gate` (model, condition) -> expert weights gives it
    (the receiver's runtime: DecoderRuntime.adapter_gate)."""
    found = []
    for block, model in adapted:
        chosen = condition(frame, block, padded, side)
        if chosen is not None:
            weights = adapter_set(model).gate("encoder", chosen) if side == "transmit" else gate(model, chosen)
            found.append(Choice(model, chosen.band(), weights))
    return found


def _design_snr(frame: Frame) -> float:
    value = frame.side_info[SNR_KEY]
    if value.dtype != np.float32 or value.shape != (1,) or not math.isfinite(float(value[0])):
        raise InvalidInput(f"frame.side_info['{SNR_KEY}']: expected one finite float32, got {value.dtype} "
                           f"{list(value.shape)}")
    return float(value[0])


def adapter_set(model: str, weights_dir: Path = WEIGHTS_DIR):
    """Model `model`'s shipped adapters; missing or stale, FAILED_PRECONDITION naming the fix."""
    try:
        return adapters.load(model, weights_dir)
    except WeightsMissing as error:
        raise FailedPrecondition(f"adapters: {error}") from error
