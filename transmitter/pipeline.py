"""Image -> frame and the quality of what came back: the transmitter's
library, usable in-process."""

from __future__ import annotations

import math
import uuid
from collections import deque
from dataclasses import dataclass, replace

import numpy as np

from semcom.common import codecs
from semcom.common.codecs.learned import segmenter_confidence
from semcom.common.data.images import decode_image, encode_png
from semcom.common.data.labels import NUM_TRAIN_IDS, colorize
from semcom.common.phy.csi import insert_pilots
from semcom.common.quality import confusion_matrix, mean_iou, psnr_db, ssim
from semcom.common.serving.errors import FailedPrecondition, InvalidInput, ServiceError
from semcom.common.wire.frames import Frame
from semcom.common.wire.pb import transmitter_pb2


@dataclass
class Encoded:
    image: np.ndarray  # the original, uint8 [H, W, 3]
    frame: Frame  # its codec is the one used: the fallback for an image out of the asked codec's domain
    requested_codec: str = ""
    domain_score: float = math.nan  # the segmenter's confidence, where the asked codec sends a semantic map


# The semantic codecs send the segmenter's map, which means something only for images of its domain
# (the scenes). Its mean confidence separates them from photos: at least 0.9978 on 200 scenes, at most
# 0.945 on the 34 installable photos (README, "Real photographs").
DOMAIN_THRESHOLD = 0.98
OUT_OF_DOMAIN = ("fallback", "refuse", "off")


@dataclass(frozen=True)
class DomainPolicy:
    """What the transmitter does with an image outside a semantic codec's domain: send it with
    `fallback_codec` instead, refuse it (FAILED_PRECONDITION), or send it as asked ("off")."""

    action: str = "fallback"
    fallback_codec: str = "deep_jscc"
    threshold: float = DOMAIN_THRESHOLD

    def __post_init__(self):
        if self.action not in OUT_OF_DOMAIN:
            raise ValueError(f"--out-of-domain: {self.action!r}, expected one of {', '.join(OUT_OF_DOMAIN)}")
        if self.action == "fallback" and "segmenter" in codecs.capabilities(self.fallback_codec).encoder_models:
            raise ValueError(f"--fallback-codec: {self.fallback_codec} sends a semantic map itself; name an image "
                             "codec (deep_jscc, jpeg, webp, linear_analog)")


def choose_codec(image: np.ndarray, codec_id: str, policy: DomainPolicy) -> tuple[str, float]:
    """(the codec to send with, the domain score or NaN where none was needed)."""
    capabilities = codecs.capabilities(codec_id)
    if policy.action == "off" or "segmenter" not in capabilities.encoder_models:
        return codec_id, math.nan
    score = segmenter_confidence(image)
    if score >= policy.threshold:
        return codec_id, score
    if policy.action == "refuse":
        raise FailedPrecondition(
            f"image: out of {codec_id}'s domain, its segmenter's confidence {score:.4f} is below {policy.threshold} "
            f"(its map would describe another scene); send it with an image codec such as {policy.fallback_codec}, "
            "or run the transmitter with --out-of-domain fallback")
    return policy.fallback_codec, score


def encode(image_bytes: bytes, codec_id: str, bandwidth_ratio: float, *, max_pixels: int,
           pilot_spacing: int = 0, frame_id: str | None = None, domain: DomainPolicy = DomainPolicy("off"),
           **options) -> Encoded:
    """Decodes the image file (at most `max_pixels`), picks the codec by the domain policy and encodes
    it (encode_image). A fallback codec gets the asked ratio (0: its own default, 1/12 for deep_jscc:
    for a large photo far more than the semantic codec's fixed 1280 uses; ask a ratio to bound it)."""
    codecs.get(codec_id, field="codec")  # an unknown codec is the first thing to say
    image = decode_image(image_bytes, max_pixels=max_pixels)
    used, score = choose_codec(image, codec_id, domain)
    frame = encode_image(image, used, bandwidth_ratio, pilot_spacing=pilot_spacing, frame_id=frame_id, **options)
    return Encoded(image, frame, codec_id, score)


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


class ChannelFeedback:
    """The channel state the link reports back with every frame (ForwardResponse.channel), as a real system's
    receiver feeds back its SNR estimate: the design SNR for the next frames is the mean SNR the last `window`
    frames saw (measured from the noise actually added). One estimate per transmitter: with a pool of channel
    emulators, the mean over the links it sends on."""

    def __init__(self, window: int = 8):
        self._snrs: deque[float] = deque(maxlen=window)

    def observe(self, snr_db: float) -> None:
        if math.isfinite(snr_db):  # a noiseless channel measures infinity: nothing to design for
            self._snrs.append(snr_db)

    def design_snr_db(self, default: float) -> float:
        """The mean of the last frames' SNRs; `default` before any frame has come back."""
        return float(np.mean(self._snrs)) if self._snrs else default


DESIGN_SNRS = ("fixed", "feedback")  # the transmitter's --design-snr


@dataclass
class Assessment:
    """What the transmitter reports of a reconstruction: its quality and the pictures it returns."""

    psnr_db: float
    ssim: float
    miou: float  # NaN where not computed (see semantic_fidelity)
    reconstruction_png: bytes
    received_map_png: bytes  # b"" for codecs without a received map


SCORINGS = ("none", "pixels", "full")  # how much of a reconstruction is scored: TransmitRequest.scoring
SCORING_VALUES = {name: transmitter_pb2.Scoring.Value(f"SCORING_{name.upper()}") for name in SCORINGS}
# The transmitter's --scoring. Measured with `semcom bench chain` (README, Serving throughput), a 64x128 call's
# transmitter CPU: 2 ms with no scores and no PNGs, 6 ms with PSNR, SSIM and the PNGs, 47 ms with the mIoU too (two
# segmenter passes). The clients that show the mIoU (semcom send and demo, the compose demo's load that feeds the
# dashboards) ask for full scoring.
DEFAULT_SCORING = "pixels"


def assess(encoded: Encoded, reconstruction: np.ndarray, received_map: np.ndarray | None,
           scoring: str = DEFAULT_SCORING, images: bool = True) -> Assessment:
    """Scores what the receiver returned against the original as `scoring` (one of SCORINGS: none, PSNR and
    SSIM, those and the mIoU; NaN for what is not scored) and, with `images`, encodes the PNGs the caller gets
    back. Shapes are checked whatever is scored: a receiver that returns another size is an error."""
    if scoring not in SCORINGS:
        raise ValueError(f"scoring {scoring!r}: expected one of {', '.join(SCORINGS)}")
    if reconstruction.shape != encoded.image.shape:
        raise InvalidInput(f"decoded.image: receiver returned shape {list(reconstruction.shape)}, "
                           f"sent {list(encoded.image.shape)}")
    psnr = similarity = miou = math.nan
    if scoring != "none":
        psnr, similarity = quality(encoded.image, reconstruction)
    if scoring == "full":
        miou = semantic_fidelity(encoded.image, reconstruction, encoded.frame.codec)
    reconstruction_png = encode_png(reconstruction) if images else b""
    map_png = encode_png(colorize(received_map)) if images and received_map is not None else b""
    return Assessment(psnr, similarity, miou, reconstruction_png, map_png)


@dataclass
class StageTimings:
    """Where one Transmit call's time went, in seconds; the overhead is what no stage accounts for
    (gRPC, serialization, scheduling)."""

    encode_seconds: float
    channel_seconds: float
    decode_seconds: float
    quality_seconds: float
    link_seconds: float
    end_to_end_seconds: float

    @property
    def overhead_seconds(self) -> float:
        return self.end_to_end_seconds - (self.encode_seconds + self.channel_seconds + self.decode_seconds
                                          + self.quality_seconds + self.link_seconds)


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
