"""Frames -> images: the receiver's decode path, usable in-process (tools/chain.py drives it with
the transmitter's and the channel's).

`decode_frames` is the one entry point: each frame equalized, then each codec's frames decoded
together with the receiver's DecoderRuntime (precision, sampler, weights).

Before the codec sees a frame, `equalize_frame` undoes the channel as far as
the receiver can: symbols the budget cut off become erasures (zero, infinite
error variance), fading is equalized with the CSI the channel state allows
(perfect: the coefficients it carries; estimated: least squares from the
frame's pilots; none: nothing, as if h = 1), and pilots are removed.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from semcom.common import codecs
from semcom.common.codecs import Decoded
from semcom.common.models.runtime import DecoderRuntime
from semcom.common.phy.csi import equalize, estimate_from_pilots, pilot_mask
from semcom.common.phy.fading_layout import blocks_of, expand
from semcom.common.serving.errors import InvalidInput, ServiceError
from semcom.common.wire.frames import Frame, SymbolBlock


def decode_frames(frames: list[Frame], runtime: DecoderRuntime) -> list[Decoded | ServiceError]:
    """Decodes received frames, each codec's in one `decode_batch` (the batching codecs, the generative
    ones, share sampler runs): per frame (image uint8 [H, W, 3], the received semantic map as train IDs
    or None). A bad frame gets its own error in its own slot and does not fail the others."""
    results: list[Decoded | ServiceError | None] = [None] * len(frames)
    by_codec: dict[str, list[tuple[int, Frame]]] = {}
    for index, frame in enumerate(frames):
        try:
            codecs.get(frame.codec, field="frame.header.codec").check_layout(frame)
            by_codec.setdefault(frame.codec, []).append((index, equalize_frame(frame)))
        except ServiceError as error:
            results[index] = error
    for codec_id, items in by_codec.items():
        decoded = codecs.get(codec_id).decode_batch([frame for _, frame in items], runtime)
        for (index, _), result in zip(items, decoded, strict=True):
            results[index] = result
    return results


def equalize_frame(frame: Frame) -> Frame:
    """Erasures restored, fading equalized, pilots removed; blocks gain per-symbol error variances."""
    channel = frame.channel
    noise = channel.noise_variance if channel else 0.0
    sizes = [b.symbols.size + b.erased_tail for b in frame.blocks]
    equalizing = channel is not None and channel.model != "awgn" and channel.csi != "none"
    fading = _perfect_csi(frame, sum(sizes)) if equalizing and channel.csi == "perfect" else None

    blocks, offset = [], 0
    for block, size in zip(frame.blocks, sizes):
        arrived = block.symbols.size
        received = np.concatenate([block.symbols, np.zeros(block.erased_tail, np.complex64)])
        if not equalizing:
            estimate, error = received.copy(), np.full(size, noise, np.float32)
        else:
            h = fading[offset:offset + size] if fading is not None else _estimated_csi(frame, received)
            h = h.copy()
            h[arrived:] = 0
            estimate, error = equalize(received, h, noise, channel.equalizer)
        estimate[arrived:], error[arrived:] = 0, np.inf
        data = ~pilot_mask(size, frame.pilot_spacing)
        blocks.append(SymbolBlock(block.name, estimate[data], block.power_scale, noise_variance=error[data],
                                  mmse=equalizing and channel.equalizer == "mmse"))
        offset += size
    return replace(frame, blocks=blocks)


def _perfect_csi(frame: Frame, stream_length: int) -> np.ndarray:
    channel = frame.channel
    if channel.fading is None:
        raise InvalidInput("frame.channel.fading: missing, but csi is 'perfect' on a fading channel")
    expected = blocks_of(stream_length, channel.coherence_symbols)
    if channel.fading.size != expected:
        raise InvalidInput(f"frame.channel.fading: {channel.fading.size} coefficients, the frame's {stream_length} "
                           f"symbols in blocks of {channel.coherence_symbols} need {expected}")
    return expand(channel.fading, stream_length, channel.coherence_symbols)


def _estimated_csi(frame: Frame, received: np.ndarray) -> np.ndarray:
    if frame.pilot_spacing == 0:
        raise InvalidInput("frame.header.pilot_spacing: 0, but csi is 'estimated': the receiver needs pilots "
                           "(send with --pilot-spacing)")
    return estimate_from_pilots(received, frame.pilot_spacing)
