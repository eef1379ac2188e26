"""Frame -> image: the receiver's decode path, usable in-process."""

from __future__ import annotations

import numpy as np

from semcom.common import codecs
from semcom.common.frames import Frame


def decode_frame(frame: Frame) -> np.ndarray:
    """Decodes a received frame with the codec its header names; uint8 [H, W, 3]."""
    return codecs.get(frame.codec, field="frame.header.codec").decode(frame)
