"""Linear analog (uncoded) transmission: the classical reference codec.

Encoder: the RGB image, area-downsampled when the bandwidth ratio asks for
fewer channel uses, centred per colour channel, paired into complex symbols
(two real values per complex channel use) and scaled to unit average power,
E|x|^2 = 1. At full resolution k/n = 1/2 complex channel uses per source real
value; a ratio r < 1/2 downsamples each side by sqrt(2r).

Decoder: LMMSE scaling x_hat = y / (1 + N0) for zero-mean unit-power symbols
in CN(0, N0) noise (per symbol, with the error variance the receiver's
equalizer reports; skipped when the equalizer was MMSE already), undo the
power scale and means, bilinear upsampling.
"""

from __future__ import annotations

import math

import numpy as np
from PIL import Image

from ..models.runtime import DecoderRuntime
from ..serving.errors import InvalidInput
from ..wire.frames import Frame, SymbolBlock
from .base import Capabilities, Codec, Decoded
from .registry import register

MAX_BANDWIDTH_RATIO = 0.5  # every real value sent once


@register
class LinearAnalogCodec(Codec):
    codec_id = "linear_analog"
    blocks, side_info = ("image",), ("mean", "sent_size")
    capabilities = Capabilities(adjustable_bandwidth=True)
    default_bandwidth_ratio = MAX_BANDWIDTH_RATIO

    def encode(self, image: np.ndarray, bandwidth_ratio: float, frame_id: str, **options) -> Frame:
        height, width, _ = image.shape
        if not (0 < bandwidth_ratio <= MAX_BANDWIDTH_RATIO) or not math.isfinite(bandwidth_ratio):
            raise InvalidInput(
                f"bandwidth_ratio: {bandwidth_ratio} is outside (0, {MAX_BANDWIDTH_RATIO}] complex channel "
                "uses per source real value for linear_analog"
            )
        sent_h, sent_w = sent_size(height, width, bandwidth_ratio)
        if math.ceil(sent_h * sent_w * 3 / 2) > channel_use_budget(height, width, bandwidth_ratio):
            raise InvalidInput(
                f"bandwidth_ratio: {bandwidth_ratio} leaves fewer than the 2 channel uses of one pixel "
                f"for a {height}x{width} image"
            )
        values = _resize(image.astype(np.float32) / 255.0, sent_h, sent_w, Image.Resampling.BOX)
        mean = values.reshape(-1, 3).mean(axis=0).astype(np.float32)
        centred = (values - mean).reshape(-1)
        if centred.size % 2:
            centred = np.append(centred, np.float32(0))
        symbols = centred[0::2] + 1j * centred[1::2]
        power = float(np.mean(np.abs(symbols) ** 2))
        # A flat image carries nothing after centring: send zeros, scale 1.
        power_scale = 1.0 / math.sqrt(power) if power > 0 else 1.0
        return Frame(
            frame_id=frame_id,
            codec=self.codec_id,
            codec_version=self.version,
            height=height,
            width=width,
            blocks=[SymbolBlock("image", (symbols * power_scale).astype(np.complex64), power_scale)],
            side_info={"mean": mean, "sent_size": np.array([sent_h, sent_w], dtype=np.int32)},
        )

    def decode(self, frame: Frame, runtime: DecoderRuntime) -> Decoded:
        self._check_version(frame)
        block = frame.block("image")
        mean = _side_info(frame, "mean", np.float32, (3,))
        sent_h, sent_w = (int(v) for v in _side_info(frame, "sent_size", np.int32, (2,)))
        if not (0 < sent_h <= frame.height and 0 < sent_w <= frame.width):
            raise InvalidInput(f"frame.side_info['sent_size']: {sent_h}x{sent_w} outside the image size")
        expected = math.ceil(sent_h * sent_w * 3 / 2)
        if block.symbols.size != expected:
            raise InvalidInput(
                f"frame.blocks['image'].symbols: {block.symbols.size} symbols, {sent_h}x{sent_w}x3 needs {expected}"
            )
        if block.mmse:  # the equalizer already gave the MMSE estimate
            estimate = block.symbols / block.power_scale
        else:
            noise = block.noise_variance if block.noise_variance is not None else (
                frame.channel.noise_variance if frame.channel else 0.0)
            estimate = block.symbols / (1.0 + noise) / block.power_scale
        reals = np.empty(2 * estimate.size, dtype=np.float32)
        reals[0::2], reals[1::2] = estimate.real, estimate.imag
        values = reals[: sent_h * sent_w * 3].reshape(sent_h, sent_w, 3) + mean
        values = _resize(values, frame.height, frame.width, Image.Resampling.BILINEAR)
        return np.clip(np.round(values * 255.0), 0, 255).astype(np.uint8), None


def channel_use_budget(height: int, width: int, bandwidth_ratio: float) -> int:
    """Complex channel uses a ratio allows: ceil(k/n * n), n = height*width*3 real values."""
    return math.ceil(bandwidth_ratio * height * width * 3 - 1e-9)


def sent_size(height: int, width: int, bandwidth_ratio: float) -> tuple[int, int]:
    """Largest (h, w) of the image's aspect whose ceil(h*w*3/2) complex uses fit the budget."""
    if bandwidth_ratio >= MAX_BANDWIDTH_RATIO:
        return height, width
    budget = channel_use_budget(height, width, bandwidth_ratio)
    scale = math.sqrt(2 * bandwidth_ratio)
    sent_h, sent_w = max(1, math.floor(height * scale)), max(1, math.floor(width * scale))
    while math.ceil(sent_h * sent_w * 3 / 2) > budget and (sent_h > 1 or sent_w > 1):
        sent_h, sent_w = max(1, sent_h - (sent_h >= sent_w)), max(1, sent_w - (sent_w > sent_h))
    return sent_h, sent_w


def _side_info(frame: Frame, key: str, dtype: type, shape: tuple[int, ...]) -> np.ndarray:
    value = frame.side_info.get(key)
    if value is None or value.dtype != dtype or value.shape != shape:
        got = "missing" if value is None else f"{value.dtype} {list(value.shape)}"
        raise InvalidInput(f"frame.side_info['{key}']: expected {np.dtype(dtype)} {list(shape)}, got {got}")
    return value


def _resize(values: np.ndarray, height: int, width: int, method: Image.Resampling) -> np.ndarray:
    """Resizes float [h, w, 3] values channel by channel (PIL mode F keeps precision)."""
    if values.shape[:2] == (height, width):
        return values
    return np.stack(
        [np.asarray(Image.fromarray(values[..., c], mode="F").resize((width, height), method)) for c in range(3)],
        axis=-1,
    )
