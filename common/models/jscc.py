"""Learned joint source-channel codecs: encoders map to complex channel
symbols with unit average power per item, decoders take the receiver's
equalized symbols together with each symbol's error variance (so they know
the SNR and, under fading, how reliable every symbol is).

* MapEncoder/MapDecoder: one-hot semantic map <-> k symbols (the semantic-map codec).
* LatentEncoder/LatentDecoder: VAE-style image latent (the latent codec): the
  encoder gives a mean and log-variance; the mean is sent, and the channel
  noise takes the place of the VAE's sampling noise at the receiver, so the
  decoder is trained on mean + noise with a KL term keeping the latent Gaussian.
* ImageEncoder/ImageDecoder: Deep JSCC (Bourtsoulatze et al.), the baseline, at the preset size.
* NativeImageEncoder/NativeImageDecoder: Deep JSCC at any image size (fully convolutional,
  stride 8) and any bandwidth ratio up to 1/6: the encoder orders its 64 feature maps so that
  the first C of them (C even) decode on their own; a frame sends C of them, k/n = C/384, and the
  decoder sees the unsent ones as erasures (value 0, error variance 1e6) -- one rate-adaptive model.

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


class ResidualBlock(nn.Module):
    """Two 3x3 convolutions with group norm and GELU, plus the input (no batch statistics: images
    of every size, batch 1 at the receiver)."""

    def __init__(self, channels: int):
        super().__init__()
        self.net = nn.Sequential(nn.GroupNorm(8, channels), nn.GELU(), nn.Conv2d(channels, channels, 3, padding=1),
                                 nn.GroupNorm(8, channels), nn.GELU(), nn.Conv2d(channels, channels, 3, padding=1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.net(x)


NATIVE_STRIDE = 8  # the native codec's downsampling: images are padded to a multiple of it


class NativeImageEncoder(nn.Module):
    """image [B, 3, H, W] (H, W multiples of 8) -> features [B, max_channels, H/8, W/8]."""

    def __init__(self, max_channels: int = 64, widths: tuple[int, int, int] = (32, 64, 128)):
        super().__init__()
        first, second, third = widths
        self.net = nn.Sequential(
            nn.Conv2d(3, first, 5, stride=2, padding=2), nn.GELU(),
            nn.Conv2d(first, second, 3, stride=2, padding=1), nn.GELU(),
            nn.Conv2d(second, second, 3, padding=1), nn.GELU(),
            nn.Conv2d(second, third, 3, stride=2, padding=1),
            ResidualBlock(third), ResidualBlock(third),
            nn.GroupNorm(8, third), nn.GELU(), nn.Conv2d(third, max_channels, 3, padding=1),
        )
        self.max_channels = max_channels

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        return self.net(image * 2 - 1)


class NativeImageDecoder(nn.Module):
    """[B, 2 * max_channels, H/8, W/8] (values, then log10 error variances; unsent maps erased)
    -> image [B, 3, H, W] in [0, 1]."""

    def __init__(self, max_channels: int = 64, widths: tuple[int, int, int] = (32, 64, 128)):
        super().__init__()
        first, second, third = widths
        self.net = nn.Sequential(
            nn.Conv2d(2 * max_channels, third, 3, padding=1),
            ResidualBlock(third), ResidualBlock(third),
            nn.GroupNorm(8, third), nn.GELU(), nn.Conv2d(third, 4 * second, 3, padding=1), nn.PixelShuffle(2),
            nn.GELU(), nn.Conv2d(second, second, 3, padding=1), nn.GELU(),
            nn.Conv2d(second, 4 * first, 3, padding=1), nn.PixelShuffle(2), nn.GELU(),
            nn.Conv2d(first, 4 * 3, 3, padding=1), nn.PixelShuffle(2),
        )
        self.max_channels = max_channels

    def forward(self, received: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.net(received))


def erase_unsent(planes: torch.Tensor, max_channels: int) -> torch.Tensor:
    """Decoder input [B, 2C, h, w] of the C maps sent -> [B, 2 * max_channels, h, w]: the maps not
    sent as erasures (value 0, log10 error variance 6), as the receiver fills them."""
    values, reliability = planes.chunk(2, 1)
    missing = max_channels - values.shape[1]
    zeros = values.new_zeros(values.shape[0], missing, *values.shape[2:])
    return torch.cat([values, zeros, reliability, zeros + ERASED_RELIABILITY], 1)


ERASED_RELIABILITY = 6.0  # log10 of the error variance an erased value gets (from_symbols' clamp, 1e6)
