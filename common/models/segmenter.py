"""The transmitter's segmenter: a lightweight attention UNet with CBAM, in the
spirit of LSSC (few down-sampling levels, attention at every level); and the
encoder student, which goes from the image straight to what the semantic-map
codec sends."""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from .layers import CBAM, SNRAttention, conv_block


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


class ChannelAdaptiveEncoder(nn.Module):
    """The lightweight channel-adaptive encoder student (seed arXiv 2506.13243, LSSC spirit): image float
    [B, 3, H, W] in [0, 1] and the design SNR (dB, [B]) -> (mean, log-variance), each [B, channels, H/4, W/4],
    in the map codec's feature space: the mean is what the transmitter sends in place of segmenter + map
    encoder, and the receiver's map decoder reads it unchanged.

    Three stride-2 levels with CBAM (the last, at H/8, for context, brought back to H/4 beside its skip).
    With `snr_adaptive`, an SNR attention gate (ADJSCC's) after the H/4 and H/8 levels adapts what is sent
    to the channel; without it the SNR is ignored. The log-variance is the information-bottleneck's
    (training samples mean + sigma * noise; its KL to N(0, 1) is the rate): H and W divisible by 8.
    """

    def __init__(self, channels: int = 4, widths: tuple[int, ...] = (16, 32, 48, 64), snr_adaptive: bool = True):
        super().__init__()
        self.channels, self.snr_adaptive = channels, snr_adaptive
        self.stem = nn.Sequential(conv_block(3, widths[0]), CBAM(widths[0]))
        self.down = nn.ModuleList(
            nn.Sequential(conv_block(widths[i], widths[i + 1], stride=2), conv_block(widths[i + 1], widths[i + 1]),
                          CBAM(widths[i + 1]))
            for i in range(3))
        self.merge = conv_block(widths[3] + widths[2], widths[2])
        self.gates = nn.ModuleList([SNRAttention(widths[2]), SNRAttention(widths[3])]) if snr_adaptive else None
        self.head = nn.Conv2d(widths[2], 2 * channels, 3, padding=1)

    def forward(self, image: torch.Tensor, snr_db: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        if self.snr_adaptive and snr_db is None:
            raise ValueError("an SNR-adaptive encoder needs the design SNR")
        half = self.down[0](self.stem(image * 2 - 1))
        quarter = self.down[1](half)
        if self.gates is not None:
            quarter = self.gates[0](quarter, snr_db)
        eighth = self.down[2](quarter)
        if self.gates is not None:
            eighth = self.gates[1](eighth, snr_db)
        up = F.interpolate(eighth, size=quarter.shape[-2:], mode="bilinear", align_corners=False)
        mean, log_variance = self.head(self.merge(torch.cat([up, quarter], 1))).chunk(2, 1)
        return mean, log_variance.clamp(-10, 10)
