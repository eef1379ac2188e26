"""Condition-aware adapters (CALA, models/lora.py) of the channel codecs, as shipped artifacts.

Each adapted codec model (ADAPTED_MODELS) ships `<model>_adapters.pt`, the low-rank
updates and gate of its encoder and decoder, beside a card (`<model>_adapters.card.json`:
bytes, rank, experts, gate, conditions, the base model's sha256, metrics), made by
`semcom train adapters --base MODEL`. Loading checks the file's sha256 and refuses
an adapter made for another version of its base: its updates only mean something
on the weights they were trained on.

The condition. A frame's condition is (SNR in dB, k/n of the block): the transmitter
gates its encoder on its design SNR, the receiver its decoder on the channel state the
frame carries (its configured SNR), or, without one, on the transmitter's design SNR,
which an adapted frame carries in its side information (SNR_KEY) with the adapter's
version (VERSION_KEY). k/n is the block's symbols over the padded image's source
values, which both ends compute from the frame itself.

Serving runs merged networks: one copy of the network per condition band (the SNR
rounded to SNR_STEP_DB, the rate exact), made on first use and kept (MERGED_CACHE per
part), so an adapted frame costs no more to decode than a plain one.
"""

from __future__ import annotations

import math
import threading
from collections import OrderedDict
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import numpy as np

from . import store
from .store import WEIGHTS_DIR, WeightsMissing

ADAPTED_MODELS = ("deep_jscc", "map_codec", "latent_codec")
GATES = ("cala", "single", "hard")  # how the experts are mixed (models/lora.py's Gate)
SNR_KEY, VERSION_KEY = "adapter_snr_db", "adapter_version"  # an adapted frame's side information
SIDE_INFO = (SNR_KEY, VERSION_KEY)
VERSION_BYTES = 6  # of the adapter file's sha256, in the frame: the receiver refuses a frame of another version
SNR_RANGE_DB = (-5.0, 20.0)  # trained over; served conditions are clamped to it
SNR_STEP_DB = 1.0  # serving band width
MERGED_CACHE = 16  # merged networks kept per part (a deep_jscc decoder is 4.6 MB)


def adapter_name(model: str) -> str:
    return f"{model}_adapters"


def fix(model: str) -> str:
    return f"semcom train adapters --base {model}"


@dataclass(frozen=True)
class Condition:
    """What the gate sees: the SNR (dB) and the bandwidth ratio k/n of the block."""

    snr_db: float
    bandwidth_ratio: float

    def band(self) -> Condition:
        """The serving band: the SNR clamped to the trained range and rounded to SNR_STEP_DB."""
        if not (math.isfinite(self.snr_db) and self.bandwidth_ratio > 0):
            raise ValueError(f"adapter condition {self}: SNR must be finite and k/n positive")
        low, high = SNR_RANGE_DB
        snr = min(max(self.snr_db, low), high)
        return Condition(round(snr / SNR_STEP_DB) * SNR_STEP_DB, round(self.bandwidth_ratio, 8))


def block_ratio(symbols: int, padded_height: int, padded_width: int) -> float:
    """k/n of a block: its complex symbols per source real value of the padded image."""
    return symbols / (padded_height * padded_width * 3)


def card(model: str, weights_dir: Path = WEIGHTS_DIR) -> dict:
    return store.card(adapter_name(model), weights_dir, fix(model))


def version(model: str, weights_dir: Path = WEIGHTS_DIR) -> np.ndarray:
    """The version an adapted frame carries (VERSION_KEY): uint8 [VERSION_BYTES] of the file's sha256."""
    return np.frombuffer(bytes.fromhex(card(model, weights_dir)["sha256"][:2 * VERSION_BYTES]), np.uint8).copy()


class AdapterSet:
    """One model's adapted parts (lora.Adapted, keyed "encoder", "decoder") and its card."""

    def __init__(self, parts: dict, description: dict):
        self.parts, self.card = parts, description
        self._merged: dict[str, OrderedDict] = {part: OrderedDict() for part in parts}
        self._lock = threading.Lock()  # encoders and decoders run on several threads

    def forget_merged(self) -> None:
        """Drops the merged networks (a benchmark times a band's first frame)."""
        with self._lock:
            for kept in self._merged.values():
                kept.clear()

    def gate(self, part: str, condition: Condition) -> np.ndarray:
        """The expert weights float32 [K] that part `part` uses at `condition`'s band."""
        import torch

        with torch.no_grad():
            return self.parts[part].gate(_tensor(condition.band())[None])[0].numpy()

    def network(self, part: str, condition: Condition):
        """Part `part` with the updates of `condition`'s band merged in (a plain torch module, eval mode)."""
        band = condition.band()
        with self._lock:
            kept = self._merged[part]
            if band in kept:
                kept.move_to_end(band)
                return kept[band]
        import torch

        with torch.no_grad():
            merged = self.parts[part].merged(_tensor(band))
        with self._lock:
            kept[band] = merged
            while len(kept) > MERGED_CACHE:
                kept.popitem(last=False)
        return merged


def _tensor(condition: Condition):
    import torch

    return torch.tensor([condition.snr_db, condition.bandwidth_ratio], dtype=torch.float32)


def build(model: str, base_parts: dict, description: dict) -> dict:
    """Fresh adapted parts of `model` over its base parts, as the card describes them (rank, experts, gate)."""
    from .lora import Adapted, Gate

    settings = description["adapter"]
    bands = tuple(tuple(edges) for edges in settings["bands"])
    return {part: Adapted(base_parts[part], Gate(settings["gate"], settings["experts"], bands=bands), settings["rank"])
            for part in settings["parts"]}


def load(model: str, weights_dir: Path = WEIGHTS_DIR) -> AdapterSet:
    """Model `model`'s shipped adapters over its shipped weights, checked (sha256, base version). Cached per
    version of both cards."""
    if model not in ADAPTED_MODELS:
        raise ValueError(f"{model} has no adapters; adapted models: {', '.join(ADAPTED_MODELS)}")
    name = adapter_name(model)
    return _load(model, weights_dir, store.card_stamp((name, model), weights_dir))


@cache
def _load(model: str, weights_dir: Path, stamp: tuple) -> AdapterSet:
    import torch

    description, path = store.checked_file(adapter_name(model), ".pt", weights_dir, fix(model))
    base = store.card(model, weights_dir)["sha256"]
    if description["base_sha256"] != base:
        raise WeightsMissing(f"{path.name} adapts {model} {description['base_sha256'][:12]}, but the shipped {model} "
                             f"is {base[:12]}: run `{fix(model)}` again")
    parts = build(model, store.load(model, weights_dir), description)
    states = torch.load(path, map_location="cpu", weights_only=True)
    for part, adapted in parts.items():
        adapted.load_adapter_state(states[part])
        adapted.eval()
    return AdapterSet(parts, description)
