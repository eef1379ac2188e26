"""Separate source and channel coding, the classical digital baseline: JPEG, WebP or AVIF files over
a channel code, either the ideal capacity-achieving one (`jpeg`, `webp`, `avif`: the bound) or a real
5G LDPC code with QAM and link adaptation (`jpeg_ldpc`, `webp_ldpc`, `avif_ldpc`: common/phy/ldpc.py).

Source coding, shared: the best-PSNR file within the channel code's byte budget over full, half and
quarter resolution and the format's quality; a failed decode shows mid-grey, the cliff of digital
transmission.

The ideal code. Transmitter: the image is compressed to the most bits that k complex channel
uses carry at the design SNR, k * log2(1 + SNR_design) (trying full, half and
quarter resolution and keeping the best-looking fit). The frame carries k
Gaussian codeword symbols (unit power) through the channel, and the
compressed file as side information: the emulation of an ideal code that is
decoded without error exactly when its rate is below the capacity the
channel actually gave.

Receiver: the capacity of the frame as received is sum_i log2(1 + SNR_i),
SNR_i = |h_i|^2 / N0 per codeword symbol from the equalizer's error variances
(erased symbols carry nothing). If the file's bits fit, the image decodes
perfectly; otherwise decoding fails.

The LDPC code. Transmitter: link adaptation picks the highest-rate MCS whose measured threshold is at
most the design SNR less a 0.5 dB margin (the lowest MCS below them all), the file fills as many codewords as the frame's
channel uses hold, and its bits go through the channel as QAM symbols. Receiver: LLRs from each
symbol's error variance, BP decoding, and the CRC decides: the file exactly, or the grey outage.
"""

from __future__ import annotations

import hashlib
import io
import math
from dataclasses import replace

import numpy as np
from PIL import Image

from ..data.images import decode_image
from ..models.runtime import DecoderRuntime
from ..phy import ldpc
from ..quality import psnr_db
from ..serving.errors import InvalidInput, LimitExceeded
from ..wire.frames import Frame, SymbolBlock
from .base import DEFAULT_DESIGN_SNR_DB, Capabilities, Codec, Decoded, resize
from .registry import register

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
    """Source coding into a file of `image_format`, sent by a channel code the subclass defines
    (`_channel_encode` and `_received_file`)."""

    capabilities = Capabilities(adjustable_bandwidth=True)
    default_bandwidth_ratio = DEFAULT_BANDWIDTH_RATIO
    image_format: str
    max_side: int  # the largest width or height the format encodes
    save_options: dict = {}

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
        blocks, side_info = self._channel_encode(image, channel_uses, snr, frame_id)
        return Frame(frame_id=frame_id, codec=self.codec_id, codec_version=self.version, height=height, width=width,
                     blocks=blocks, side_info=side_info)

    def decode(self, frame: Frame, runtime: DecoderRuntime) -> Decoded:
        self._check_version(frame)
        payload = self._received_file(frame)
        outage = np.full((frame.height, frame.width, 3), FALLBACK_GREY, dtype=np.uint8), None
        if not payload:  # the channel code failed (or no file fitted the budget)
            return outage
        try:
            return self._image(payload, frame), None
        except (InvalidInput, LimitExceeded):
            if self.unreadable_is_outage:
                return outage
            raise

    # Whether a file that came through but does not read is the outage (a real code's CRC passes about
    # 2^-24 of failed frames, and all-erased symbols decode to zeros, which pass it) rather than bad input.
    unreadable_is_outage = False

    def _image(self, payload: bytes, frame: Frame) -> np.ndarray:
        """The file as the frame's image: read within the frame's own pixel count (the transmitter
        sends it at full, half or quarter size), of this codec's format, resized to the frame."""
        field = "frame: the file it carries"
        try:
            found = Image.open(io.BytesIO(payload)).format
        except (OSError, ValueError, SyntaxError, EOFError) as error:
            raise InvalidInput(f"{field} is not a {self.image_format} file ({error})") from None
        if found != self.image_format:  # PIL reads any format: a mislabelled frame would decode
            raise InvalidInput(f"{field} is a {found} file, not {self.image_format}")
        return resize(decode_image(payload, max_pixels=frame.height * frame.width, field=field),
                      frame.height, frame.width)

    def _channel_encode(self, image: np.ndarray, channel_uses: int, design_snr_db: float,
                        frame_id: str) -> tuple[list[SymbolBlock], dict[str, np.ndarray]]:
        """(the frame's blocks, its side information) for at most `channel_uses` complex uses."""
        raise NotImplementedError

    def _received_file(self, frame: Frame) -> bytes | None:
        """The file the received, equalized frame carries, or None when the channel code failed."""
        raise NotImplementedError

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
            image.save(buffer, format=self.image_format, quality=quality, **self.save_options)
            if buffer.tell() <= budget_bytes:
                found, low = buffer.getvalue(), quality + 1
            else:
                high = quality - 1
        return found


class _IdealCode(_SeparateCodec):
    """The bound: Gaussian codeword symbols stand for a capacity-achieving code; the file rides as side
    information and decodes exactly when the received capacity covers its bits."""

    capabilities = replace(_SeparateCodec.capabilities, bound=True)
    blocks, side_info = ("codeword",), ("payload",)

    def _channel_encode(self, image, channel_uses, design_snr_db, frame_id):
        payload = self._best_fit(image, bit_budget(channel_uses, design_snr_db) // 8)
        seed = int.from_bytes(hashlib.sha256(frame_id.encode()).digest()[:8], "little")
        rng = np.random.default_rng(seed)
        codeword = ((rng.standard_normal(channel_uses) + 1j * rng.standard_normal(channel_uses)) / math.sqrt(2))
        return ([SymbolBlock("codeword", codeword.astype(np.complex64))],
                {"payload": np.frombuffer(payload, dtype=np.uint8).copy()})

    def _received_file(self, frame):
        payload = frame.side_info.get("payload")
        if payload is None or payload.dtype != np.uint8 or payload.ndim != 1:
            raise InvalidInput("frame.side_info['payload']: expected the compressed file as uint8 [bytes]")
        if payload.size * 8 > received_capacity_bits(frame, frame.block("codeword")):
            return None  # the code's rate is above what the channel carried: decoding fails
        return payload.tobytes()


class _LDPCCode(_SeparateCodec):
    """The real thing: the file's bits, CRC-24A, 5G LDPC at the MCS's rate and Gray QAM as the frame's
    symbols; the side information is the control channel's: which MCS, the codeword length and the
    file's size (a real link signals them on a robust control channel, assumed error-free here)."""

    blocks, side_info = ("coded",), ("mcs", "codeword_bits", "file_bytes")
    unreadable_is_outage = True

    def _channel_encode(self, image, channel_uses, design_snr_db, frame_id):
        mcs = ldpc.choose_mcs(design_snr_db) or ldpc.MCS_TABLE[0]  # below every threshold: the most robust
        largest = ldpc.largest_layout(mcs, channel_uses)
        if largest is None:  # not one codeword fits: the frame carries no file (a grey picture), as `jpeg` does
            return self._coded(np.ones(channel_uses, np.complex64), mcs=mcs.index, codeword_bits=0, file_bytes=0)
        payload = self._best_fit(image, largest.file_bytes)
        layout = ldpc.layout_for(mcs, largest.codeword_bits, len(payload))
        return self._coded(ldpc.encode_bits(payload, layout), mcs=mcs.index, codeword_bits=layout.codeword_bits,
                           file_bytes=len(payload))

    def _received_file(self, frame):
        mcs_index, codeword_bits, file_bytes = (self._control(frame, key) for key in self.side_info)
        if not 0 <= mcs_index < len(ldpc.MCS_TABLE):
            raise InvalidInput(f"frame.side_info['mcs']: {mcs_index} is not an MCS index (0..{len(ldpc.MCS_TABLE) - 1})")
        if codeword_bits == 0 and file_bytes == 0:
            return None  # the frame was too short for a codeword
        if not (ldpc.MIN_CODEWORD_BITS <= codeword_bits <= ldpc.CODEWORD_BITS and codeword_bits % 24 == 0):
            raise InvalidInput(f"frame.side_info['codeword_bits']: {codeword_bits} is not a codeword length "
                               f"(a multiple of 24 in {ldpc.MIN_CODEWORD_BITS}..{ldpc.CODEWORD_BITS})")
        layout = ldpc.layout_for(ldpc.MCS_TABLE[mcs_index], codeword_bits, file_bytes)
        block = frame.block("coded")
        if block.symbols.size != layout.symbols:
            raise InvalidInput(f"frame.blocks['coded']: {block.symbols.size} symbols; {file_bytes} bytes at "
                               f"{layout.mcs.describe()} in {codeword_bits}-bit codewords are {layout.symbols}")
        error = block.noise_variance if block.noise_variance is not None else np.zeros(block.symbols.size, np.float32)
        return ldpc.decode_bits(block.symbols, error, block.mmse, layout, file_bytes)

    @staticmethod
    def _coded(symbols: np.ndarray, **control: int) -> tuple[list[SymbolBlock], dict[str, np.ndarray]]:
        return [SymbolBlock("coded", symbols)], {key: np.array([value], dtype=np.int32) for key, value in control.items()}

    @staticmethod
    def _control(frame: Frame, key: str) -> int:
        value = frame.side_info.get(key)
        if value is None or value.dtype != np.int32 or value.shape != (1,) or value[0] < 0:
            raise InvalidInput(f"frame.side_info['{key}']: expected one int32 >= 0")
        return int(value[0])


class _JPEG:
    image_format = "JPEG"
    max_side = 65_500  # libjpeg's JPEG_MAX_DIMENSION


class _WebP:
    image_format = "WEBP"
    max_side = 16_383  # libwebp's WEBP_MAX_DIMENSION


class _AVIF:
    image_format = "AVIF"
    max_side = 32_768  # libavif's default decode limit (AVIF_DEFAULT_IMAGE_DIMENSION_LIMIT)
    save_options = {"speed": 8}  # 20 ms a 384x512 encode instead of 140 ms at the default 6; sizes within 10 %


@register
class JPEGCodec(_JPEG, _IdealCode):
    codec_id = "jpeg"


@register
class WebPCodec(_WebP, _IdealCode):
    codec_id = "webp"


@register
class AVIFCodec(_AVIF, _IdealCode):
    codec_id = "avif"


@register
class JPEGLDPCCodec(_JPEG, _LDPCCode):
    codec_id = "jpeg_ldpc"


@register
class WebPLDPCCodec(_WebP, _LDPCCode):
    codec_id = "webp_ldpc"


@register
class AVIFLDPCCodec(_AVIF, _LDPCCode):
    codec_id = "avif_ldpc"
