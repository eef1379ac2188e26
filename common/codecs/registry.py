"""Codecs keyed by the frame's codec id, the same registry on both ends.

A codec is an encoder/decoder pair (they are designed or trained together):
the transmitter calls `encode`, the receiver `decode` on the codec named in
the frame header. New codecs register with `@register`.
"""

from __future__ import annotations

from typing import Protocol

import numpy as np

from ..errors import InvalidInput
from ..frames import Frame


class Codec(Protocol):
    codec_id: str
    version: int
    default_bandwidth_ratio: float

    def encode(self, image: np.ndarray, bandwidth_ratio: float, frame_id: str) -> Frame:
        """uint8 [H, W, 3] image -> frame of unit-power complex symbols."""

    def decode(self, frame: Frame) -> np.ndarray:
        """Received frame (channel state attached, if any) -> uint8 [H, W, 3] image."""


_CODECS: dict[str, type] = {}
_INSTANCES: dict[str, Codec] = {}


def register(codec_class: type) -> type:
    _CODECS[codec_class.codec_id] = codec_class
    return codec_class


def available() -> list[str]:
    return sorted(_CODECS)


def get(codec_id: str, field: str = "codec") -> Codec:
    """The shared instance of a codec; InvalidInput naming `field` if unknown."""
    if codec_id not in _CODECS:
        raise InvalidInput(f"{field}: unknown codec '{codec_id}'; available: {', '.join(available())}")
    if codec_id not in _INSTANCES:
        _INSTANCES[codec_id] = _CODECS[codec_id]()
    return _INSTANCES[codec_id]
