"""Noise schedule and samplers (DDIM, DPM-Solver++), apart from the model (as in well-kept
diffusion libraries): a sampler takes any callable predicting the noise.

Schedule: the cosine schedule of Nichol & Dhariwal (2021) over T steps,
alpha_bar(t) = cos^2(((t/T) + s) / (1 + s) * pi/2), clipped betas.
DDIM (Song et al. 2021) with `eta` (0: deterministic), classifier-free
guidance eps = eps_uncond + scale (eps_cond - eps_uncond), and an optional
start from an initial image at timestep t_start (x_t = sqrt(ab) x0 + sqrt(1-ab) z),
the "start from the channel" idea of diffusion-driven semantic communication.
DPM-Solver++(2M) (Lu et al. 2022) visits the same timesteps with a second-order
multistep update of the (clipped) x0 prediction in log-SNR time; its first-order
step is exactly DDIM's (eta 0).

Both are numpy, float32: the receiver samples without torch when its
networks run on ONNX Runtime (`--precision int8`), and with torch networks
through `runtime.torch_function`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from ..serving.config import setting

NoisePredictor = Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray]  # (x_t, t [B], condition) -> noise
StepPredictor = Callable[[np.ndarray, np.ndarray], np.ndarray]  # a NoisePredictor bound to one condition
TIMESTEPS = 1000  # of every diffusion model here
PREDICTIONS = ("epsilon", "v")  # what a diffusion model outputs: the noise, or the velocity


@dataclass(frozen=True)
class SamplerSettings:
    """The diffusion decoder's sampling, declared once: the receiver's flags follow from it; a
    receiver's DecoderRuntime (runtime.py) carries its own."""

    # 5 steps measured best and fastest (`semcom bench diffusion`: 5/10/20/50 steps).
    steps: int = setting(5, "diffusion decoder: sampler steps per image (semantic, gesco), DDIM's or DPM-Solver++'s",
                         flag="--ddim-steps")
    method: str = setting("ddim", "diffusion decoder's sampler: ddim, or dpm++ (DPM-Solver++(2M), second order, "
                                  "deterministic)", flag="--sampler")
    eta: float = setting(0.0, "DDIM eta (0: deterministic; dpm++ takes 0 only)", flag="--ddim-eta")
    guidance_scale: float = setting(1.0, "classifier-free guidance scale (1: off; >1 calls the model twice per step)")
    # Begin from the latent's coarse image noised to the timestep matching the channel SNR
    # (semantic codec only) rather than from pure noise: 22 dB instead of 12.5 dB PSNR.
    start_from_channel: bool = setting(
        True, "1: begin denoising from the latent's coarse image at the timestep matching the channel SNR; "
              "0: from pure noise")
    # ...but never below this timestep: regenerating most of the image from the map is what
    # carries its semantics (mIoU at 5 dB: 0.75 starting at the SNR's t, 0.91 from t >= 800).
    min_start_timestep: int = setting(800, "with --start-from-channel: begin at this timestep at the earliest (of 1000)")
    # The UNet's condition-only work (every SPADE's scale and shift maps), done once per frame and reused by
    # every step: the same output, for 2.75 KB of memory per pixel of the frame (diffusion.py).
    condition_cache: bool = setting(
        True, "1: compute the diffusion decoder's condition maps once per frame (exact, faster; 2.75 KB per pixel); "
              "0: at every sampler step")

    def __post_init__(self):
        if self.method not in SAMPLERS:
            raise ValueError(f"unknown sampler {self.method!r}: choose one of {', '.join(SAMPLERS)}")
        self.sampler(CosineSchedule())  # its own checks (steps, eta) at start, not at the first frame

    def sampler(self, schedule: CosineSchedule, clip: bool = True) -> DDIMSampler:
        return SAMPLERS[self.method](schedule, self.steps, self.eta, self.guidance_scale, clip)

    def channel_start(self, schedule: CosineSchedule, snr_db: float) -> int:
        """The timestep a start from the channel begins at: the SNR's, but no lower than min_start_timestep."""
        return max(schedule.timestep_for_snr(snr_db), self.min_start_timestep)


class CosineSchedule:
    def __init__(self, timesteps: int = TIMESTEPS, offset: float = 0.008):
        self.timesteps = timesteps
        steps = np.arange(timesteps + 1, dtype=np.float64) / timesteps
        alpha_bar = np.cos((steps + offset) / (1 + offset) * math.pi / 2) ** 2
        betas = np.minimum(1 - alpha_bar[1:] / alpha_bar[:-1], 0.999)
        self.alpha_bar = np.cumprod(1 - betas).astype(np.float32)  # [T], alpha_bar[t] for t = 0..T-1

    def add_noise(self, x0: np.ndarray, noise: np.ndarray, t: np.ndarray) -> np.ndarray:
        """q(x_t | x0): sqrt(ab_t) x0 + sqrt(1 - ab_t) noise, t [B]."""
        ab = self.alpha_bar[t].reshape(-1, 1, 1, 1)
        return (np.sqrt(ab) * x0 + np.sqrt(1 - ab) * noise).astype(np.float32, copy=False)

    def timestep_for_snr(self, snr_db: float) -> int:
        """The timestep whose signal-to-noise ratio ab/(1-ab) is closest to `snr_db`."""
        snr = self.alpha_bar / (1 - self.alpha_bar)
        return int(np.argmin(np.abs(10 * np.log10(snr) - snr_db)))


class DDIMSampler:
    """Samples x0 from noise (or from a noised initial image) in `steps` DDIM steps."""

    def __init__(self, schedule: CosineSchedule, steps: int = 20, eta: float = 0.0, guidance_scale: float = 1.0,
                 clip: bool = True):
        """clip: the x0 predictions to [-1, 1], an image's range (not a latent's: the latent codec's
        signal is unbounded)."""
        if not 1 <= steps <= schedule.timesteps:
            raise ValueError(f"steps must be in 1..{schedule.timesteps}, got {steps}")
        self.schedule, self.steps, self.eta, self.guidance_scale = schedule, steps, eta, guidance_scale
        self.clip = clip

    def timesteps(self, start: int | None = None) -> list[int]:
        """Descending timesteps, evenly spaced from `start` (default T-1) to 0."""
        top = self.schedule.timesteps - 1 if start is None else start
        count = min(self.steps, top + 1)
        return sorted({round(top * (1 - i / max(count - 1, 1))) for i in range(count)}, reverse=True)

    def sample(self, predict_noise: NoisePredictor, condition: np.ndarray, shape: tuple[int, ...],
               rng: np.random.Generator | Sequence[np.random.Generator] | None = None,
               initial: np.ndarray | None = None, start: int | None = None) -> np.ndarray:
        """x0 [shape] in [-1, 1], float32.

        predict_noise(x_t, t [B] int64, condition) -> noise, bound to the condition once for all steps
        where it can be (`bound`). With guidance_scale != 1 it is also given an all-zero
        condition. `initial` and `start`: begin at x_start = q(x_start | initial).
        `rng`: one for the batch, or one per batch item, so that an item's noise (and so its
        sample) does not depend on what it is batched with.
        """
        return self.sample_from(predict_noise, condition, self.start_point(shape, rng, initial, start), start, rng)

    def start_point(self, shape: tuple[int, ...], rng=None, initial: np.ndarray | None = None,
                    start: int | None = None) -> np.ndarray:
        """Where `sample` begins, at its first timestep: pure noise, or `initial` noised to `start`."""
        noise = _randn(shape, rng)
        if initial is None:
            return noise
        return self.schedule.add_noise(initial, noise, np.full(shape[0], self.timesteps(start)[0]))

    def sample_from(self, predict_noise: NoisePredictor, condition: np.ndarray, x: np.ndarray, start: int | None = None,
                    rng=None) -> np.ndarray:
        """x0 from x, the sample at timesteps(start)[0] (start_point's); rng: eta's noise, as for `sample`."""
        alpha_bar = self.schedule.alpha_bar
        steps = self.timesteps(start)
        predict = self._conditioned(predict_noise, condition)
        for i, t in enumerate(steps):
            # Python floats: numpy keeps the float32 arrays float32 when it scales them by these.
            ab = float(alpha_bar[t])
            ab_prev = float(alpha_bar[steps[i + 1]]) if i + 1 < len(steps) else 1.0
            x0 = self._clipped_x0(predict, x, t, ab)
            eps = (x - math.sqrt(ab) * x0) / math.sqrt(1 - ab)  # consistent with the clipped x0
            sigma = self.eta * math.sqrt(max((1 - ab_prev) / (1 - ab) * (1 - ab / ab_prev), 0))
            x = math.sqrt(ab_prev) * x0 + math.sqrt(max(1 - ab_prev - sigma**2, 0)) * eps
            if self.eta > 0 and i + 1 < len(steps):
                x = x + sigma * _randn(x.shape, rng)
        return x.astype(np.float32, copy=False)

    def _clipped_x0(self, predict, x, t: int, ab: float) -> np.ndarray:
        eps = predict(x, np.full(x.shape[0], t, dtype=np.int64))
        x0 = (x - math.sqrt(1 - ab) * eps) / math.sqrt(ab)
        return np.clip(x0, -1, 1) if self.clip else x0

    def _conditioned(self, predict_noise, condition) -> StepPredictor:
        """predict_noise bound to the condition for a whole run, guided with guidance_scale != 1: the
        conditional and unconditional predictions in one call of twice the batch (the doubled condition
        bound once, so that a cached one is computed once too)."""
        if self.guidance_scale == 1.0:
            return bound(predict_noise, condition)
        both = bound(predict_noise, np.concatenate([condition, np.zeros_like(condition)]))

        def guided(x, t):
            conditional, unconditional = np.split(both(np.concatenate([x, x]), np.concatenate([t, t])), 2)
            return unconditional + self.guidance_scale * (conditional - unconditional)

        return guided


class DPMSolverSampler(DDIMSampler):
    """DPM-Solver++(2M): at each timestep the clipped x0 prediction D_i, combined with the previous one
    as D = (1 + 1/2r) D_i - (1/2r) D_(i-1), r = h_(i-1) / h_i, and the exact solution of the ODE in
    log-SNR time lambda = log(alpha / sigma) over the step h_i: x' = (sigma'/sigma) x - alpha' (e^-h - 1) D.
    The first step (no previous prediction) and the last (to the clean image) are first order."""

    def __init__(self, schedule: CosineSchedule, steps: int = 20, eta: float = 0.0, guidance_scale: float = 1.0,
                 clip: bool = True):
        if eta != 0:
            raise ValueError(f"DPM-Solver++(2M) is deterministic: eta must be 0, got {eta}")
        super().__init__(schedule, steps, eta, guidance_scale, clip)

    def timesteps(self, start: int | None = None) -> list[int]:
        """Descending timesteps evenly spaced in log-SNR from `start` (default T-1) to 0 (DPM-Solver's
        spacing): evenly in t, the cosine schedule's last step spans most of the log-SNR range and its
        second-order extrapolation overshoots."""
        top = self.schedule.timesteps - 1 if start is None else start
        log_snr = 0.5 * np.log(self.schedule.alpha_bar / (1 - self.schedule.alpha_bar))  # decreasing in t
        targets = np.linspace(log_snr[top], log_snr[0], min(self.steps, top + 1))
        return sorted({int(np.argmin(np.abs(log_snr[:top + 1] - target))) for target in targets}, reverse=True)

    def sample_from(self, predict_noise: NoisePredictor, condition: np.ndarray, x: np.ndarray, start: int | None = None,
                    rng=None) -> np.ndarray:
        """As DDIMSampler.sample_from (deterministic: rng unused)."""
        alpha_bar = self.schedule.alpha_bar
        steps = self.timesteps(start)
        predict = self._conditioned(predict_noise, condition)
        previous = None  # (D_(i-1), h_(i-1))
        for i, t in enumerate(steps):
            ab = float(alpha_bar[t])
            x0 = self._clipped_x0(predict, x, t, ab)
            if i + 1 == len(steps):  # to the clean image: sigma' = 0, x' = D
                x = x0
                break
            ab_next = float(alpha_bar[steps[i + 1]])
            h = _log_snr(ab_next) - _log_snr(ab)
            combined = x0
            if previous is not None:
                previous_x0, previous_h = previous
                half_inverse_r = h / (2 * previous_h)
                combined = (1 + half_inverse_r) * x0 - half_inverse_r * previous_x0
            x = math.sqrt((1 - ab_next) / (1 - ab)) * x - math.sqrt(ab_next) * math.expm1(-h) * combined
            previous = x0, h
        return x.astype(np.float32, copy=False)


class Conditioned:
    """A noise predictor whose condition-only work is done once for all of a sampler run's steps:
    bind(condition) -> (x_t, t) -> noise. Called with the condition, as any NoisePredictor, it runs
    `whole`, the network in one pass (the same output), where it has one: the torch UNet's forward, which
    holds one SPADE's maps at a time rather than all of them; else it binds the condition for that call."""

    def __init__(self, bind: Callable[[np.ndarray], StepPredictor], whole: NoisePredictor | None = None):
        self.bind, self._whole = bind, whole

    def __call__(self, x: np.ndarray, t: np.ndarray, condition: np.ndarray) -> np.ndarray:
        return self._whole(x, t, condition) if self._whole is not None else self.bind(condition)(x, t)


def two_stage(encode: Callable[[np.ndarray], tuple[np.ndarray, ...]], step: Callable[..., np.ndarray],
              whole: NoisePredictor | None = None) -> Conditioned:
    """The predictor of a network split in two: encode(condition) -> its cache (a tuple of arrays), computed
    once per binding, and step(x_t, t, *cache) -> its output; whole: the network in one pass, if it has one."""
    def bind(condition: np.ndarray) -> StepPredictor:
        cache = encode(condition)
        return lambda x, t: step(x, t, *cache)

    return Conditioned(bind, whole)


def bound(predict: NoisePredictor, condition: np.ndarray) -> StepPredictor:
    """predict with its condition fixed: bound once where it is a Conditioned predictor, else passed at each call."""
    if isinstance(predict, Conditioned):
        return predict.bind(condition)
    return lambda x, t: predict(x, t, condition)


def uncached(predict: NoisePredictor) -> NoisePredictor:
    """predict as a plain NoisePredictor: its condition's work redone at every call (condition_cache 0)."""
    return lambda x, t, condition: predict(x, t, condition)


def observed(predict: NoisePredictor, observe: Callable[[np.ndarray, np.ndarray, np.ndarray], None]) -> NoisePredictor:
    """predict, with observe(x_t, t, condition) shown every input it is given (calibration), caching kept."""
    def bind(condition: np.ndarray) -> StepPredictor:
        step = bound(predict, condition)

        def observed_step(x, t):
            observe(x, t, condition)
            return step(x, t)

        return observed_step

    return Conditioned(bind)


def predicting_noise(network: NoisePredictor, prediction: str, schedule: CosineSchedule) -> NoisePredictor:
    """A diffusion network (numpy in and out) whose output is `prediction`, as the noise predictor the
    samplers take (binding what `network` binds: a Conditioned network's cache is kept)."""
    if prediction == "epsilon":
        return network

    def to_noise(output: np.ndarray, x: np.ndarray, t: np.ndarray) -> np.ndarray:
        return noise_from(prediction, output, x, schedule.alpha_bar[t].reshape(-1, 1, 1, 1))

    def bind(condition: np.ndarray) -> StepPredictor:
        step = bound(network, condition)
        return lambda x, t: to_noise(step(x, t), x, t)

    return Conditioned(bind, lambda x, t, condition: to_noise(network(x, t, condition), x, t))


def noise_from(prediction: str, output, x_t, alpha_bar_t):
    """The noise a model's output implies: itself ("epsilon"), or from v = sqrt(ab) noise - sqrt(1 - ab) x0
    and x_t = sqrt(ab) x0 + sqrt(1 - ab) noise: noise = sqrt(ab) v + sqrt(1 - ab) x_t. Arrays or tensors,
    alpha_bar_t broadcastable to them ([B, 1, 1, 1])."""
    if prediction == "epsilon":
        return output
    return alpha_bar_t ** 0.5 * output + (1 - alpha_bar_t) ** 0.5 * x_t


def _log_snr(alpha_bar: float) -> float:
    """lambda = log(alpha / sigma) at a cumulative alpha."""
    return 0.5 * math.log(alpha_bar / (1 - alpha_bar))


SAMPLERS = {"ddim": DDIMSampler, "dpm++": DPMSolverSampler}


def _randn(shape: tuple[int, ...], rng: np.random.Generator | Sequence[np.random.Generator] | None) -> np.ndarray:
    if rng is None or isinstance(rng, np.random.Generator):
        return (rng or np.random.default_rng()).standard_normal(shape, dtype=np.float32)
    if len(rng) != shape[0]:
        raise ValueError(f"{len(rng)} generators for a batch of {shape[0]}")
    return np.concatenate([g.standard_normal((1, *shape[1:]), dtype=np.float32) for g in rng])


def tiled(predict: NoisePredictor, tile: tuple[int, int], overlap: int) -> NoisePredictor:
    """The noise predictor run on overlapping tiles of at most `tile` pixels (height, width; multiples
    of 8) and blended (MultiDiffusion, Bar-Tal et al. 2023): each pixel's noise is the average of its
    tiles' predictions, weighted by ramps across the `overlap`, at every sampler step, so that the
    seams are denoised away with the rest. Memory is one tile's, whatever the image's size; inputs
    no larger than a tile are predicted whole. So a tiled image's condition is not cached across steps
    (the caches of all its tiles would be the whole image's): each tile's is redone at each step."""
    def predict_tiles(x: np.ndarray, t: np.ndarray, condition: np.ndarray) -> np.ndarray:
        height, width = x.shape[-2:]
        if height <= tile[0] and width <= tile[1]:
            return predict(x, t, condition)
        blended = np.zeros(x.shape, np.float32)
        weights = np.zeros((height, width), np.float32)
        tile_height, tile_width = min(tile[0], height), min(tile[1], width)
        ramp = _ramp(tile_height, overlap)[:, None] * _ramp(tile_width, overlap)[None, :]
        for top in _tile_starts(height, tile_height, overlap):
            for left in _tile_starts(width, tile_width, overlap):
                window = (..., slice(top, top + tile_height), slice(left, left + tile_width))
                blended[window] += predict(x[window], t, condition[window]) * ramp
                weights[window[1:]] += ramp
        return blended / weights

    return predict_tiles


def _tile_starts(size: int, tile: int, overlap: int) -> list[int]:
    """Starts of tiles covering [0, size) with at least `overlap` shared between neighbours, multiples
    of 8 (the UNet's stride), the last one flush with the end."""
    count = max(1, math.ceil((size - overlap) / (tile - overlap)))
    if count == 1:
        return [0]
    return sorted({min(size - tile, round(i * (size - tile) / (count - 1) / 8) * 8) for i in range(count)})


def _ramp(length: int, overlap: int) -> np.ndarray:
    """Blending weights along one side of a tile: rising over `overlap` pixels at each end, never 0."""
    position = np.arange(length, dtype=np.float32)
    return np.clip(np.minimum(position + 1, length - position) / (overlap + 1), 1e-3, 1.0)
