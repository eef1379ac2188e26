"""The diffusion decoder's condition, built the same way in training and in
the receiver: the received soft semantic map and the latent codec's coarse image."""

from __future__ import annotations

import torch


def make_condition(soft_map: torch.Tensor, guide: torch.Tensor | None) -> torch.Tensor:
    """soft map [B, C, H, W] (probabilities) and guide image [B, 3, H, W] in [0, 1]
    (None: no latent, as in the Q-GESCO-faithful codec) -> condition [B, C + 3, H, W]."""
    guide_channels = torch.zeros_like(soft_map[:, :3]) if guide is None else guide * 2 - 1
    return torch.cat([soft_map, guide_channels], 1)
