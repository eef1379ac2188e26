"""Building blocks shared by the models."""

from __future__ import annotations

import torch
from torch import nn


def conv_block(in_channels: int, out_channels: int, stride: int = 1) -> nn.Sequential:
    """3x3 conv, batch norm, ReLU."""
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=1, bias=False),
        nn.BatchNorm2d(out_channels),
        nn.ReLU(inplace=True),
    )


class CBAM(nn.Module):
    """Convolutional Block Attention Module (Woo et al. 2018): channel attention
    from average- and max-pooled descriptors through a shared MLP, then spatial
    attention from a 7x7 conv over the channel-wise average and max."""

    def __init__(self, channels: int, reduction: int = 8):
        super().__init__()
        hidden = max(4, channels // reduction)
        self.mlp = nn.Sequential(nn.Conv2d(channels, hidden, 1), nn.ReLU(inplace=True), nn.Conv2d(hidden, channels, 1))
        self.spatial = nn.Conv2d(2, 1, 7, padding=3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        channel = torch.sigmoid(self.mlp(x.mean((2, 3), keepdim=True)) + self.mlp(x.amax((2, 3), keepdim=True)))
        x = x * channel
        spatial = torch.sigmoid(self.spatial(torch.cat([x.mean(1, keepdim=True), x.amax(1, keepdim=True)], 1)))
        return x * spatial


class SNRAttention(nn.Module):
    """x * sigmoid(FC(GELU(FC([mean over space of x, SNR / 20])))): ADJSCC's attention-feature module (Xu et al.
    2021), a gate over feature channels set by the channel's SNR in dB."""

    def __init__(self, channels: int):
        super().__init__()
        self.gate = nn.Sequential(nn.Linear(channels + 1, channels // 4), nn.GELU(), nn.Linear(channels // 4, channels),
                                  nn.Sigmoid())

    def forward(self, x: torch.Tensor, snr_db: torch.Tensor) -> torch.Tensor:
        context = torch.cat([x.float().mean((2, 3)), snr_db.float()[:, None] / 20], 1)
        return x * self.gate(context).to(x.dtype)[:, :, None, None]


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def count_flops(model: nn.Module, *inputs: torch.Tensor) -> int:
    """Floating-point operations of one forward pass (multiply-add = 2), measured by torch."""
    from torch.utils.flop_counter import FlopCounterMode

    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        model(*inputs)
    return counter.get_total_flops()
