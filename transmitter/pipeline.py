"""Image -> frame and the quality of what came back: the transmitter's
library, usable in-process."""

from __future__ import annotations

import math
import uuid
from dataclasses import dataclass, replace

import numpy as np

from semcom.common import codecs
from semcom.common.data.images import decode_image
from semcom.common.data.labels import NUM_TRAIN_IDS
from semcom.common.phy.csi import insert_pilots
from semcom.common.quality import confusion_matrix, mean_iou, psnr_db, ssim
from semcom.common.serving.errors import ServiceError
from semcom.common.wire.frames import Frame


@dataclass
class Encoded:
    image: np.ndarray  # the original, uint8 [H, W, 3]
    frame: Frame


def encode(image_bytes: bytes, codec_id: str, bandwidth_ratio: float, *, max_pixels: int,
           pilot_spacing: int = 0, frame_id: str | None = None, **options) -> Encoded:
    """Decodes the image file (at most `max_pixels`) and encodes it (encode_image)."""
    codecs.get(codec_id, field="codec")  # an unknown codec is the first thing to say
    image = decode_image(image_bytes, max_pixels=max_pixels)
    return Encoded(image, encode_image(image, codec_id, bandwidth_ratio, pilot_spacing=pilot_spacing,
                                       frame_id=frame_id, **options))


def encode_image(image: np.ndarray, codec_id: str, bandwidth_ratio: float, *, pilot_spacing: int = 0,
                 frame_id: str | None = None, **options) -> Frame:
    """Encodes uint8 [H, W, 3] with the codec (ratio 0: the codec's default; options: codec-specific,
    e.g. design_snr_db) and inserts a pilot before every `pilot_spacing` data symbols of each block
    (0: none; see common/phy/csi.py). frame_id: a fresh unique one unless given (it seeds the generative
    decoders' noise, so a fixed id makes a run repeatable)."""
    codec = codecs.get(codec_id, field="codec")
    ratio = bandwidth_ratio or codec.default_bandwidth_ratio
    frame = codec.encode(image, ratio, frame_id=frame_id or uuid.uuid4().hex, **options)
    if pilot_spacing:
        frame.blocks = [replace(b, symbols=insert_pilots(b.symbols, pilot_spacing)) for b in frame.blocks]
        frame.pilot_spacing = pilot_spacing
    return frame


def quality(original: np.ndarray, reconstruction: np.ndarray) -> tuple[float, float]:
    """(PSNR in dB, SSIM) of the reconstruction against the original."""
    return psnr_db(original, reconstruction), ssim(original, reconstruction)


def semantic_fidelity(original: np.ndarray, reconstruction: np.ndarray, codec_id: str) -> float:
    """mIoU of the segmenter on the reconstruction against its map of the original; NaN
    where it means nothing (a codec that decodes to a map) or no segmenter is loaded."""
    try:
        segmenter = codecs.get("semantic_map")
    except ServiceError:
        return math.nan
    if codecs.capabilities(codec_id).decodes_to_labels:
        return math.nan
    reference = segmenter.segment(original)
    return mean_iou(confusion_matrix(reference, segmenter.segment(reconstruction), NUM_TRAIN_IDS))
