"""The class-free generative photo codec's networks (seed: diffusion-driven semantic communication
with bandwidth constraints, arXiv 2407.18468), apart from its diffusion UNet (diffusion.py, run on
the latent):

* PhotoVAEEncoder / PhotoVAEDecoder: an image VAE with a latent of `latent_channels` maps at 1/4 of
  the image's size (8 maps: 1/6 of the image's real values). Its latent is the space the diffusion
  decoder works in, as Stable Diffusion's is; it is trained alone, first (`semcom train photo_vae`).
* LatentDownsampler: the bandwidth module at the transmitter: the latent (scaled to unit variance)
  -> `max_channels` feature maps at 1/8 of the image's size, ordered so that the first C of them
  decode on their own (a frame sends C: k/n = C/384, as Deep JSCC's maps).
* LatentUpsamplingHead: its pair at the receiver: the received maps (values and log10 error
  variances, the unsent ones erased) -> the mean and log-variance of the latent given what was
  received. The receiver draws latent = mean + sigma * noise (the reparameterization), the forward
  diffusion's sample at the timestep whose noise matches sigma: there its denoising starts.

Every network is fully convolutional: any image whose sides are multiples of 8.
"""

from __future__ import annotations

import torch
from torch import nn

from .jscc import ResidualBlock

VAE_STRIDE = 4  # the VAE latent's downsampling
STRIDE = 8  # the frame's: the sent maps are at 1/8 of the (padded) image


class PhotoVAEEncoder(nn.Module):
    """image [B, 3, H, W] in [0, 1] (H, W multiples of 4) -> (mean, log-variance), each
    [B, latent_channels, H/4, W/4]."""

    def __init__(self, latent_channels: int = 8, widths: tuple[int, int] = (64, 128)):
        super().__init__()
        first, second = widths
        self.net = nn.Sequential(
            nn.Conv2d(3, first, 5, stride=2, padding=2), nn.GELU(),
            nn.Conv2d(first, second, 3, stride=2, padding=1),
            ResidualBlock(second), ResidualBlock(second),
            nn.GroupNorm(8, second), nn.GELU(), nn.Conv2d(second, 2 * latent_channels, 3, padding=1),
        )
        self.latent_channels = latent_channels

    def forward(self, image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mean, log_variance = self.net(image * 2 - 1).chunk(2, 1)
        return mean, log_variance.clamp(-12, 6)


class PhotoVAEDecoder(nn.Module):
    """latent [B, latent_channels, H/4, W/4] -> image [B, 3, H, W] in [0, 1]."""

    def __init__(self, latent_channels: int = 8, widths: tuple[int, int] = (64, 128)):
        super().__init__()
        first, second = widths
        self.net = nn.Sequential(
            nn.Conv2d(latent_channels, second, 3, padding=1),
            ResidualBlock(second), ResidualBlock(second),
            nn.GroupNorm(8, second), nn.GELU(), nn.Conv2d(second, 4 * first, 3, padding=1), nn.PixelShuffle(2),
            nn.GELU(), nn.Conv2d(first, first, 3, padding=1), nn.GELU(),
            nn.Conv2d(first, 4 * 3, 3, padding=1), nn.PixelShuffle(2),
        )
        self.latent_channels = latent_channels

    def forward(self, latent: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.net(latent))


class LatentDownsampler(nn.Module):
    """unit-variance latent [B, latent_channels, h, w] -> features [B, max_channels, h/2, w/2]."""

    def __init__(self, latent_channels: int = 8, max_channels: int = 8, width: int = 96):
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv2d(latent_channels, width, 3, padding=1), nn.GELU(),
            nn.Conv2d(width, width, 3, stride=2, padding=1), ResidualBlock(width),
            nn.GroupNorm(8, width), nn.GELU(), nn.Conv2d(width, max_channels, 3, padding=1),
        )
        self.latent_channels, self.max_channels = latent_channels, max_channels

    def forward(self, latent: torch.Tensor) -> torch.Tensor:
        return self.net(latent)


class LatentUpsamplingHead(nn.Module):
    """received planes [B, 2 * max_channels, h/2, w/2] (values, then log10 error variances) ->
    (mean, log-variance) of the unit-variance latent, each [B, latent_channels, h, w].

    `latent_scale` is the VAE latent's standard deviation over the training data (a running average
    kept while training, as batch norm keeps its statistics): the transmitter divides the latent by
    it, the receiver multiplies the denoised latent by it (Stable Diffusion's scale factor, measured
    rather than fixed)."""

    def __init__(self, latent_channels: int = 8, max_channels: int = 8, width: int = 96):
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv2d(2 * max_channels, width, 3, padding=1), ResidualBlock(width),
            nn.GroupNorm(8, width), nn.GELU(), nn.Conv2d(width, 4 * width, 3, padding=1), nn.PixelShuffle(2),
            ResidualBlock(width), nn.GroupNorm(8, width), nn.GELU(),
            nn.Conv2d(width, 2 * latent_channels, 3, padding=1),
        )
        self.register_buffer("latent_scale", torch.ones(()))
        self.latent_channels, self.max_channels = latent_channels, max_channels

    def forward(self, received: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mean, log_variance = self.net(received).chunk(2, 1)
        return mean, log_variance.clamp(-12, 4)
