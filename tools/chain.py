"""The frame's real path in one process: transmitter encode -> channel -> receiver decode.

A Chain runs the very code the three services run (transmitter/pipeline.py,
channel_emulator/emulator.py, receiver/pipeline.py with its equalizer), without
the network between them. The sweep, int8 calibration, the benchmarks and the
tests drive it; training puts its torch symbols through the same channel and
equalizer (training/channel_in_the_loop.py).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from semcom.channel_emulator.emulator import ChannelConfig, ChannelEmulator
from semcom.common.codecs import Decoded
from semcom.common.models.runtime import DecoderRuntime
from semcom.common.serving.errors import ServiceError
from semcom.common.wire.frames import Frame
from semcom.receiver.pipeline import decode_frames, equalize_frame
from semcom.transmitter.pipeline import encode_image


@dataclass
class Trip:
    """One image's way through the chain."""

    sent: Frame  # as the transmitter sent it
    received: Frame  # as the channel delivered it, before the receiver equalizes it
    image: np.ndarray  # the reconstruction, uint8 [H, W, 3]
    semantic_map: np.ndarray | None  # the received map (train IDs) for codecs that return one


@dataclass
class Chain:
    """channel: the emulator's configuration (or an emulator, to share its random state).
    runtime: the receiver's precision and sampler. pilot_spacing: the transmitter's pilots."""

    channel: ChannelConfig | ChannelEmulator = field(default_factory=ChannelConfig)
    runtime: DecoderRuntime = field(default_factory=DecoderRuntime)
    pilot_spacing: int = 0

    def __post_init__(self):
        if isinstance(self.channel, ChannelConfig):
            self.channel = ChannelEmulator(self.channel)

    def encode(self, image: np.ndarray, codec_id: str, bandwidth_ratio: float = 0.0, frame_id: str | None = None,
               **options) -> Frame:
        """TX: uint8 [H, W, 3] -> the frame the transmitter sends (options: codec-specific, e.g. design_snr_db)."""
        return encode_image(image, codec_id, bandwidth_ratio, pilot_spacing=self.pilot_spacing, frame_id=frame_id,
                            **options)

    def transmit(self, frame: Frame) -> Frame:
        """CH: the frame after the budget, fading and noise, with its channel state."""
        return self.channel.apply(frame)[0]

    @staticmethod
    def equalize(received: Frame) -> Frame:
        """RX's first stage: erasures, fading equalized, pilots removed (what a codec's decoder sees)."""
        return equalize_frame(received)

    def decode(self, received: Frame) -> Decoded:
        """RX: (image, received map or None); raises the frame's error."""
        return self.decode_many([received])[0]

    def decode_many(self, received: list[Frame]) -> list[Decoded]:
        """RX for many frames at once (the generative codecs share sampler runs); raises the first error."""
        results = decode_frames(received, self.runtime)
        for result in results:
            if isinstance(result, ServiceError):
                raise result
        return results

    def send(self, image: np.ndarray, codec_id: str, bandwidth_ratio: float = 0.0, frame_id: str | None = None,
             **options) -> Trip:
        """TX -> CH -> RX for one image."""
        sent = self.encode(image, codec_id, bandwidth_ratio, frame_id, **options)
        received = self.transmit(sent)
        reconstruction, semantic_map = self.decode(received)
        return Trip(sent, received, reconstruction, semantic_map)
