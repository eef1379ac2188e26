"""Codecs with trained networks: Deep JSCC (the image codec) and the
semantic-map codec (segmenter + learned map JSCC).

Both work at the image's own size: padded to their stride, the padding in the
frame header, cropped at the receiver. Deep JSCC's bandwidth is a ratio chosen
per frame; the semantic-map codec's (and that of the generative codecs built on
the same helpers) is fixed by its networks per pixel, so a ratio other than its
own is refused.
"""

from __future__ import annotations

import math
from dataclasses import replace
from functools import cached_property
from pathlib import Path
from typing import ClassVar

import numpy as np

from ..data.labels import colorize
from ..models import store
from ..models.adapters import Condition, block_ratio
from ..models.presets import CPU
from ..models.runtime import DecoderRuntime
from ..models.store import WeightsMissing
from ..serving.errors import InvalidInput
from ..wire.frames import Frame, SymbolBlock
from . import adapting
from .base import (
    DEFAULT_DESIGN_SNR_DB, Capabilities, Codec, Decoded, one_hot, pad_to_stride, padded_size, resize, to_uint8,
)
from .registry import register

# torch is imported where a codec encodes, not here: decoding is numpy and runs its networks through
# the receiver's DecoderRuntime (models/runtime.py), so a receiver on ONNX Runtime (--precision int8) never loads torch.


def mmse_statistics(block: SymbolBlock, noise_variance: float) -> tuple[np.ndarray, np.ndarray]:
    """The block as an MMSE estimate and its error variance, whatever the equalizer.

    Decoders are trained on MMSE outputs. An unbiased estimate (ZF, or no
    equalization) with error variance e becomes x/(1+e) with error e/(1+e).
    """
    error = block.noise_variance if block.noise_variance is not None else np.full(block.symbols.size, noise_variance,
                                                                                   np.float32)
    if block.mmse:
        return block.symbols, error
    with np.errstate(invalid="ignore"):
        return (block.symbols / (1.0 + error)).astype(np.complex64), np.where(np.isinf(error), 1.0, error / (1.0 + error))


def received_planes(frame: Frame, name: str, shape: tuple[int, int, int], codec_id: str) -> np.ndarray:
    """A JSCC decoder's input from block `name`: float32 [1, 2C, h, w], the MMSE symbol values, then log10
    of each value's error variance (the layout of models.jscc.from_symbols, which training uses)."""
    block = frame.block(name)
    expected = shape[0] * shape[1] * shape[2] // 2
    if block.symbols.size != expected:
        raise InvalidInput(f"frame.blocks['{name}'].symbols: {block.symbols.size} symbols, {codec_id} sends {expected}")
    symbols, error = mmse_statistics(block, frame.channel.noise_variance if frame.channel else 0.0)
    values = np.stack([symbols.real, symbols.imag], -1).reshape(shape)
    reliability = np.repeat(np.log10(np.clip(error, 1e-6, 1e6)), 2).reshape(shape)
    return np.concatenate([values, reliability])[None].astype(np.float32)


# log10 of the error variance the decoders see for an erased value (received_planes' clip at 1e6; the
# same as models.jscc.ERASED_RELIABILITY, which training uses, in a module a receiver without torch reads).
ERASED_RELIABILITY = 6.0


def with_erased_maps(planes: np.ndarray, max_channels: int) -> np.ndarray:
    """[1, 2C, h, w] decoder input of the C maps sent -> [1, 2 * max_channels, h, w], the others erased."""
    values, reliability = np.split(planes, 2, axis=1)
    missing = np.zeros((planes.shape[0], max_channels - values.shape[1], *planes.shape[2:]), np.float32)
    return np.concatenate([values, missing, reliability, missing + ERASED_RELIABILITY], 1)


def segmenter_confidence(image: np.ndarray) -> float:
    """The segmenter's mean top-class probability over the image, resized to the preset size (a domain
    score needs no detail, and stays cheap for a large photo): near 1 on its own domain, the scenes
    (measured: at least 0.9978 over 200 of them), lower on photos (at most 0.945 over the 34 installable
    ones). Encode side: torch."""
    import torch

    with torch.no_grad():
        return float(store.load("segmenter")["net"](image_tensor(resize(image, CPU.height, CPU.width)))
                     .softmax(1).amax(1).mean())


def image_tensor(image: np.ndarray):
    """uint8 [H, W, 3] -> float tensor [1, 3, H, W] in [0, 1] (encoders are torch)."""
    import torch

    return torch.tensor(image).permute(2, 0, 1)[None].float() / 255  # a copy: inputs may be read-only


class SemanticCodecBase(Codec):
    """Shared by the codecs built on the segmenter (semantic_map, semantic, gesco): at the image's own
    size, padded with its edge pixels to a multiple of `stride` (the segmenter's and the latent's
    downsampling; the header says how much), cropped back by the receiver. Their networks are fully
    convolutional, so the symbols grow with the image and the bandwidth ratio is fixed by them
    (`reals_per_pixel`): any other ratio is refused.

    Images over `max_pixels` are refused: the segmenter runs at full size, and a 512x768 photo is the
    largest measured to stay within a receiver's time and memory (README); the generative codecs tile
    their diffusion decoder beyond it, and go further."""

    stride = 8
    max_pixels = 512 * 768
    max_size_example = "512x768"
    num_classes = CPU.num_classes
    reals_per_pixel: float  # real values sent per (padded) pixel

    @property
    def default_bandwidth_ratio(self) -> float:
        return self.reals_per_pixel / 2 / 3  # complex uses per source real value (3 colours a pixel)

    def _check_input(self, image: np.ndarray, bandwidth_ratio: float) -> None:
        if not math.isclose(bandwidth_ratio, self.default_bandwidth_ratio, rel_tol=1e-9):
            raise InvalidInput(f"bandwidth_ratio: {self.codec_id} sends a fixed k/n = "
                               f"{self.default_bandwidth_ratio:.4f} (set by its networks); leave it 0")
        self._check_size(image.shape[0], image.shape[1])

    def segment(self, image: np.ndarray) -> np.ndarray:
        """uint8 [H, W, 3] -> train IDs uint8 [H, W], the segmenter run at the padded size and cropped."""
        import torch

        height, width = image.shape[:2]
        with torch.no_grad():
            labels = store.load("segmenter")["net"](image_tensor(pad_to_stride(image, self.stride)[0])).argmax(1)
        return labels[0, :height, :width].byte().numpy()

    def _frame(self, image: np.ndarray, frame_id: str, blocks: list[SymbolBlock], **options) -> Frame:
        """The frame of `blocks`; options: encode's (an adapted frame carries the adapters' side information)."""
        height, width = image.shape[:2]
        adapted, snr = self.encode_options(options)
        return Frame(frame_id=frame_id, codec=self.codec_id, codec_version=self.version, height=height, width=width,
                     pad_bottom=-height % self.stride, pad_right=-width % self.stride, num_classes=self.num_classes,
                     model_version=self.model_version, blocks=blocks,
                     side_info=adapting.side_info(self.adapted_models, snr) if adapted else {})

    def _padded_size(self, frame: Frame) -> tuple[int, int]:
        """The encoded size of a received frame, checked."""
        self._check_version(frame)
        self._check_size(frame.height, frame.width)
        return padded_size(frame, self.stride)

    def _decoded(self, frame: Frame, runtime: DecoderRuntime, model: str, block: str, downsampling: int) -> np.ndarray:
        """Model `model`'s decoder output, float32 [1, ...] at the padded size, from frame block `block`."""
        padded = self._padded_size(frame)
        shape = feature_shape(model, downsampling, *padded)
        planes = received_planes(frame, block, shape, self.codec_id)
        return runtime.decoder(model, self.decode_condition(frame, block, padded, runtime))(planes)


MAP_ENCODERS = ("segmenter", "student")  # what makes the map codec's features: the transmitter's --map-encoder
STUDENT = "encoder_student"


def load_encoder_student():
    """The channel-adaptive encoder student (`semcom train encoder_student`), checked against the map codec it was
    distilled for: its features mean something only to that map decoder."""
    store.check_trained_on(STUDENT)
    return store.load(STUDENT)["encoder"]


def encoded_map(codec: SemanticCodecBase, padded: np.ndarray, map_encoder: str = "segmenter",
                design_snr_db: float | None = None, adapters: bool = False, **options):
    """The map codec's features [1, C, H/4, W/4] of a padded image (encode side: torch): of its segmentation
    (segmenter + map encoder), or, with map_encoder "student", the encoder student's, told the design SNR
    (the transmitter's; default DEFAULT_DESIGN_SNR_DB). The receiver decodes both alike. adapters: the map
    encoder with its adapters merged for the design SNR (adapting.py)."""
    import torch

    snr = DEFAULT_DESIGN_SNR_DB if design_snr_db is None else design_snr_db
    if map_encoder == "student":
        if adapters:
            raise InvalidInput("adapters adapt the map codec's own encoder, which the encoder student replaces: "
                               "send with --map-encoder segmenter, or without --adapters")
        if not math.isfinite(snr):
            raise InvalidInput(f"design_snr_db: {snr} is not finite")
        return load_encoder_student()(image_tensor(padded), torch.tensor([float(snr)]))[0]
    if map_encoder != "segmenter":
        raise ValueError(f"map encoder {map_encoder!r}: expected one of {', '.join(MAP_ENCODERS)}")
    labels = codec.segment(padded)[None]
    shape = feature_shape("map_codec", SemanticMapCodec.downsampling, *padded.shape[:2])
    return encoder_of("map_codec", shape, padded.shape[:2], adapters, snr)(one_hot(labels, codec.num_classes))


def encoder_of(model: str, features: tuple[int, int, int], padded: tuple[int, int], adapted: bool,
               design_snr_db: float):
    """Model `model`'s encoder (torch) for a padded image: the shipped one, or (adapted) with its adapters merged
    for the design SNR and the k/n of the features [C, h, w] it sends (C*h*w/2 symbols)."""
    if not adapted:
        return adapting.encoder(model, None)
    symbols = features[0] * features[1] * features[2] // 2
    return adapting.encoder(model, Condition(design_snr_db, block_ratio(symbols, *padded)))


def jscc_channels(model: str, weights_dir: Path = store.WEIGHTS_DIR) -> int:
    """The feature maps a fixed-bandwidth JSCC model (map_codec, latent_codec) sends: its card's `channels`."""
    return store.card(model, weights_dir)["architecture"]["encoder"]["kwargs"]["channels"]


def feature_shape(model: str, downsampling: int, height: int, width: int) -> tuple[int, int, int]:
    """[C, h, w] of a JSCC model's features for a padded image: its `channels` at 1/`downsampling`."""
    return jscc_channels(model), height // downsampling, width // downsampling


def reals_per_pixel(model: str, downsampling: int) -> float:
    return jscc_channels(model) / downsampling**2


class FeatureMapCodec(Codec):
    """Shared by the rate-adaptive codecs that send the first C (even, 2..max_channels) of their
    feature maps at 1/8 of the image's size, ordered so that the first maps decode on their own
    (deep_jscc, latent_diffusion): k/n = C/384 of the padded image, any ratio in the range chosen per
    frame and rounded to the nearest C. The image is padded (edge pixels) to a multiple of 8 below and
    right, the padding goes in the header, and the receiver crops it. (Of a tiny image, k/n is more:
    5x3 at 1/6 sends 0.71.)

    A subclass gives `features`: the padded image -> its max_channels maps (encode side: torch)."""

    capabilities = Capabilities(adjustable_bandwidth=True)
    block_name = "image"
    blocks = (block_name,)
    stride = 8
    max_channels: ClassVar[int]
    # Source reals per complex channel use of one feature map, 2 reals a use over stride**2 pixels x 3
    # colours: 2 * 8 * 8 * 3 = 384, so k/n = C/384.
    uses_per_channel = 2 * 8 * 8 * 3

    def features(self, padded: np.ndarray, encoder=None):
        """uint8 [H, W, 3] padded image -> its feature maps, a torch tensor [1, max_channels, H/8, W/8]; encoder:
        the adapted one to run (adapting.py), for a codec with `adapted`."""
        raise NotImplementedError

    @classmethod
    def ratio_range(cls) -> tuple[float, float]:
        """The lowest and highest k/n sent: 2 maps and all of them."""
        return 2 / cls.uses_per_channel, cls.max_channels / cls.uses_per_channel

    @classmethod
    def accepts_ratio(cls, bandwidth_ratio: float) -> bool:
        low, high = cls.ratio_range()
        return math.isfinite(bandwidth_ratio) and low - 1e-9 <= bandwidth_ratio <= high + 1e-9

    @classmethod
    def channels_for(cls, bandwidth_ratio: float) -> int:
        """The feature maps a ratio sends: the even C nearest to ratio * 384 (training evaluates with it)."""
        low, high = cls.ratio_range()
        if not cls.accepts_ratio(bandwidth_ratio):
            raise InvalidInput(f"bandwidth_ratio: {bandwidth_ratio:g} is outside {cls.codec_id}'s range 1/192 "
                               f"({low:.4f}) to 1/{cls.uses_per_channel // cls.max_channels} ({high:.4f}) complex "
                               "channel uses per source real value")
        return int(np.clip(2 * round(bandwidth_ratio * cls.uses_per_channel / 2), 2, cls.max_channels))

    def encode(self, image: np.ndarray, bandwidth_ratio: float, frame_id: str, **options) -> Frame:
        import torch

        from ..models.jscc import to_symbols

        channels = self.channels_for(bandwidth_ratio)
        self._check_size(*image.shape[:2])
        height, width = image.shape[:2]
        padded, pad_bottom, pad_right = pad_to_stride(image, self.stride)
        adapted, snr = self.encode_options(options)
        shape = (channels, padded.shape[0] // self.stride, padded.shape[1] // self.stride)
        with torch.no_grad():
            encoder = encoder_of(self.model_name, shape, padded.shape[:2], True, snr) if adapted else None
            symbols = to_symbols(self.features(padded, encoder)[:, :channels])
        return Frame(frame_id=frame_id, codec=self.codec_id, codec_version=self.version, height=height, width=width,
                     model_version=self.model_version, pad_bottom=pad_bottom, pad_right=pad_right,
                     blocks=[SymbolBlock(self.block_name, symbols[0].numpy().astype(np.complex64))],
                     side_info=adapting.side_info(self.adapted_models, snr) if adapted else {})

    def received_maps(self, frame: Frame) -> np.ndarray:
        """The decoder's input from a received frame: float32 [1, 2 * max_channels, h, w], the maps sent
        (values, then log10 error variances), the symbols a budget cut and the maps not sent erased."""
        self._check_version(frame)
        height, width = padded_size(frame, self.stride)
        self._check_size(frame.height, frame.width)
        rows, columns = height // self.stride, width // self.stride
        block = frame.block(self.block_name)
        symbols = block.symbols.size  # sent and erased alike
        channels, remainder = divmod(2 * symbols, rows * columns)
        if remainder or channels % 2 or not 2 <= channels <= self.max_channels:
            raise InvalidInput(f"frame.blocks['{self.block_name}'].symbols: {symbols} symbols are not an even "
                               f"number (2..{self.max_channels}) of {rows}x{columns} feature maps")
        planes = received_planes(frame, self.block_name, (channels, rows, columns), self.codec_id)
        errors = block.noise_variance
        if errors is not None:  # symbols the budget cut: erased as training erases the maps not sent
            planes[0, channels:][np.repeat(np.isinf(errors), 2).reshape(channels, rows, columns)] = ERASED_RELIABILITY
        return with_erased_maps(planes, self.max_channels)


@register
class DeepJSCCCodec(FeatureMapCodec):
    """Deep JSCC (Bourtsoulatze, Kurka, Gündüz 2019) at the image's own size: a fully convolutional
    autoencoder (stride 8) trained through AWGN and Rayleigh channels on real photos and scenes.

    The bandwidth is a ratio, k/n = C/384 for the first C (even, 2..64) of its 64 feature maps: any
    ratio from 1/192 to 1/6 is sent by one rate-adaptive model (FeatureMapCodec). The reconstruction
    has the image's own size and aspect ratio.
    """

    codec_id = "deep_jscc"
    capabilities = replace(FeatureMapCodec.capabilities, encoder_models=("deep_jscc",), decoder_models=("deep_jscc",))
    version = 2  # 1: the fixed 1280-symbol model at 64x128
    default_bandwidth_ratio = 1 / 12
    model_name = "deep_jscc"
    max_channels = 64
    adapted = (("image", "deep_jscc"),)

    def check_models(self) -> None:
        super().check_models()
        shipped = store.card(self.model_name)["architecture"]["encoder"]["class"]
        if shipped != "NativeImageEncoder":
            raise WeightsMissing(f"the deep_jscc weights are an older model ({shipped}, a fixed 64x128 codec): run "
                                 "`semcom train deep_jscc` for the native-size one")

    def features(self, padded: np.ndarray, encoder=None):
        return (encoder or store.load(self.model_name)["encoder"])(image_tensor(padded))

    def decode(self, frame: Frame, runtime: DecoderRuntime) -> Decoded:
        planes = self.received_maps(frame)
        condition = self.decode_condition(frame, self.block_name, padded_size(frame, self.stride), runtime)
        image = runtime.decoder(self.model_name, condition)(planes)[0, :, :frame.height, :frame.width]
        return to_uint8(image), None


@register
class SemanticMapCodec(SemanticCodecBase):
    """The semantic map alone: the segmenter's map through the learned map JSCC (4 feature maps at
    1/4 of the size: k/n = 1/24, 1024 complex uses at 64x128); decodes to train-ID labels, shown as colours."""

    codec_id = "semantic_map"
    version = 2  # 1: at the 64x128 preset, other sizes resized
    capabilities = Capabilities(decodes_to_labels=True, encoder_models=("segmenter", "map_codec"),
                                decoder_models=("map_codec",))
    model_name = "map_codec"
    block_name = "semantic_map"
    blocks = (block_name,)
    downsampling = 4
    adapted = ((block_name, model_name),)

    @cached_property
    def reals_per_pixel(self) -> float:
        return reals_per_pixel(self.model_name, self.downsampling)

    def encode(self, image: np.ndarray, bandwidth_ratio: float, frame_id: str, **options) -> Frame:
        import torch

        from ..models.jscc import to_symbols

        self._check_input(image, bandwidth_ratio)
        with torch.no_grad():
            symbols = to_symbols(encoded_map(self, pad_to_stride(image, self.stride)[0], **options))
        return self._frame(image, frame_id, [SymbolBlock(self.block_name, symbols[0].numpy().astype(np.complex64))],
                           **options)

    def decode_labels(self, frame: Frame, runtime: DecoderRuntime) -> np.ndarray:
        """Train IDs uint8 [H, W] of the received map."""
        logits = self._decoded(frame, runtime, self.model_name, self.block_name, self.downsampling)
        return logits[0, :, :frame.height, :frame.width].argmax(0).astype(np.uint8)

    def decode(self, frame: Frame, runtime: DecoderRuntime) -> Decoded:
        return colorize(self.decode_labels(frame, runtime)), None
