"""Separate source and channel coding, the classical digital baseline:
JPEG or WebP over an ideal capacity-achieving channel code.

Transmitter: the image is compressed to the most bits that k complex channel
uses carry at the design SNR, k * log2(1 + SNR_design) (trying full, half and
quarter resolution and keeping the best-looking fit). The frame carries k
Gaussian codeword symbols (unit power) through the channel, and the
compressed file as side information: the emulation of an ideal code that is
decoded without error exactly when its rate is below the capacity the
channel actually gave.

Receiver: the capacity of the frame as received is sum_i log2(1 + SNR_i),
SNR_i = |h_i|^2 / N0 per codeword symbol from the equalizer's error variances
(erased symbols carry nothing). If the file's bits fit, the image decodes
perfectly; otherwise decoding fails and the receiver shows mid-grey: the
cliff of digital transmission.
"""

from __future__ import annotations

import hashlib
import io
import math

import numpy as np
from PIL import Image

from ..models.runtime import DecoderRuntime
from ..quality import psnr_db
from ..serving.errors import InvalidInput
from ..wire.frames import Frame, SymbolBlock
from .base import Capabilities, Codec, Decoded
from .registry import register

DEFAULT_DESIGN_SNR_DB = 10.0
DEFAULT_BANDWIDTH_RATIO = 1280 / (64 * 128 * 3)  # the semantic codec's, for equal-bandwidth comparisons
_SCALES = (1, 2, 4)
FALLBACK_GREY = 128


def bit_budget(channel_uses: int, snr_db: float) -> int:
    """Bits a capacity-achieving code carries over `channel_uses` complex uses at `snr_db`."""
    return int(channel_uses * math.log2(1.0 + 10.0 ** (snr_db / 10.0)))


def received_capacity_bits(frame: Frame, block: SymbolBlock) -> float:
    """sum log2(1 + SNR_i) over the codeword as the equalizer reports it (inf without a channel)."""
    if frame.channel is None:
        return math.inf
    error = block.noise_variance if block.noise_variance is not None else np.full(block.symbols.size,
                                                                                   frame.channel.noise_variance)
    with np.errstate(divide="ignore", invalid="ignore"):
        # MMSE error e = N0/(|h|^2+N0) gives SNR = 1/e - 1; unbiased (ZF) error e = N0/|h|^2 gives 1/e.
        snr = (1.0 / error - 1.0) if block.mmse else 1.0 / error
    snr = np.where(np.isfinite(snr), np.maximum(snr, 0.0), np.where(error == 0, np.inf, 0.0))
    return float(np.sum(np.log2(1.0 + snr)))


class _SeparateCodec(Codec):
    capabilities = Capabilities(adjustable_bandwidth=True)
    default_bandwidth_ratio = DEFAULT_BANDWIDTH_RATIO
    blocks, side_info = ("codeword",), ("payload",)
    image_format: str
    max_side: int  # the largest width or height the format encodes

    def encode(self, image: np.ndarray, bandwidth_ratio: float, frame_id: str,
               design_snr_db: float | None = None, **options) -> Frame:
        height, width, _ = image.shape
        if not (0 < bandwidth_ratio <= 10) or not math.isfinite(bandwidth_ratio):
            raise InvalidInput(f"bandwidth_ratio: {bandwidth_ratio} is outside (0, 10] for {self.codec_id}")
        snr = DEFAULT_DESIGN_SNR_DB if design_snr_db is None else design_snr_db
        if not math.isfinite(snr):
            raise InvalidInput(f"design_snr_db: {snr} is not finite")
        if max(height, width) > self.max_side:  # the format's own limit: checked before encoding
            raise InvalidInput(f"image: {height}x{width}: {self.image_format} encodes at most {self.max_side} pixels "
                               f"a side; {self.codec_id} cannot send it (deep_jscc or linear_analog can)")
        channel_uses = max(1, math.ceil(bandwidth_ratio * height * width * 3 - 1e-9))
        payload = self._best_fit(image, bit_budget(channel_uses, snr) // 8)
        seed = int.from_bytes(hashlib.sha256(frame_id.encode()).digest()[:8], "little")
        rng = np.random.default_rng(seed)
        codeword = ((rng.standard_normal(channel_uses) + 1j * rng.standard_normal(channel_uses)) / math.sqrt(2))
        return Frame(frame_id=frame_id, codec=self.codec_id, codec_version=self.version, height=height, width=width,
                     blocks=[SymbolBlock("codeword", codeword.astype(np.complex64))],
                     side_info={"payload": np.frombuffer(payload, dtype=np.uint8).copy()})

    def decode(self, frame: Frame, runtime: DecoderRuntime) -> Decoded:
        self._check_version(frame)
        block = frame.block("codeword")
        payload = frame.side_info.get("payload")
        if payload is None or payload.dtype != np.uint8 or payload.ndim != 1:
            raise InvalidInput("frame.side_info['payload']: expected the compressed file as uint8 [bytes]")
        fallback = np.full((frame.height, frame.width, 3), FALLBACK_GREY, dtype=np.uint8)
        if payload.size == 0 or payload.size * 8 > received_capacity_bits(frame, block):
            return fallback, None  # the code's rate is above what the channel carried: decoding fails
        try:
            opened = Image.open(io.BytesIO(payload.tobytes()))
            decoded = opened.convert("RGB")
        except (OSError, ValueError, SyntaxError, EOFError) as error:
            raise InvalidInput(f"frame.side_info['payload']: not a {self.image_format} file ({error})") from None
        if opened.format != self.image_format:  # PIL reads any format: a mislabelled frame would decode
            raise InvalidInput(f"frame.side_info['payload']: a {opened.format} file, not {self.image_format}")
        return np.asarray(decoded.resize((frame.width, frame.height), Image.Resampling.BICUBIC), dtype=np.uint8), None

    def _best_fit(self, image: np.ndarray, budget_bytes: int) -> bytes:
        """The best-PSNR file within budget over scales and qualities; b"" if none fits."""
        best, best_psnr = b"", -math.inf
        original = Image.fromarray(image)
        for scale in _SCALES:
            size = (max(1, image.shape[1] // scale), max(1, image.shape[0] // scale))
            scaled = original if scale == 1 else original.resize(size, Image.Resampling.BOX)
            data = self._largest_quality_within(scaled, budget_bytes)
            if data:
                decoded = Image.open(io.BytesIO(data)).convert("RGB").resize(original.size, Image.Resampling.BICUBIC)
                quality = psnr_db(image, np.asarray(decoded))
                if quality > best_psnr:
                    best, best_psnr = data, quality
        return best

    def _largest_quality_within(self, image: Image.Image, budget_bytes: int) -> bytes:
        low, high, found = 1, 95, b""
        while low <= high:  # file size grows with quality: binary search
            quality = (low + high) // 2
            buffer = io.BytesIO()
            image.save(buffer, format=self.image_format, quality=quality)
            if buffer.tell() <= budget_bytes:
                found, low = buffer.getvalue(), quality + 1
            else:
                high = quality - 1
        return found


@register
class JPEGCodec(_SeparateCodec):
    codec_id = "jpeg"
    image_format = "JPEG"
    max_side = 65_500  # libjpeg's JPEG_MAX_DIMENSION


@register
class WebPCodec(_SeparateCodec):
    codec_id = "webp"
    image_format = "WEBP"
    max_side = 16_383  # libwebp's WEBP_MAX_DIMENSION
