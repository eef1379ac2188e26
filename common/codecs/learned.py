"""Codecs with trained networks: Deep JSCC (the image codec) and the
semantic-map codec (segmenter + learned map JSCC).

Deep JSCC works at the image's own size, its bandwidth a ratio chosen per
frame. The semantic-map codec (and the generative codecs built on the same
helpers) works at the model preset's size: other images are resized in and
out, the frame reports the true k/n of the image as sent, and its bandwidth is
fixed by the networks, so a ratio other than its own is refused.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from functools import cached_property

import numpy as np
from PIL import Image

from ..data.labels import colorize
from ..models import store
from ..models.presets import CPU
from ..models.runtime import DecoderRuntime
from ..models.store import WeightsMissing
from ..serving.errors import InvalidInput
from ..wire.frames import Frame, SymbolBlock
from .base import Capabilities, Codec, Decoded, one_hot, resize, to_uint8
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
    """The segmenter's mean top-class probability over the image (at the preset size): near 1 on its own
    domain, the scenes (measured: at least 0.9978 over 200 of them), lower on photos (at most 0.945 over
    the 34 installable ones). Encode side: torch."""
    import torch

    with torch.no_grad():
        return float(store.load("segmenter")["net"](preset_input(image)).softmax(1).amax(1).mean())


def preset_input(image: np.ndarray, preset=CPU):
    """uint8 [H, W, 3] -> float tensor [1, 3, preset H, preset W] in [0, 1] (encoders are torch)."""
    import torch

    pixels = torch.tensor(resize(image, preset.height, preset.width))  # a copy: inputs may be read-only
    return pixels.permute(2, 0, 1)[None].float() / 255


class PresetCodec(Codec):
    """Shared by every codec built on trained models: the preset size, a bandwidth fixed
    by the models (`channel_uses`) and image-to-tensor conversion."""

    preset = CPU
    channel_uses: int

    @property
    def default_bandwidth_ratio(self) -> float:
        return self.channel_uses / (self.preset.height * self.preset.width * 3)

    def _check_ratio(self, bandwidth_ratio: float) -> None:
        if not math.isclose(bandwidth_ratio, self.default_bandwidth_ratio, rel_tol=1e-9):
            raise InvalidInput(
                f"bandwidth_ratio: {self.codec_id} sends a fixed {self.channel_uses} complex channel uses per image "
                f"(k/n = {self.default_bandwidth_ratio:.4f} at {self.preset.height}x{self.preset.width}); leave it 0"
            )

    def _input(self, image: np.ndarray):
        """uint8 [H, W, 3] -> float tensor [1, 3, preset H, preset W] in [0, 1] (encoders are torch)."""
        return preset_input(image, self.preset)


class _FixedBandwidthCodec(PresetCodec):
    """Shared by learned codecs: preset size, k fixed by the trained model.

    The bandwidth comes from the model card: the encoder's `channels` feature
    maps at 1/`downsampling` of the preset size, two real values per complex use.
    """

    model_name: str
    downsampling: int

    @cached_property
    def feature_shape(self) -> tuple[int, int, int]:
        channels = store.card(self.model_name)["architecture"]["encoder"]["kwargs"]["channels"]
        return channels, self.preset.height // self.downsampling, self.preset.width // self.downsampling

    @property
    def channel_uses(self) -> int:
        channels, height, width = self.feature_shape
        return channels * height * width // 2

    def _encode(self, image: np.ndarray, frame_id: str, features: Callable, **fields) -> Frame:
        """The frame of encoder features(torch modules) -> [1, C, h, w], sent as unit-power symbols."""
        import torch

        from ..models.jscc import to_symbols

        with torch.no_grad():
            symbols = to_symbols(features(store.load(self.model_name)))
        return Frame(frame_id=frame_id, codec=self.codec_id, codec_version=self.version, height=image.shape[0],
                     width=image.shape[1], model_version=self.model_version,
                     blocks=[SymbolBlock(self.block_name, symbols[0].numpy().astype(np.complex64))], **fields)

    def _decoded(self, frame: Frame, runtime: DecoderRuntime) -> np.ndarray:
        """The decoder's output, float32 [1, ...], run by the receiver's runtime."""
        self._check_version(frame)
        return runtime.decoder(self.model_name)(received_planes(frame, self.block_name, self.feature_shape,
                                                                self.codec_id))


@register
class DeepJSCCCodec(Codec):
    """Deep JSCC (Bourtsoulatze, Kurka, Gündüz 2019) at the image's own size: a fully convolutional
    autoencoder (stride 8) trained through AWGN and Rayleigh channels on real photos and scenes.

    The bandwidth is a ratio, k/n = C/384 for the first C (even, 2..64) of its 64 feature maps: any
    ratio from 1/192 to 1/6 is sent, rounded to the nearest C, by one rate-adaptive model. The image
    is padded (edge pixels) to a multiple of 8 below and right, the padding goes in the header, and
    the receiver crops it: the reconstruction has the image's own size and aspect ratio. (k/n is
    C/384 of the padded image: of a tiny one, more; 5x3 at 1/6 sends k/n = 0.71.)
    """

    codec_id = "deep_jscc"
    capabilities = Capabilities(adjustable_bandwidth=True, encoder_models=("deep_jscc",),
                                decoder_models=("deep_jscc",))
    version = 2  # 1: the fixed 1280-symbol model at 64x128
    default_bandwidth_ratio = 1 / 12
    model_name = "deep_jscc"
    block_name = "image"
    stride = 8
    max_channels = 64
    # Source reals per complex channel use of one feature map, 2 reals a use over stride**2 pixels x 3
    # colours: 2 * 8 * 8 * 3 = 384, so k/n = C/384.
    uses_per_channel = 2 * 8 * 8 * 3

    def check_models(self) -> None:
        super().check_models()
        shipped = store.card(self.model_name)["architecture"]["encoder"]["class"]
        if shipped != "NativeImageEncoder":
            raise WeightsMissing(f"the deep_jscc weights are an older model ({shipped}, a fixed 64x128 codec): run "
                                 "`semcom train deep_jscc` for the native-size one")

    @classmethod
    def channels_for(cls, bandwidth_ratio: float) -> int:
        """The feature maps a ratio sends: the even C nearest to ratio * 384 (training evaluates with it)."""
        low, high = 2 / cls.uses_per_channel, cls.max_channels / cls.uses_per_channel
        if not (math.isfinite(bandwidth_ratio) and low - 1e-9 <= bandwidth_ratio <= high + 1e-9):
            raise InvalidInput(f"bandwidth_ratio: {bandwidth_ratio:g} is outside deep_jscc's range 1/192 "
                               f"({low:.4f}) to 1/6 ({high:.4f}) complex channel uses per source real value")
        return int(np.clip(2 * round(bandwidth_ratio * cls.uses_per_channel / 2), 2, cls.max_channels))

    def encode(self, image: np.ndarray, bandwidth_ratio: float, frame_id: str, **options) -> Frame:
        import torch

        from ..models.jscc import to_symbols

        channels = self.channels_for(bandwidth_ratio)
        height, width = image.shape[:2]
        pad_bottom, pad_right = -height % self.stride, -width % self.stride
        padded = np.pad(image, ((0, pad_bottom), (0, pad_right), (0, 0)), mode="edge")
        with torch.no_grad():
            pixels = torch.from_numpy(padded).permute(2, 0, 1)[None].float() / 255
            symbols = to_symbols(store.load(self.model_name)["encoder"](pixels)[:, :channels])
        return Frame(frame_id=frame_id, codec=self.codec_id, codec_version=self.version, height=height, width=width,
                     model_version=self.model_version, pad_bottom=pad_bottom, pad_right=pad_right,
                     blocks=[SymbolBlock(self.block_name, symbols[0].numpy().astype(np.complex64))])

    def decode(self, frame: Frame, runtime: DecoderRuntime) -> Decoded:
        self._check_version(frame)
        height, width = frame.height + frame.pad_bottom, frame.width + frame.pad_right
        if height % self.stride or width % self.stride:
            raise InvalidInput(f"frame.header: {frame.height}x{frame.width} padded by {frame.pad_bottom}, "
                               f"{frame.pad_right} is not a multiple of deep_jscc's stride {self.stride}")
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
        planes = with_erased_maps(planes, self.max_channels)
        image = runtime.decoder(self.model_name)(planes)[0, :, :frame.height, :frame.width]
        return to_uint8(image), None


@register
class SemanticMapCodec(_FixedBandwidthCodec):
    """The semantic map alone: the segmenter's map through the learned map
    JSCC (shipped: 1024 complex uses); decodes to train-ID labels, shown as colours."""

    codec_id = "semantic_map"
    capabilities = Capabilities(decodes_to_labels=True, encoder_models=("segmenter", "map_codec"),
                                decoder_models=("map_codec",))
    model_name = "map_codec"
    block_name = "semantic_map"
    downsampling = 4

    def segment(self, image: np.ndarray) -> np.ndarray:
        """uint8 [H, W, 3] -> train IDs uint8 [preset H, preset W]."""
        import torch

        with torch.no_grad():
            return store.load("segmenter")["net"](self._input(image)).argmax(1)[0].byte().numpy()

    def encode(self, image: np.ndarray, bandwidth_ratio: float, frame_id: str, **options) -> Frame:
        self._check_ratio(bandwidth_ratio)
        encoded_map = one_hot(self.segment(image)[None], self.preset.num_classes)
        return self._encode(image, frame_id, lambda parts: parts["encoder"](encoded_map),
                            num_classes=self.preset.num_classes)

    def decode_labels(self, frame: Frame, runtime: DecoderRuntime) -> np.ndarray:
        """Train IDs uint8 [preset H, preset W] of the received map."""
        return self._decoded(frame, runtime).argmax(1)[0].astype(np.uint8)

    def decode(self, frame: Frame, runtime: DecoderRuntime) -> Decoded:
        labels = self.decode_labels(frame, runtime)
        shown = Image.fromarray(labels).resize((frame.width, frame.height), Image.Resampling.NEAREST)
        return colorize(np.asarray(shown)), None
