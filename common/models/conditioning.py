"""The diffusion decoder's condition, built the same way in training and in
the receiver: the received soft semantic map and the latent codec's coarse image.
numpy, as the receiver's decode path is (training converts its tensors)."""

from __future__ import annotations

import numpy as np


def make_condition(soft_map: np.ndarray, guide: np.ndarray | None) -> np.ndarray:
    """soft map [B, C, H, W] (probabilities) and guide image [B, 3, H, W] in [0, 1]
    (None: no latent, as in the Q-GESCO-faithful codec) -> condition float32 [B, C + 3, H, W]."""
    guide_channels = np.zeros_like(soft_map[:, :3]) if guide is None else guide * 2 - 1
    return np.concatenate([soft_map, guide_channels], 1).astype(np.float32, copy=False)
