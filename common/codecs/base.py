"""The codec contract: what every codec is and declares, and the helpers codecs share.

A codec is an encoder/decoder pair (designed or trained together). The transmitter calls
`encode`, the receiver `decode_batch` on the codec a frame's header names, with its
DecoderRuntime (models/runtime.py: precision, sampler, weights). What a codec can do
is declared in its `capabilities`, which the receiver, the transmitter, the sweep and the CLI
read instead of probing for methods.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from functools import cached_property
from typing import ClassVar

import numpy as np
from PIL import Image

from ..models import store
from ..models.adapters import SIDE_INFO, adapter_name
from ..models.runtime import DecoderRuntime
from ..serving.errors import FailedPrecondition, InvalidInput, LimitExceeded, ServiceError, quoted
from ..wire.frames import Frame
from . import adapting

log = logging.getLogger(__name__)

# The SNR a transmitter designs a frame for (the digital codecs' rate and MCS, the encoder student's attention)
# where nothing else says: the transmitter's --design-snr-db default.
DEFAULT_DESIGN_SNR_DB = 10.0

# What a decode gives: the image uint8 [H, W, 3] and, for codecs with `returns_map`, the received
# semantic map as train IDs uint8 [h, w] (else None).
Decoded = tuple[np.ndarray, "np.ndarray | None"]


@dataclass(frozen=True)
class Capabilities:
    """What a codec declares it can do.

    batches: decode_batch shares work across frames (one sampler run for many), so the receiver's
        dynamic batcher gains by grouping them.
    returns_map: decode_batch returns the received semantic map beside each image.
    decodes_to_labels: the codec sends a label map, not an image: it is scored on its received labels
        (decode_labels), and PSNR or a segmenter's mIoU of its colour picture mean nothing.
    adjustable_bandwidth: any bandwidth ratio in its range is accepted (else only its default).
    generative: the image is regenerated (sampled), not reconstructed: costlier, judged on fewer scenes.
    bound: an idealization no system runs (a capacity-achieving code): the sweep draws it dashed.
    encoder_models, decoder_models: the trained models each side runs (loaded by `load`).
    """

    batches: bool = False
    returns_map: bool = False
    decodes_to_labels: bool = False
    adjustable_bandwidth: bool = False
    generative: bool = False
    bound: bool = False
    encoder_models: tuple[str, ...] = ()
    decoder_models: tuple[str, ...] = ()


class Codec:
    """Base of every codec: identity, declared capabilities, model loading, and a batch decode that
    by default decodes frame by frame."""

    codec_id: ClassVar[str]
    version: ClassVar[int] = 1
    model_name: ClassVar[str] = ""  # the trained model whose weights version the codec's frames (none: "")
    capabilities: ClassVar[Capabilities] = Capabilities()
    default_bandwidth_ratio: float
    # The frame layout the codec sends, which the receiver checks before decoding (a frame labelled
    # with another codec's name is refused, not decoded by luck): its symbol blocks, in order, and its
    # side-information keys.
    blocks: ClassVar[tuple[str, ...]] = ()
    side_info: ClassVar[tuple[str, ...]] = ()
    # (block, trained model) for each block a learned JSCC model sends that condition-aware adapters can
    # adapt (adapting.py): such a codec's frames may also carry adapters.SIDE_INFO.
    adapted: ClassVar[tuple[tuple[str, str], ...]] = ()
    # The largest image the codec takes, in pixels, and that size as an example ("512x768"); None: any.
    max_pixels: ClassVar[int | None] = None
    max_size_example: ClassVar[str] = ""

    @cached_property
    def model_version(self) -> str:
        """The first 12 hex digits of `model_name`'s weights' sha256, stamped on each frame ("" without)."""
        return store.card(self.model_name)["sha256"][:12] if self.model_name else ""

    def encode(self, image: np.ndarray, bandwidth_ratio: float, frame_id: str, **options) -> Frame:
        """uint8 [H, W, 3] image -> frame of unit-power complex symbols.

        options: codec-specific settings a codec may use and others ignore
        (design_snr_db for the digital codecs)."""
        raise NotImplementedError

    def decode(self, frame: Frame, runtime: DecoderRuntime) -> Decoded:
        """Received, equalized frame -> (image uint8 [H, W, 3], received map or None)."""
        raise NotImplementedError

    def decode_batch(self, frames: list[Frame], runtime: DecoderRuntime) -> list[Decoded | ServiceError]:
        """Decodes received, equalized frames; a bad frame gets its error in its own slot. By default
        frame by frame; codecs that batch (capabilities.batches) share work across them."""
        results: list[Decoded | ServiceError] = []
        for frame in frames:
            try:
                results.append(self.decode(frame, runtime))
            except ServiceError as error:
                results.append(error)
        return results

    def accepts_ratio(self, bandwidth_ratio: float) -> bool:
        """Whether a codec with adjustable bandwidth sends this k/n (the sweep skips the ratios it does not)."""
        return True

    def _check_size(self, height: int, width: int) -> None:
        """Raises LimitExceeded for an image over `max_pixels`."""
        if self.max_pixels is not None and height * width > self.max_pixels:
            raise LimitExceeded(f"image: {height}x{width} = {height * width} pixels, over {self.codec_id}'s limit of "
                                f"{self.max_pixels} ({self.max_size_example}): send it smaller, or with deep_jscc")

    def check_models(self) -> None:
        """Raises WeightsMissing when a model card the codec needs is not shipped."""
        for model in {*self.capabilities.encoder_models, *self.capabilities.decoder_models}:
            store.card(model)

    def load(self, side: str, runtime: DecoderRuntime | None = None) -> None:
        """Loads the models of one side ("encode" or "decode", with the receiver's runtime) now, rather
        than at the first frame."""
        if side == "encode":
            for model in self.capabilities.encoder_models:
                store.load(model)
        else:
            runtime = runtime or DecoderRuntime()
            runtime.load(self.capabilities.decoder_models)
            for model in self.adapted_models:  # shipped adapters load now too
                if (runtime.weights_dir / f"{adapter_name(model)}.card.json").is_file():
                    try:
                        runtime.load_adapters(model)
                    except FailedPrecondition as error:  # plain frames still decode; adapted ones get the error
                        log.warning("%s: %s", self.codec_id, error)

    def check_layout(self, frame: Frame) -> None:
        """Raises InvalidInput unless the frame's blocks and side information are the ones this codec sends."""
        names = tuple(block.name for block in frame.blocks)
        if names != self.blocks:
            raise InvalidInput(f"frame.blocks: {quoted(', '.join(names) or 'none')}; a {self.codec_id} frame has "
                               f"{', '.join(self.blocks)}")
        layouts = [set(self.side_info)] + ([set(self.side_info) | set(SIDE_INFO)] if self.adapted else [])
        if set(frame.side_info) not in layouts:
            expected = " or ".join(", ".join(sorted(keys)) or "none" for keys in layouts)
            raise InvalidInput(f"frame.side_info: {quoted(', '.join(sorted(frame.side_info)) or 'none')}; a "
                               f"{self.codec_id} frame has {expected}")

    @property
    def adapted_models(self) -> tuple[str, ...]:
        return tuple(model for _, model in self.adapted)

    def decode_condition(self, frame: Frame, block: str, padded: tuple[int, int], runtime: DecoderRuntime):
        """The condition block `block`'s decoder is gated on (adapting.condition), its adapters' versions checked
        against the runtime's; None for a plain frame."""
        if not adapting.is_adapted(frame):
            return None
        adapting.check_versions(frame, self.adapted_models, runtime.weights_dir)
        return adapting.condition(frame, block, padded, "receive")

    def adapter_choices(self, frame: Frame, side: str, runtime: DecoderRuntime | None = None) -> list:
        """What each adapted model's gate chose for the frame at `side` (adapting.SIDES); empty for a plain
        frame. The transmitter reports its encoders', the receiver its decoders' (with its runtime's adapters)."""
        if not (self.adapted and adapting.is_adapted(frame)):
            return []
        return adapting.choices(frame, self.adapted, padded_size(frame, getattr(self, "stride", 1)), side,
                                (runtime or DecoderRuntime()).adapter_gate)

    def encode_options(self, options: dict) -> tuple[bool, float]:
        """(whether to encode with adapters, the design SNR) from encode's options: adapters only where the
        codec has them (the others send plain frames, whatever the transmitter's --adapters)."""
        snr = options.get("design_snr_db")
        snr = DEFAULT_DESIGN_SNR_DB if snr is None else snr
        adapted = bool(options.get("adapters")) and bool(self.adapted)
        if adapted and not math.isfinite(snr):
            raise InvalidInput(f"design_snr_db: {snr} is not finite (the adapters are gated on it)")
        return adapted, snr

    def _check_version(self, frame: Frame) -> None:
        if frame.codec_version != self.version:
            raise InvalidInput(f"frame.header.codec_version: {frame.codec_version}, {self.codec_id} is {self.version}")


def one_hot(labels: np.ndarray, num_classes: int):
    """Train IDs [B, H, W] -> one-hot float tensor [B, classes, H, W] (the map encoders' input; torch)."""
    import torch

    encoded = torch.nn.functional.one_hot(torch.from_numpy(labels).long(), num_classes)
    return encoded.permute(0, 3, 1, 2).float()


def to_uint8(image: np.ndarray) -> np.ndarray:
    """float [3, H, W] in [0, 1] -> uint8 [H, W, 3]."""
    return np.ascontiguousarray((np.clip(image, 0, 1) * 255).round().astype(np.uint8).transpose(1, 2, 0))


def pad_to_stride(image: np.ndarray, stride: int) -> tuple[np.ndarray, int, int]:
    """uint8 [H, W, 3] -> (the image padded with its edge pixels below and right to multiples of `stride`,
    pad_bottom, pad_right): what a fully convolutional codec encodes; the header carries the padding."""
    pad_bottom, pad_right = -image.shape[0] % stride, -image.shape[1] % stride
    return np.pad(image, ((0, pad_bottom), (0, pad_right), (0, 0)), mode="edge"), pad_bottom, pad_right


def padded_size(frame: Frame, stride: int) -> tuple[int, int]:
    """(height, width) the frame's codec encoded: its image and padding, checked to be multiples of `stride`."""
    height, width = frame.height + frame.pad_bottom, frame.width + frame.pad_right
    if height % stride or width % stride:
        raise InvalidInput(f"frame.header: {frame.height}x{frame.width} padded by {frame.pad_bottom}, "
                           f"{frame.pad_right} is not a multiple of {frame.codec}'s stride {stride}")
    return height, width


def resize(image: np.ndarray, height: int, width: int) -> np.ndarray:
    """uint8 [h, w, 3] -> uint8 [height, width, 3], bicubic (unchanged when the size already is)."""
    if image.shape[:2] == (height, width):
        return image
    return np.asarray(Image.fromarray(image).resize((width, height), Image.Resampling.BICUBIC))
