"""How fading coefficients map onto a frame's symbol stream, shared by the
channel emulator (which draws them) and the receiver (which equalizes).

One coefficient covers a coherence block of `coherence_symbols` consecutive
symbols of the stream (all blocks of the frame concatenated in order);
0 means one coefficient for the whole frame, 1 one per symbol (fast fading).
"""

from __future__ import annotations

import numpy as np


def blocks_of(num_symbols: int, coherence_symbols: int) -> int:
    """Number of coherence blocks that cover `num_symbols` symbols."""
    if coherence_symbols <= 0:
        return 1 if num_symbols else 0
    return -(-num_symbols // coherence_symbols)


def expand(coefficients: np.ndarray, num_symbols: int, coherence_symbols: int) -> np.ndarray:
    """Per-block coefficients -> one coefficient per symbol, shape [num_symbols]."""
    length = coherence_symbols if coherence_symbols > 0 else max(num_symbols, 1)
    return np.repeat(coefficients, length)[:num_symbols]
