"""Learned joint source-channel codecs: encoders map to complex channel
symbols with unit average power per item, decoders take the receiver's
equalized symbols together with each symbol's error variance (so they know
the SNR and, under fading, how reliable every symbol is).

* MapEncoder/MapDecoder: one-hot semantic map <-> k symbols (the semantic-map codec).
* LatentEncoder/LatentDecoder: VAE-style image latent (the latent codec): the
  encoder gives a mean and log-variance; the mean is sent, and the channel
  noise takes the place of the VAE's sampling noise at the receiver, so the
  decoder is trained on mean + noise with a KL term keeping the latent Gaussian.
* ImageEncoder/ImageDecoder: Deep JSCC (Bourtsoulatze et al.), the baseline.

Symbol layout: features [B, C, h, w] -> flatten -> consecutive real pairs
(I, Q) -> complex [B, C*h*w/2].
"""

from __future__ import annotations

import torch
from torch import nn

from .layers import conv_block


def to_symbols(features: torch.Tensor) -> torch.Tensor:
    """Real [B, C, h, w] -> complex64 [B, k], k = C*h*w/2, E|x|^2 = 1 per item."""
    flat = features.float().flatten(1)
    symbols = torch.complex(flat[:, 0::2], flat[:, 1::2])
    power = symbols.abs().pow(2).mean(1, keepdim=True).clamp_min(1e-12)
    return symbols / power.sqrt()


def from_symbols(symbols: torch.Tensor, error_variance: torch.Tensor, shape: tuple[int, int, int]) -> torch.Tensor:
    """Equalized complex [B, k] and error variances [B, k] -> real [B, 2C, h, w]:
    the symbol values, then log10 of each value's error variance."""
    values = torch.stack([symbols.real, symbols.imag], -1).flatten(1)
    reliability = torch.log10(error_variance.clamp(1e-6, 1e6)).repeat_interleave(2, 1)
    return torch.cat([values.view(-1, *shape), reliability.view(-1, *shape)], 1)


class _Encoder(nn.Module):
    """in_channels -> stride-2 conv blocks -> out_channels features."""

    def __init__(self, in_channels: int, widths: tuple[int, ...], out_channels: int):
        super().__init__()
        layers, previous = [], in_channels
        for width in widths:
            layers.append(conv_block(previous, width, stride=2))
            layers.append(conv_block(width, width))
            previous = width
        layers.append(nn.Conv2d(previous, out_channels, 3, padding=1))
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class _Decoder(nn.Module):
    """2*channels (values + reliability) -> upsampling conv blocks -> out_channels."""

    def __init__(self, channels: int, widths: tuple[int, ...], out_channels: int):
        super().__init__()
        layers, previous = [conv_block(2 * channels, widths[0])], widths[0]
        for width in widths:
            layers += [nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False), conv_block(previous, width),
                       conv_block(width, width)]
            previous = width
        layers.append(nn.Conv2d(previous, out_channels, 3, padding=1))
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class MapEncoder(_Encoder):
    """one-hot map [B, classes, H, W] -> features [B, channels, H/4, W/4]."""

    def __init__(self, num_classes: int = 19, channels: int = 4):
        super().__init__(num_classes, (32, 48), channels)
        self.channels = channels


class MapDecoder(_Decoder):
    """[B, 2*channels, H/4, W/4] -> logits [B, classes, H, W]."""

    def __init__(self, num_classes: int = 19, channels: int = 4):
        super().__init__(channels, (48, 32), num_classes)
        self.channels = channels


class LatentEncoder(nn.Module):
    """image [B, 3, H, W] -> (mean, log-variance), each [B, channels, H/8, W/8]."""

    def __init__(self, channels: int = 4):
        super().__init__()
        self.net = _Encoder(3, (32, 48, 64), 2 * channels)
        self.channels = channels

    def forward(self, image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mean, log_variance = self.net(image).chunk(2, 1)
        return mean, log_variance.clamp(-10, 10)


class LatentDecoder(_Decoder):
    """[B, 2*channels, H/8, W/8] -> coarse image [B, 3, H, W] in [0, 1]."""

    def __init__(self, channels: int = 4):
        super().__init__(channels, (64, 48, 32), 3)
        self.channels = channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(super().forward(x))


class ImageEncoder(_Encoder):
    """Deep JSCC: image [B, 3, H, W] -> features [B, channels, H/4, W/4]."""

    def __init__(self, channels: int = 5):
        super().__init__(3, (48, 64), channels)
        self.channels = channels


class ImageDecoder(_Decoder):
    """[B, 2*channels, H/4, W/4] -> image [B, 3, H, W] in [0, 1]."""

    def __init__(self, channels: int = 5):
        super().__init__(channels, (64, 48), 3)
        self.channels = channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(super().forward(x))
