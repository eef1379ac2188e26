"""Noise schedule and DDIM sampler, apart from the model (as in well-kept
diffusion libraries): the sampler takes any callable predicting the noise.

Schedule: the cosine schedule of Nichol & Dhariwal (2021) over T steps,
alpha_bar(t) = cos^2(((t/T) + s) / (1 + s) * pi/2), clipped betas.
DDIM (Song et al. 2021) with `eta` (0: deterministic), classifier-free
guidance eps = eps_uncond + scale (eps_cond - eps_uncond), and an optional
start from an initial image at timestep t_start (x_t = sqrt(ab) x0 + sqrt(1-ab) z),
the "start from the channel" idea of diffusion-driven semantic communication.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import torch


class CosineSchedule:
    def __init__(self, timesteps: int = 1000, offset: float = 0.008):
        self.timesteps = timesteps
        steps = torch.arange(timesteps + 1, dtype=torch.float64) / timesteps
        alpha_bar = torch.cos((steps + offset) / (1 + offset) * math.pi / 2) ** 2
        betas = (1 - alpha_bar[1:] / alpha_bar[:-1]).clamp(max=0.999)
        self.alpha_bar = torch.cumprod(1 - betas, 0).float()  # [T], alpha_bar[t] for t = 0..T-1

    def add_noise(self, x0: torch.Tensor, noise: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """q(x_t | x0): sqrt(ab_t) x0 + sqrt(1 - ab_t) noise, t [B]."""
        ab = self.alpha_bar.to(x0.device)[t].view(-1, 1, 1, 1)
        return ab.sqrt() * x0 + (1 - ab).sqrt() * noise

    def timestep_for_snr(self, snr_db: float) -> int:
        """The timestep whose signal-to-noise ratio ab/(1-ab) is closest to `snr_db`."""
        snr = self.alpha_bar / (1 - self.alpha_bar)
        return int(torch.argmin((10 * torch.log10(snr) - snr_db).abs()))


class DDIMSampler:
    """Samples x0 from noise (or from a noised initial image) in `steps` DDIM steps."""

    def __init__(self, schedule: CosineSchedule, steps: int = 20, eta: float = 0.0, guidance_scale: float = 1.0):
        if not 1 <= steps <= schedule.timesteps:
            raise ValueError(f"steps must be in 1..{schedule.timesteps}, got {steps}")
        self.schedule, self.steps, self.eta, self.guidance_scale = schedule, steps, eta, guidance_scale

    def timesteps(self, start: int | None = None) -> list[int]:
        """Descending timesteps, evenly spaced from `start` (default T-1) to 0."""
        top = self.schedule.timesteps - 1 if start is None else start
        count = min(self.steps, top + 1)
        return sorted({round(top * (1 - i / max(count - 1, 1))) for i in range(count)}, reverse=True)

    @torch.no_grad()
    def sample(self, predict_noise: Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor],
               condition: torch.Tensor, shape: tuple[int, ...],
               generator: torch.Generator | Sequence[torch.Generator] | None = None,
               initial: torch.Tensor | None = None, start: int | None = None) -> torch.Tensor:
        """x0 [shape] in [-1, 1].

        predict_noise(x_t, t [B], condition) -> noise. With guidance_scale != 1 it is also
        called with an all-zero condition. `initial` and `start`: begin at x_start = q(x_start | initial).
        `generator`: one for the batch, or one per batch item, so that an item's noise (and so its
        sample) does not depend on what it is batched with.
        """
        alpha_bar = self.schedule.alpha_bar
        steps = self.timesteps(start)
        noise = _randn(shape, generator)
        x = noise if initial is None else self.schedule.add_noise(initial, noise, torch.full((shape[0],), steps[0]))
        for i, t in enumerate(steps):
            batch_t = torch.full((shape[0],), t, dtype=torch.long)
            eps = self._guided(predict_noise, x, batch_t, condition)
            ab = alpha_bar[t]
            ab_prev = alpha_bar[steps[i + 1]] if i + 1 < len(steps) else torch.tensor(1.0)
            x0 = ((x - (1 - ab).sqrt() * eps) / ab.sqrt()).clamp(-1, 1)
            eps = (x - ab.sqrt() * x0) / (1 - ab).sqrt()  # consistent with the clipped x0
            sigma = self.eta * ((1 - ab_prev) / (1 - ab) * (1 - ab / ab_prev)).clamp(min=0).sqrt()
            x = ab_prev.sqrt() * x0 + (1 - ab_prev - sigma**2).clamp(min=0).sqrt() * eps
            if self.eta > 0 and i + 1 < len(steps):
                x = x + sigma * _randn(shape, generator)
        return x

    def _guided(self, predict_noise, x, t, condition):
        if self.guidance_scale == 1.0:
            return predict_noise(x, t, condition)
        both = predict_noise(torch.cat([x, x]), torch.cat([t, t]), torch.cat([condition, torch.zeros_like(condition)]))
        conditional, unconditional = both.chunk(2)
        return unconditional + self.guidance_scale * (conditional - unconditional)


def _randn(shape: tuple[int, ...], generator: torch.Generator | Sequence[torch.Generator] | None) -> torch.Tensor:
    if generator is None or isinstance(generator, torch.Generator):
        return torch.randn(shape, generator=generator)
    if len(generator) != shape[0]:
        raise ValueError(f"{len(generator)} generators for a batch of {shape[0]}")
    return torch.cat([torch.randn((1, *shape[1:]), generator=g) for g in generator])
