"""The frame as Python objects, and its conversion to and from semcom.v1.Frame.

Codecs and channel models work on these objects, never on protobuf messages,
so training loops and sweeps run the same code in-process that the services
run over gRPC. Conversion from the wire validates every field and names the
offending one in its error.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, fields

import numpy as np

from ..phy.csi import EQUALIZERS
from ..serving.errors import InvalidInput, LimitExceeded, quoted
from . import tensors
from .pb import frame_pb2, tensor_pb2

CSI_MODES = ("perfect", "none", "estimated")
MAX_PADDING = 63  # rows or columns a codec may pad: below the largest stride any codec could have


@dataclass
class SymbolBlock:
    """Complex channel symbols of one kind (complex64, shape [k], E|x|^2 = 1).

    erased_tail: symbols the channel's budget cut from the end (on the wire).
    After the receiver's equalization (never on the wire): noise_variance,
    float32 [k], the per-symbol error variance of `symbols` as an estimate of
    what was sent, and mmse, whether `symbols` is already the MMSE estimate
    (so a decoder must not shrink it again).
    """

    name: str
    symbols: np.ndarray
    power_scale: float = 1.0
    erased_tail: int = 0
    noise_variance: np.ndarray | None = None
    mmse: bool = False


@dataclass
class ChannelState:
    """What the channel did to a frame.

    snr_db: configured Es/N0 in dB. noise_variance: N0 per complex symbol
    (N0/2 per real dimension). measured_snr_db: mean|x|^2 / mean|n|^2 on this
    frame, from the noise actually drawn. k_factor: linear Rician K.
    fading: with csi "perfect", complex64 [blocks], one coefficient per
    coherence block of the frame's symbol stream (blocks concatenated).
    """

    model: str
    snr_db: float
    noise_variance: float
    measured_snr_db: float = math.nan
    k_factor: float = 0.0
    coherence_symbols: int = 0
    csi: str = "perfect"
    equalizer: str = "mmse"
    fading: np.ndarray | None = None
    channel_uses: int = 0
    bandwidth_ratio: float = 0.0
    truncated_symbols: int = 0
    erased: bool = False


@dataclass
class Frame:
    """One image as channel symbols plus what the receiver needs to decode it."""

    frame_id: str
    codec: str
    codec_version: int
    height: int
    width: int
    blocks: list[SymbolBlock]
    channels: int = 3
    num_classes: int = 0
    model_version: str = ""
    side_info: dict[str, np.ndarray] = field(default_factory=dict)
    channel: ChannelState | None = None
    pilot_spacing: int = 0
    pad_bottom: int = 0  # rows and columns a fully convolutional codec padded (cropped at the receiver)
    pad_right: int = 0

    @property
    def source_values(self) -> int:
        """n: real values of the source image, height * width * channels."""
        return self.height * self.width * self.channels

    @property
    def channel_uses(self) -> int:
        """k: complex channel uses of all blocks together."""
        return sum(block.symbols.size for block in self.blocks)

    @property
    def bandwidth_ratio(self) -> float:
        """k/n: complex channel uses per source real value."""
        return self.channel_uses / self.source_values

    def block(self, name: str) -> SymbolBlock:
        for block in self.blocks:
            if block.name == name:
                return block
        raise InvalidInput(f"frame.blocks: no block named '{name}' (have {[b.name for b in self.blocks]})")


def to_proto(frame: Frame) -> frame_pb2.Frame:
    message = frame_pb2.Frame(
        header=frame_pb2.FrameHeader(
            frame_id=frame.frame_id,
            codec=frame.codec,
            codec_version=frame.codec_version,
            model_version=frame.model_version,
            image_size=frame_pb2.ImageSize(height=frame.height, width=frame.width, channels=frame.channels),
            num_classes=frame.num_classes,
            source_values=frame.source_values,
            pilot_spacing=frame.pilot_spacing,
            pad_bottom=frame.pad_bottom,
            pad_right=frame.pad_right,
        ),
        blocks=[
            frame_pb2.SymbolBlock(name=b.name, symbols=tensors.to_proto(b.symbols), power_scale=b.power_scale,
                                  erased_tail=b.erased_tail)
            for b in frame.blocks
        ],
    )
    for key, value in frame.side_info.items():
        message.side_info[key].CopyFrom(tensors.to_proto(value))
    if frame.channel is not None:
        message.channel.CopyFrom(channel_state_to_proto(frame.channel))
    return message


# ChannelState's fields and semcom.v1.ChannelState's share names; the one tensor among them is
# converted with tensors, the rest copied as they are (a field added to both needs no code here).
_TENSOR_FIELDS = ("fading",)
_SCALAR_FIELDS = tuple(f.name for f in fields(ChannelState) if f.name not in _TENSOR_FIELDS)


def adapter_choices_to_proto(choices) -> list[frame_pb2.AdapterChoice]:
    """codecs.adapting.Choice objects -> semcom.v1.AdapterChoice messages."""
    return [frame_pb2.AdapterChoice(model=choice.model, snr_db=choice.condition.snr_db,
                                    bandwidth_ratio=choice.condition.bandwidth_ratio, gate=choice.gate.tolist(),
                                    expert=choice.expert) for choice in choices]


def channel_state_to_proto(state: ChannelState) -> frame_pb2.ChannelState:
    message = frame_pb2.ChannelState(**{name: getattr(state, name) for name in _SCALAR_FIELDS})
    if state.fading is not None:
        message.fading.CopyFrom(tensors.to_proto(state.fading))
    return message


def from_proto(message: frame_pb2.Frame, *, max_pixels: int, max_channel_uses: int) -> Frame:
    """Validates a wire frame and converts it; errors name the field.

    Raises InvalidInput for missing or malformed fields and LimitExceeded for
    an image size over `max_pixels` or more symbols than `max_channel_uses`.
    """
    header = message.header
    if not message.HasField("header") or not header.codec:
        raise InvalidInput("frame.header.codec: missing (an empty or header-less frame)")
    size = header.image_size
    if size.height == 0 or size.width == 0:
        raise InvalidInput(f"frame.header.image_size: {size.height}x{size.width} is empty")
    if size.channels not in (0, 3):
        raise InvalidInput(f"frame.header.image_size.channels: {size.channels}, only 3 (RGB) is supported")
    if size.height * size.width > max_pixels:
        raise LimitExceeded(
            f"frame.header.image_size: {size.height}x{size.width} is over the limit of {max_pixels} pixels"
        )
    for name in ("pad_bottom", "pad_right"):
        if getattr(header, name) > MAX_PADDING:
            raise InvalidInput(f"frame.header.{name}: {getattr(header, name)}, at most {MAX_PADDING} (a codec pads "
                               "to its stride only)")
    if not message.blocks:
        raise InvalidInput("frame.blocks: no symbol blocks")
    blocks = []
    total = 0
    for i, block in enumerate(message.blocks):
        where = f"frame.blocks[{i}]"
        total += math.prod(block.symbols.shape)
        if total > max_channel_uses:
            raise LimitExceeded(f"{where}.symbols: frame has more than {max_channel_uses} channel uses")
        symbols = tensors.from_proto(block.symbols, f"{where}.symbols", dtype=tensor_pb2.DATA_TYPE_COMPLEX64, ndim=1)
        if not math.isfinite(block.power_scale) or block.power_scale <= 0:
            raise InvalidInput(f"{where}.power_scale: {block.power_scale} is not a positive finite number")
        if block.erased_tail > max_channel_uses:
            raise InvalidInput(f"{where}.erased_tail: {block.erased_tail} is more than a frame can hold")
        blocks.append(SymbolBlock(block.name, symbols, block.power_scale, erased_tail=block.erased_tail))
    side_info = {
        key: tensors.from_proto(value, f"frame.side_info['{key}']", max_elements=1 << 16)
        for key, value in message.side_info.items()
    }
    channel = _channel_state_from_proto(message.channel) if message.HasField("channel") else None
    return Frame(
        frame_id=header.frame_id,
        codec=header.codec,
        codec_version=header.codec_version,
        height=size.height,
        width=size.width,
        channels=3,
        num_classes=header.num_classes,
        model_version=header.model_version,
        blocks=blocks,
        side_info=side_info,
        channel=channel,
        pilot_spacing=header.pilot_spacing,
        pad_bottom=header.pad_bottom,
        pad_right=header.pad_right,
    )


def _channel_state_from_proto(c: frame_pb2.ChannelState) -> ChannelState:
    if not math.isfinite(c.noise_variance) or c.noise_variance < 0:
        raise InvalidInput(f"frame.channel.noise_variance: {c.noise_variance} is not a finite value >= 0")
    if c.csi not in ("", *CSI_MODES):
        raise InvalidInput(f"frame.channel.csi: '{quoted(c.csi)}', expected one of {', '.join(CSI_MODES)}")
    if c.equalizer not in ("", *EQUALIZERS):
        raise InvalidInput(f"frame.channel.equalizer: '{quoted(c.equalizer)}', expected one of "
                           f"{', '.join(EQUALIZERS)}")
    fading = None
    if c.HasField("fading"):
        fading = tensors.from_proto(c.fading, "frame.channel.fading", dtype=tensor_pb2.DATA_TYPE_COMPLEX64, ndim=1)
    scalars = {name: getattr(c, name) for name in _SCALAR_FIELDS}
    return ChannelState(**{**scalars, "csi": c.csi or "none", "equalizer": c.equalizer or "mmse"}, fading=fading)
