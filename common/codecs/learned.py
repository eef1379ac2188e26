"""Codecs with trained networks: Deep JSCC (the image baseline) and the
semantic-map codec (segmenter + learned map JSCC).

Both work at the model preset's size: other images are resized in and out,
and the frame reports the true k/n of the image as sent. Their bandwidth is
fixed by the networks (complex channel uses per image), so an explicit
bandwidth ratio other than the codec's own is refused.
"""

from __future__ import annotations

import math
from functools import cached_property

import numpy as np
import torch
from PIL import Image

from ..data.labels import colorize
from ..errors import InvalidInput
from ..frames import Frame, SymbolBlock
from ..models import precision, store
from ..models.jscc import from_symbols, to_symbols
from ..presets import CPU
from .registry import register


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


class _PresetCodec:
    """Shared by every codec built on trained models: the preset size, a bandwidth fixed
    by the models (`channel_uses`), image-to-tensor conversion and the version check."""

    version = 1
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

    def _input(self, image: np.ndarray) -> torch.Tensor:
        """uint8 [H, W, 3] -> float [1, 3, preset H, preset W] in [0, 1]."""
        pixels = torch.tensor(_resize(image, self.preset.height, self.preset.width))  # a copy: inputs may be read-only
        return pixels.permute(2, 0, 1)[None].float() / 255

    def _check_version(self, frame: Frame) -> None:
        if frame.codec_version != self.version:
            raise InvalidInput(f"frame.header.codec_version: {frame.codec_version}, {self.codec_id} is {self.version}")


class _FixedBandwidthCodec(_PresetCodec):
    """Shared by learned codecs: preset size, k fixed by the trained model, torch in no-grad eval mode.

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

    @cached_property
    def parts(self) -> dict:
        return store.load(self.model_name)

    @cached_property
    def model_version(self) -> str:
        return store.card(self.model_name)["sha256"][:12]

    def _frame(self, image: np.ndarray, frame_id: str, symbols: torch.Tensor, **fields) -> Frame:
        return Frame(frame_id=frame_id, codec=self.codec_id, codec_version=self.version, height=image.shape[0],
                     width=image.shape[1], model_version=self.model_version,
                     blocks=[SymbolBlock(self.block_name, symbols[0].numpy().astype(np.complex64))], **fields)

    def _decoder_input(self, frame: Frame, feature_shape: tuple[int, int, int]) -> torch.Tensor:
        self._check_version(frame)
        block = frame.block(self.block_name)
        if block.symbols.size != self.channel_uses:
            raise InvalidInput(f"frame.blocks['{self.block_name}'].symbols: {block.symbols.size} symbols, "
                               f"{self.codec_id} sends {self.channel_uses}")
        symbols, error = mmse_statistics(block, frame.channel.noise_variance if frame.channel else 0.0)
        return from_symbols(torch.from_numpy(symbols)[None], torch.from_numpy(error.astype(np.float32))[None],
                            feature_shape)


@register
class DeepJSCCCodec(_FixedBandwidthCodec):
    """Deep JSCC (Bourtsoulatze, Kurka, Gündüz 2019): an image autoencoder
    trained through AWGN and Rayleigh channels (shipped: 1280 complex uses per image)."""

    codec_id = "deep_jscc"
    model_name = "deep_jscc"
    block_name = "image"
    downsampling = 4

    @torch.no_grad()
    def encode(self, image: np.ndarray, bandwidth_ratio: float, frame_id: str, **options) -> Frame:
        self._check_ratio(bandwidth_ratio)
        return self._frame(image, frame_id, to_symbols(self.parts["encoder"](self._input(image))))

    @torch.no_grad()
    def decode(self, frame: Frame) -> np.ndarray:
        with precision.autocast():
            output = self.parts["decoder"](self._decoder_input(frame, self.feature_shape)).float()
        return _resize(_to_uint8(output[0]), frame.height, frame.width)


@register
class SemanticMapCodec(_FixedBandwidthCodec):
    """The semantic map alone: the segmenter's map through the learned map
    JSCC (shipped: 1024 complex uses); decodes to train-ID labels, shown as colours."""

    codec_id = "semantic_map"
    model_name = "map_codec"
    block_name = "semantic_map"
    downsampling = 4
    decodes_labels = True

    @cached_property
    def segmenter(self):
        return store.load("segmenter")["net"]

    @torch.no_grad()
    def segment(self, image: np.ndarray) -> np.ndarray:
        """uint8 [H, W, 3] -> train IDs uint8 [preset H, preset W]."""
        return self.segmenter(self._input(image)).argmax(1)[0].byte().numpy()

    @torch.no_grad()
    def encode(self, image: np.ndarray, bandwidth_ratio: float, frame_id: str, **options) -> Frame:
        self._check_ratio(bandwidth_ratio)
        labels = torch.from_numpy(self.segment(image)).long()
        one_hot = torch.nn.functional.one_hot(labels, self.preset.num_classes).permute(2, 0, 1)[None].float()
        return self._frame(image, frame_id, to_symbols(self.parts["encoder"](one_hot)),
                           num_classes=self.preset.num_classes)

    @torch.no_grad()
    def decode_labels(self, frame: Frame) -> np.ndarray:
        """Train IDs uint8 [preset H, preset W] of the received map."""
        with precision.autocast():
            logits = self.parts["decoder"](self._decoder_input(frame, self.feature_shape)).float()
        return logits.argmax(1)[0].byte().numpy()

    def decode(self, frame: Frame) -> np.ndarray:
        labels = Image.fromarray(self.decode_labels(frame)).resize((frame.width, frame.height), Image.Resampling.NEAREST)
        return colorize(np.asarray(labels))


def _to_uint8(image: torch.Tensor) -> np.ndarray:
    return (image.clamp(0, 1) * 255).round().byte().permute(1, 2, 0).numpy()


def _resize(image: np.ndarray, height: int, width: int) -> np.ndarray:
    if image.shape[:2] == (height, width):
        return image
    return np.asarray(Image.fromarray(image).resize((width, height), Image.Resampling.BICUBIC))
