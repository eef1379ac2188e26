"""The class-free generative photo codec (seed arXiv 2407.18468) on the frozen photo VAE
(`semcom train photo_vae` first): the bandwidth module's pair (LatentDownsampler at the transmitter,
LatentUpsamplingHead at the receiver) and a diffusion UNet on the VAE latent, conditioned on the
head's estimate of it, trained together through the channel.

Per batch: the VAE latent's mean, divided by its running standard deviation (the head's
latent_scale), goes down to the first C of 8 maps (C even, uniform in 2..8: k/n = 1/192 to 1/48),
through the channel, the unsent maps erased; the head gives the latent's mean and log-variance,
trained by the Gaussian negative log-likelihood of the true latent (so its variance is calibrated:
the receiver's start timestep is read from it); the UNet learns v on the true latent, conditioned
on the head's output (gradient stopped), with min-SNR-5 weighting (diffusion.denoising_loss).

The receiver: latent = mean + sigma * noise, the forward diffusion's sample at the timestep whose
noise matches the head's mean posterior variance (the channel taken as part of the forward
diffusion: its noise, and what the bandwidth module dropped), then deterministic DDIM to 0 and the
VAE decoder."""

import numpy as np
import torch

from semcom.common.codecs.latent_diffusion import denoised_latent, start_timestep
from semcom.common.models import store
from semcom.common.models.jscc import erase_unsent
from semcom.common.models.layers import count_flops
from semcom.common.models.runtime import DecoderRuntime
from semcom.common.models.sampling import CosineSchedule, SamplerSettings, predicting_noise
from semcom.common.quality import psnr_db

from ..channel_in_the_loop import ChannelInTheLoop
from ..data import photos_and_scenes
from ..spec import Spec, to_uint8
from .diffusion import denoising_loss
from .photo_vae import LATENT_CHANNELS, pad_to_stride

MAX_CHANNELS = 8  # sent maps at 1/8 of the image: k/n = C/384, at most 1/48
SCALE_MOMENTUM = 0.02  # of the running latent standard deviation
EVAL_SNRS_DB = (0.0, 10.0)


def vae_latent(images: torch.Tensor) -> torch.Tensor:
    """The frozen VAE's mean latent of images [B, 3, H, W] (run on the CPU, where store.load keeps it)."""
    with torch.no_grad():
        return store.load("photo_vae")["encoder"](images.cpu())[0].float().to(images.device)


def received_estimate(parts, latent: torch.Tensor, channels: int, channel: ChannelInTheLoop, snr_db=None):
    """The unit-variance latent's first `channels` maps through the channel, the rest erased -> the head's
    (mean, log-variance)."""
    received = channel.features(parts["down"](latent)[:, :channels], snr_db)
    return parts["head"](erase_unsent(received, MAX_CHANNELS))


def loss(parts, images, labels, channel):
    head = parts["head"]
    latent = vae_latent(images)
    with torch.no_grad():
        head.latent_scale.lerp_(latent.std(), SCALE_MOMENTUM)
    latent = latent / head.latent_scale
    channels = 2 * int(torch.randint(1, MAX_CHANNELS // 2 + 1, ()))
    mean, log_variance = received_estimate(parts, latent, channels, channel)
    mean, log_variance = mean.float(), log_variance.float()
    likelihood = 0.5 * ((latent - mean).pow(2) * (-log_variance).exp() + log_variance).mean()
    condition = torch.cat([mean, log_variance], 1).detach()
    return likelihood + denoising_loss(parts["net"], latent, condition)


def decode(parts, mean: torch.Tensor, log_variance: torch.Tensor, steps: int, seed: int) -> torch.Tensor:
    """The head's estimate [1, C, h, w] -> the image [1, 3, H, W]: as the codec's receiver (the sampler
    from the matched timestep), or, at steps 0, the estimate's mean decoded without diffusion."""
    latent = mean
    if steps:
        schedule = CosineSchedule()
        net = parts["net"]
        predict = predicting_noise(DecoderRuntime().torch_function(net), net.prediction, schedule)
        sampler = SamplerSettings(steps=steps).sampler(schedule, clip=False)
        latent = torch.from_numpy(denoised_latent(predict, sampler, mean.numpy(), log_variance.numpy(), seed))
    return store.load("photo_vae")["decoder"](latent * parts["head"].latent_scale)


def evaluate(parts, images, labels, seed):
    """PSNR over the validation images at their own size, at k/n = 1/48 and 1/96 on AWGN at 0 and 10 dB:
    the head's mean decoded (no diffusion) and 5 DDIM steps from the matched timestep; and the mean
    start timestep."""
    metrics = {}
    for channels in (MAX_CHANNELS, MAX_CHANNELS // 2):
        ratio = f"1_{384 // channels}"
        for snr in EVAL_SNRS_DB:
            channel = ChannelInTheLoop(("awgn",), seed=seed)
            psnrs, starts = {0: [], 5: []}, []
            for image in images:
                height, width = image.shape[-2:]
                latent = vae_latent(pad_to_stride(image)) / parts["head"].latent_scale
                mean, log_variance = received_estimate(parts, latent, channels, channel, snr)
                starts.append(start_timestep(CosineSchedule(), log_variance.numpy()))
                for steps in psnrs:
                    output = decode(parts, mean, log_variance, steps, seed)
                    psnrs[steps].append(psnr_db(to_uint8(image[0]), to_uint8(output[0, :, :height, :width])))
            metrics[f"psnr_db_ratio_{ratio}_awgn_{snr:g}db_mean"] = float(np.mean(psnrs[0]))
            metrics[f"psnr_db_ratio_{ratio}_awgn_{snr:g}db_ddim5"] = float(np.mean(psnrs[5]))
            metrics[f"start_timestep_ratio_{ratio}_awgn_{snr:g}db"] = float(np.mean(starts))
    metrics["latent_scale"] = float(parts["head"].latent_scale)
    return metrics


def flops(parts, image):
    """At 512x768 (the full Kodak images' size): the bandwidth module's pair, one UNet step."""
    latent = torch.zeros(1, LATENT_CHANNELS, 128, 192)
    received = torch.zeros(1, 2 * MAX_CHANNELS, 64, 96)
    return {"down_512x768": count_flops(parts["down"], latent), "head_512x768": count_flops(parts["head"], received),
            "net_per_step_512x768": count_flops(parts["net"], latent, torch.zeros(1, dtype=torch.long),
                                                torch.zeros(1, 2 * LATENT_CHANNELS, 128, 192))}


_BANDWIDTH = {"latent_channels": LATENT_CHANNELS, "max_channels": MAX_CHANNELS}
SPEC = Spec({"down": {"class": "LatentDownsampler", "kwargs": _BANDWIDTH},
             "head": {"class": "LatentUpsamplingHead", "kwargs": _BANDWIDTH},
             "net": {"class": "SemanticDiffusionUNet",
                     "kwargs": {"num_classes": 0, "widths": [64, 128], "prediction": "v",
                                "in_channels": LATENT_CHANNELS, "condition_channels": 2 * LATENT_CHANNELS}}},
            loss, evaluate, flops, default_steps=4000, ema_decay=0.999, batch_size=16, data=photos_and_scenes,
            trained_on=("photo_vae",))
