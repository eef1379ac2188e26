"""The transmitter's segmenter: a lightweight attention UNet with CBAM, in the
spirit of LSSC (few down-sampling levels, attention at every level)."""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from .layers import CBAM, conv_block


class AttentionUNet(nn.Module):
    """image float [B, 3, H, W] in [0, 1] -> logits [B, num_classes, H, W].

    H and W must be divisible by 2**levels.
    """

    def __init__(self, num_classes: int = 19, base_channels: int = 16, levels: int = 3):
        super().__init__()
        widths = [base_channels * 2**i for i in range(levels + 1)]
        self.levels = levels
        self.stem = nn.Sequential(conv_block(3, widths[0]), conv_block(widths[0], widths[0]), CBAM(widths[0]))
        self.down = nn.ModuleList(
            nn.Sequential(conv_block(widths[i], widths[i + 1], stride=2), conv_block(widths[i + 1], widths[i + 1]),
                          CBAM(widths[i + 1]))
            for i in range(levels)
        )
        self.up = nn.ModuleList(
            nn.Sequential(conv_block(widths[i + 1] + widths[i], widths[i]), conv_block(widths[i], widths[i]))
            for i in reversed(range(levels))
        )
        self.head = nn.Conv2d(widths[0], num_classes, 1)

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        skips = [self.stem(image)]
        for down in self.down:
            skips.append(down(skips[-1]))
        x = skips.pop()
        for up in self.up:
            skip = skips.pop()
            x = up(torch.cat([F.interpolate(x, size=skip.shape[-2:], mode="bilinear", align_corners=False), skip], 1))
        return self.head(x)
