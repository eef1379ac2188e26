"""Codecs keyed by the frame's codec id, the same registry on both ends.

A codec is an encoder/decoder pair (they are designed or trained together):
the transmitter calls `encode`, the receiver `decode` on the codec named in
the frame header. New codecs register with `@register`.
"""

from __future__ import annotations

import logging
from typing import Protocol

import numpy as np

from ..errors import InvalidInput, Unavailable
from ..frames import Frame
from ..models.store import WeightsMissing


class Codec(Protocol):
    codec_id: str
    version: int
    default_bandwidth_ratio: float

    def encode(self, image: np.ndarray, bandwidth_ratio: float, frame_id: str, **options) -> Frame:
        """uint8 [H, W, 3] image -> frame of unit-power complex symbols.

        options: codec-specific settings a codec may use and others ignore
        (design_snr_db for the digital codecs)."""

    def decode(self, frame: Frame) -> np.ndarray:
        """Received frame (channel state attached, if any) -> uint8 [H, W, 3] image."""


log = logging.getLogger(__name__)

_CODECS: dict[str, type] = {}
_INSTANCES: dict[str, Codec] = {}


def register(codec_class: type) -> type:
    _CODECS[codec_class.codec_id] = codec_class
    return codec_class


def available() -> list[str]:
    return sorted(_CODECS)


def get(codec_id: str, field: str = "codec") -> Codec:
    """The shared instance of a codec (its models load at first use, or with `load_all`).

    Raises InvalidInput naming `field` for an unknown codec, and Unavailable
    when the codec's weights are not there (not trained or not shipped).
    """
    if codec_id not in _CODECS:
        raise InvalidInput(f"{field}: unknown codec '{codec_id}'; available: {', '.join(available())}")
    if codec_id not in _INSTANCES:
        codec = _CODECS[codec_id]()
        try:
            if hasattr(codec, "check_models"):
                codec.check_models()
        except WeightsMissing as error:
            raise Unavailable(f"codec '{codec_id}' is not loaded: {error}") from None
        _INSTANCES[codec_id] = codec
    return _INSTANCES[codec_id]


def load_all(side: str) -> dict[str, Codec]:
    """Loads every registered codec's models for one side, "encode" (the transmitter) or "decode"
    (the receiver, at the current precision), and returns the codecs that loaded; the others
    (no weights) are logged, and frames for them get UNAVAILABLE."""
    loaded = {}
    for codec_id in available():
        try:
            codec = get(codec_id)
            if hasattr(codec, "load"):
                codec.load(side)
        except (Unavailable, WeightsMissing) as error:
            log.warning("%s", error)
            continue
        loaded[codec_id] = codec
    return loaded
