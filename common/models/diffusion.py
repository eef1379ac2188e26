"""The receiver's generative decoder: a SPADE-conditioned UNet in the SDM /
GESCO family that predicts, given x_t, the timestep and the condition (the
received soft semantic map and the decoded latent's coarse image), either the
noise in x_t ("epsilon") or the velocity v = sqrt(ab) noise - sqrt(1 - ab) x0
("v", Salimans & Ho 2022: its loss weighs the clean image at high noise, where
the map-only mode draws the whole scene). `sampling.noise_from` turns either into the
noise the samplers take (sampling.py, where the schedule and the samplers live).

Condition layout [B, num_classes + 3, H, W]: the soft map (probabilities),
then the guide image in [-1, 1]. An all-zero condition is the "no condition"
of classifier-free guidance; a zero guide with a map is the map-only
condition (the Q-GESCO-faithful codec sends no latent).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn
from torch.nn import functional as F

from .sampling import PREDICTIONS


def timestep_embedding(t: torch.Tensor, dim: int) -> torch.Tensor:
    """Sinusoidal embedding of integer timesteps [B] -> [B, dim]."""
    half = dim // 2
    frequencies = torch.exp(-math.log(10_000) * torch.arange(half, device=t.device) / half)
    angles = t.float()[:, None] * frequencies[None]
    return torch.cat([angles.sin(), angles.cos()], 1)


class ConditionPyramid:
    """The condition at each feature resolution, resized once per forward pass rather than
    in every SPADE (15 resizes of the same tensor to 3 sizes): measurably faster, above all
    for the int8 model, where each resize is a float island in an integer graph."""

    def __init__(self, condition: torch.Tensor):
        self._full = condition
        self._by_size: dict[tuple[int, int], torch.Tensor] = {}

    def at(self, size) -> torch.Tensor:
        if not isinstance(size, tuple):  # symbolic (torch.fx tracing): resize, nothing to cache by
            return F.interpolate(self._full, size=size, mode="bilinear", align_corners=False)
        # Cached by the sizes as ints; resized to `size` itself, which in an ONNX export is traced from the
        # input's shape, so that the exported model runs at any size (each level keeps its own key).
        key = tuple(int(s) for s in size)
        if key == tuple(int(s) for s in self._full.shape[-2:]):
            return self._full
        if key not in self._by_size:
            self._by_size[key] = F.interpolate(self._full, size=size, mode="bilinear", align_corners=False)
        return self._by_size[key]


class SPADE(nn.Module):
    """Spatially-adaptive normalization (Park et al. 2019): group-normalize x,
    then scale and shift it per pixel by maps computed from the condition.

    The maps (its modulation: scale = 1 + gamma, shift = beta) depend on the condition alone, not on
    x_t or t, so a sampler computes them once per frame rather than at every step (condition caching)."""

    def __init__(self, channels: int, condition_channels: int, hidden: int = 32):
        super().__init__()
        self.norm = nn.GroupNorm(8, channels, affine=False)
        self.shared = nn.Sequential(nn.Conv2d(condition_channels, hidden, 3, padding=1), nn.SiLU())
        self.gamma = nn.Conv2d(hidden, channels, 3, padding=1)
        self.beta = nn.Conv2d(hidden, channels, 3, padding=1)

    def modulation(self, condition: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(scale, shift) [B, channels, h, w] from the condition at this layer's resolution."""
        features = self.shared(condition)
        return 1 + self.gamma(features), self.beta(features)

    def forward(self, x: torch.Tensor, modulations: Modulations) -> torch.Tensor:
        scale, shift = modulations.next(self, x)
        return self.norm(x) * scale + shift


class SPADEResBlock(nn.Module):
    def __init__(self, in_channels: int, out_channels: int, embedding_dim: int, condition_channels: int,
                 spade_hidden: int = 32):
        super().__init__()
        self.norm1 = SPADE(in_channels, condition_channels, spade_hidden)
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, padding=1)
        self.time = nn.Linear(embedding_dim, out_channels)
        self.norm2 = SPADE(out_channels, condition_channels, spade_hidden)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, padding=1)
        self.skip = nn.Conv2d(in_channels, out_channels, 1) if in_channels != out_channels else nn.Identity()

    def forward(self, x, embedding, modulations: Modulations):
        h = self.conv1(F.silu(self.norm1(x, modulations)))
        h = h + self.time(embedding)[:, :, None, None]
        h = self.conv2(F.silu(self.norm2(h, modulations)))
        return h + self.skip(x)


class Modulations:
    """Where the SPADEs of one forward pass take their (scale, shift) from, in the order they apply them:
    computed from the condition as each is reached (the uncached network: no more memory than one
    SPADE's maps), or the ones computed ahead for the whole pass (`SemanticDiffusionUNet.modulations`)."""

    def __init__(self, condition: torch.Tensor | None = None, cached: Sequence[torch.Tensor] = ()):
        self._pyramid = None if condition is None else ConditionPyramid(condition)
        self._cached = iter(cached)

    def next(self, spade: SPADE, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The (scale, shift) of `spade`, the next SPADE of the pass, normalizing x."""
        if self._pyramid is not None:
            return spade.modulation(self._pyramid.at(x.shape[-2:]))
        try:
            scale, shift = next(self._cached), next(self._cached)
        except StopIteration:
            raise ValueError("fewer cached modulations than the network's SPADEs (2 each)") from None
        if scale.shape[0] != x.shape[0]:  # a batch's cache is its own: broadcasting another's would be silent
            raise ValueError(f"cached modulations of a batch of {scale.shape[0]} for a batch of {x.shape[0]}")
        return scale, shift

    def check_used_up(self) -> None:
        if next(self._cached, None) is not None:
            raise ValueError("more cached modulations than the network's SPADEs (2 each): another network's?")


class SemanticDiffusionUNet(nn.Module):
    """x_t [B, 3, H, W], t [B] (0..T-1), condition [B, num_classes + 3, H, W] -> predicted noise, or
    velocity with prediction="v", [B, 3, H, W].

    H and W must be divisible by 2**(len(widths) - 1). in_channels and condition_channels (default
    num_classes + 3) let the same network denoise another signal under another condition: the latent
    diffusion codec's VAE latent, conditioned on its received estimate (models/photo_latent.py).
    """

    def __init__(self, num_classes: int = 19, widths: tuple[int, ...] = (32, 64, 96), embedding_dim: int = 128,
                 prediction: str = "epsilon", in_channels: int = 3, condition_channels: int | None = None,
                 spade_hidden: int = 32):
        super().__init__()
        if prediction not in PREDICTIONS:
            raise ValueError(f"prediction must be one of {PREDICTIONS}, got {prediction!r}")
        condition_channels = num_classes + 3 if condition_channels is None else condition_channels
        self.num_classes = num_classes
        self.in_channels, self.condition_channels = in_channels, condition_channels
        self.prediction = prediction
        self.embedding_dim = embedding_dim
        self.time_mlp = nn.Sequential(nn.Linear(embedding_dim, embedding_dim), nn.SiLU(),
                                      nn.Linear(embedding_dim, embedding_dim))
        self.stem = nn.Conv2d(in_channels, widths[0], 3, padding=1)
        self.down_blocks = nn.ModuleList()
        self.downsamples = nn.ModuleList()
        previous = widths[0]
        for i, width in enumerate(widths):
            self.down_blocks.append(SPADEResBlock(previous, width, embedding_dim, condition_channels, spade_hidden))
            previous = width
            if i < len(widths) - 1:
                self.downsamples.append(nn.Conv2d(width, width, 3, stride=2, padding=1))
        self.middle = SPADEResBlock(previous, previous, embedding_dim, condition_channels, spade_hidden)
        self.up_blocks = nn.ModuleList()
        for width in reversed(widths):
            self.up_blocks.append(SPADEResBlock(previous + width, width, embedding_dim, condition_channels,
                                                spade_hidden))
            previous = width
        self.out_norm = SPADE(previous, condition_channels, spade_hidden)
        self.out = nn.Conv2d(previous, in_channels, 3, padding=1)
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)

    def forward(self, x: torch.Tensor, t: torch.Tensor, condition: torch.Tensor) -> torch.Tensor:
        return self._denoise(x, t, Modulations(condition))

    def modulations(self, condition: torch.Tensor) -> list[torch.Tensor]:
        """Every SPADE's (scale, shift) from the condition, flattened, in the order `denoise` takes them: the
        condition's share of a step (about 70 % of its FLOPs), computed once for all the sampler's steps.
        Memory: 688 float32 channels per condition pixel with the default widths (2.75 KB; 22.5 MB at 64x128)."""
        pyramid = ConditionPyramid(condition)
        # Each level's size as the stride-2 convolutions make it, ceil(s / 2), taken from a strided slice
        # so that an ONNX export traces it from the input's shape as forward() does.
        probe = condition[:, :1]
        sizes = [probe.shape[-2:]]
        for _ in self.downsamples:
            probe = probe[..., ::2, ::2]
            sizes.append(probe.shape[-2:])
        levels = [*range(len(self.down_blocks)), len(sizes) - 1, *reversed(range(len(self.up_blocks)))]
        blocks = [*self.down_blocks, self.middle, *self.up_blocks]
        spades = [(spade, sizes[level]) for block, level in zip(blocks, levels, strict=True)
                  for spade in (block.norm1, block.norm2)] + [(self.out_norm, sizes[0])]
        return [map_ for spade, size in spades for map_ in spade.modulation(pyramid.at(size))]

    def denoise(self, x: torch.Tensor, t: torch.Tensor, modulations: Sequence[torch.Tensor]) -> torch.Tensor:
        """forward() given the condition's modulations (`modulations(condition)`): the same output, exactly."""
        cached = Modulations(cached=modulations)
        output = self._denoise(x, t, cached)
        cached.check_used_up()
        return output

    def _denoise(self, x: torch.Tensor, t: torch.Tensor, modulations: Modulations) -> torch.Tensor:
        embedding = self.time_mlp(timestep_embedding(t, self.embedding_dim))
        h = self.stem(x)
        skips = []
        for i, block in enumerate(self.down_blocks):
            h = block(h, embedding, modulations)
            skips.append(h)
            if i < len(self.downsamples):
                h = self.downsamples[i](h)
        h = self.middle(h, embedding, modulations)
        for block in self.up_blocks:
            skip = skips.pop()
            h = F.interpolate(h, size=skip.shape[-2:], mode="nearest")
            h = block(torch.cat([h, skip], 1), embedding, modulations)
        return self.out(F.silu(self.out_norm(h, modulations)))
