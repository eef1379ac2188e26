"""Codecs keyed by the frame's codec id, the same registry on both ends.

A codec (base.Codec) is an encoder/decoder pair with declared capabilities: the
transmitter calls `encode`, the receiver `decode_batch` on the codec named in the
frame header. New codecs register with `@register`; `available` and `capabilities`
enumerate them for the sweep and the CLI.
"""

from __future__ import annotations

import logging

from ..models.runtime import DecoderRuntime
from ..models.store import WeightsMissing
from ..serving.errors import InvalidInput, Unavailable, quoted
from .base import Capabilities, Codec

log = logging.getLogger(__name__)

_CODECS: dict[str, type[Codec]] = {}
_INSTANCES: dict[str, Codec] = {}


def register(codec_class: type[Codec]) -> type[Codec]:
    _CODECS[codec_class.codec_id] = codec_class
    return codec_class


def available() -> list[str]:
    """Every registered codec id, sorted."""
    return sorted(_CODECS)


def capabilities(codec_id: str) -> Capabilities:
    """What codec `codec_id` declares, without loading it."""
    return _CODECS[codec_id].capabilities


def get(codec_id: str, field: str = "codec") -> Codec:
    """The shared instance of a codec (its models load at first use, or with `load_all`).

    Raises InvalidInput naming `field` for an unknown codec, and Unavailable
    when the codec's weights are not there (not trained or not shipped).
    """
    if codec_id not in _CODECS:
        raise InvalidInput(f"{field}: unknown codec '{quoted(codec_id)}'; available: {', '.join(available())}")
    if codec_id not in _INSTANCES:
        codec = _CODECS[codec_id]()
        try:
            codec.check_models()
        except WeightsMissing as error:
            raise Unavailable(f"codec '{codec_id}' is not loaded: {error}") from None
        _INSTANCES[codec_id] = codec
    return _INSTANCES[codec_id]


def load_all(side: str, runtime: DecoderRuntime | None = None) -> dict[str, Codec]:
    """Loads every registered codec's models for one side, "encode" (the transmitter) or "decode"
    (the receiver, with its runtime), and returns the codecs that loaded; the others (no weights)
    are logged, and frames for them get UNAVAILABLE."""
    loaded = {}
    for codec_id in available():
        try:
            codec = get(codec_id)
            codec.load(side, runtime)
        except (Unavailable, WeightsMissing) as error:
            log.warning("%s", error)
            continue
        loaded[codec_id] = codec
    return loaded
