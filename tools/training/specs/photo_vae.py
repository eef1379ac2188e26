"""The class-free photo codec's image VAE (models/photo_latent.py): the latent space its diffusion
decoder works in, trained first and alone (no channel) on real photo crops and scenes, then frozen
while `semcom train latent_diffusion` trains the rest.

Loss: the image's MSE from a sampled latent (mean + sigma * noise) plus KL_WEIGHT times the KL
divergence to N(0, I) per latent value, which keeps the latent smooth and near Gaussian for the
diffusion model; small, so that the reconstruction stays sharp."""

import numpy as np
import torch
from torch.nn import functional as F

from semcom.common.models.layers import count_flops
from semcom.common.models.photo_latent import STRIDE
from semcom.common.quality import psnr_db

from ..data import photos_and_scenes
from ..spec import Spec, to_uint8

KL_WEIGHT = 1e-4
LATENT_CHANNELS = 8


def kl_divergence(mean: torch.Tensor, log_variance: torch.Tensor) -> torch.Tensor:
    """KL(N(mean, exp(log_variance)) || N(0, 1)), averaged over the values."""
    mean, log_variance = mean.float(), log_variance.float()
    return 0.5 * (mean.pow(2) + log_variance.exp() - 1 - log_variance).mean()


def loss(parts, images, labels, channel):
    mean, log_variance = parts["encoder"](images)
    latent = mean + (0.5 * log_variance).exp() * torch.randn_like(mean)
    return F.mse_loss(parts["decoder"](latent).float(), images) + KL_WEIGHT * kl_divergence(mean, log_variance)


def pad_to_stride(image: torch.Tensor) -> torch.Tensor:
    """[1, 3, H, W] -> padded with its edge pixels to multiples of the codec's stride, as the codec pads."""
    height, width = image.shape[-2:]
    return F.pad(image, (0, -width % STRIDE, 0, -height % STRIDE), mode="replicate")


def evaluate(parts, images, labels, seed):
    """PSNR of the decoded mean latent over the validation images at their own size, and the latent's
    statistics (its standard deviation is what latent_diffusion scales it by)."""
    psnrs, means, log_variances = [], [], []
    for image in images:
        height, width = image.shape[-2:]
        mean, log_variance = parts["encoder"](pad_to_stride(image))
        psnrs.append(psnr_db(to_uint8(image[0]), to_uint8(parts["decoder"](mean)[0, :, :height, :width])))
        means.append(mean.flatten())
        log_variances.append(log_variance.flatten())
    mean, log_variance = torch.cat(means), torch.cat(log_variances)
    return {"psnr_db_mean_latent": float(np.mean(psnrs)), "latent_std": float(mean.std()),
            "posterior_std_mean": float((0.5 * log_variance).exp().mean())}


def flops(parts, image):
    """At 512x768 (the full Kodak images' size)."""
    photo = torch.zeros(1, 3, 512, 768)
    latent = torch.zeros(1, LATENT_CHANNELS, 128, 192)
    return {"encoder_512x768": count_flops(parts["encoder"], photo),
            "decoder_512x768": count_flops(parts["decoder"], latent)}


SPEC = Spec({"encoder": {"class": "PhotoVAEEncoder", "kwargs": {"latent_channels": LATENT_CHANNELS}},
             "decoder": {"class": "PhotoVAEDecoder", "kwargs": {"latent_channels": LATENT_CHANNELS}}},
            loss, evaluate, flops, default_steps=4000, uses_channel=False, batch_size=16, data=photos_and_scenes)
