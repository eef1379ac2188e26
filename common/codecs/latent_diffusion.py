"""`latent_diffusion`: the class-free generative photo codec (seed: diffusion-driven semantic
communication with bandwidth constraints, arXiv 2407.18468). No segmenter and no classes: any photo.

The transmitter encodes the photo with the photo VAE (latent: 8 maps at 1/4 of the size), scales
the latent to unit variance and sends the first C of the bandwidth module's 8 maps at 1/8 of the
size: k/n = C/384, 1/192 to 1/48, chosen per frame as Deep JSCC's (FeatureMapCodec). The receiver's
head turns what arrived into the latent's mean and log-variance; the latent = mean + sigma * noise
is the forward diffusion's sample at the timestep whose noise matches sigma (start_timestep), from
which the UNet denoises it (DDIM or DPM-Solver++, the receiver's steps; x0 unclipped: a latent's
range is not [-1, 1]), and the VAE decoder draws the image at the padded size, cropped back.

The networks run in torch at fp32 or bf16; an int8 receiver runs their ONNX models (the UNet and
the VAE decoder quantized, the head in float: models/runtime.py PHOTO_PARTS, made by `semcom quantize`),
without torch.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from ..models import runtime as runtimes
from ..models import store
from ..models.runtime import DecoderRuntime, NumpyFunction
from ..models.sampling import CosineSchedule, DDIMSampler
from ..wire.frames import Frame
from .base import Decoded, to_uint8
from .generative import frame_seed
from .learned import FeatureMapCodec, image_tensor
from .registry import register

MODEL, VAE = "latent_diffusion", "photo_vae"


def start_timestep(schedule: CosineSchedule, log_variance: np.ndarray) -> int:
    """The timestep whose noise matches the head's mean posterior variance s^2 of the unit-variance latent:
    alpha_bar / (1 - alpha_bar) = 1 / s^2, so that x_t = sqrt(alpha_bar) (mean + s noise)."""
    return schedule.timestep_for_snr(-10 * np.log10(float(np.exp(log_variance).mean())))


def denoised_latent(predict_noise: NumpyFunction, sampler: DDIMSampler, mean: np.ndarray, log_variance: np.ndarray,
                    seed: int) -> np.ndarray:
    """The head's estimate (mean, log-variance), each [1, C, h, w] -> the denoised unit-variance latent:
    the sampler run from the estimate at the matched timestep, conditioned on it (training does the same)."""
    condition = np.concatenate([mean, log_variance], 1)
    return sampler.sample(predict_noise, condition, mean.shape, rng=np.random.default_rng(seed), initial=mean,
                          start=start_timestep(sampler.schedule, log_variance))


@register
class LatentDiffusionCodec(FeatureMapCodec):
    codec_id = "latent_diffusion"
    capabilities = replace(FeatureMapCodec.capabilities, generative=True, encoder_models=(VAE, MODEL),
                           decoder_models=(VAE, MODEL))
    model_name = MODEL
    block_name = "latent"
    blocks = (block_name,)
    max_channels = 8
    default_bandwidth_ratio = 1 / 48
    # The UNet runs on the latent (1/16 of the pixels) and the VAE decoder at full size: a 1024x1536 photo
    # decodes whole. Larger ones are refused (no tiling yet).
    max_pixels, max_size_example = 1024 * 1536, "1024x1536"

    def check_models(self) -> None:
        super().check_models()
        # Its networks work in the photo VAE's latent space: another VAE's latents are not that space.
        store.check_trained_on(MODEL, fix="semcom train latent_diffusion` and `semcom quantize --latent-diffusion-only")

    def features(self, padded: np.ndarray, encoder=None):  # not adapted: encoder is always None
        latent = store.load(VAE)["encoder"](image_tensor(padded))[0]  # the mean: the transmitter does not sample
        return store.load(MODEL)["down"](latent / latent_scale())

    def load(self, side: str, runtime: DecoderRuntime | None = None) -> None:
        if side == "encode":
            return super().load(side)
        runtime = runtime or DecoderRuntime()
        # Each loads its weights now (at int8, its ONNX model, checked against the shipped weights).
        runtime.network(MODEL, "head")
        runtime.noise_predictor(MODEL)
        runtime.network(VAE, "decoder")

    def decode(self, frame: Frame, runtime: DecoderRuntime) -> Decoded:
        mean, log_variance = runtime.network(MODEL, "head")(self.received_maps(frame))
        sampler = runtime.sampler.sampler(CosineSchedule(), clip=False)
        latent = denoised_latent(runtime.noise_predictor(MODEL), sampler, mean, log_variance, frame_seed(frame))
        image = runtime.network(VAE, "decoder")((latent * latent_scale(runtime)).astype(np.float32))
        return to_uint8(image[0, :, :frame.height, :frame.width]), None


def latent_scale(runtime: DecoderRuntime | None = None) -> float:
    """The VAE latent's standard deviation over the training data (the head's running average, shipped
    with it): the transmitter divides by it, the receiver multiplies the denoised latent by it. An int8
    receiver, which runs without torch, reads the copy in its head's ONNX card."""
    runtime = runtime or DecoderRuntime()
    if runtime.precision == "int8":
        return float(runtimes.load_part(MODEL, "head", runtime.weights_dir).card["latent_scale"])
    return float(store.load(MODEL, runtime.weights_dir)["head"].latent_scale)
