"""The semantic diffusion decoder: a UNet conditioned on what the receiver gets (the received soft map
and the latent's coarse image), trained with condition dropout for classifier-free guidance and the
map-only modes, shipped as an EMA of its weights.

Objective (the UNet's `prediction`, `semcom train diffusion --objective`): "v", the velocity with
min-SNR-gamma weighting (Hang et al. 2023: the clean image's error weighted by min(SNR, 5)), or
"epsilon", the plain noise MSE the first decoder was trained with (kept to measure against).

Map-only training items condition, half and half, on the map codec's soft map (`semantic` with its
latent lost or refused) and on Q-GESCO's pooled noisy one-hot map (`gesco`), each as its receiver
computes it after the channel.
"""

import numpy as np
import torch

from semcom.common.codecs.generative import GescoCodec, gesco_soft_map
from semcom.common.models import store
from semcom.common.models.conditioning import make_condition
from semcom.common.models.layers import count_flops
from semcom.common.models.presets import CPU
from semcom.common.models.runtime import DecoderRuntime
from semcom.common.models.sampling import TIMESTEPS, CosineSchedule, SamplerSettings, predicting_noise
from semcom.common.quality import confusion_matrix, mean_iou, psnr_db

from ..channel_in_the_loop import ChannelInTheLoop
from ..spec import Spec, one_hot, to_uint8

UNCONDITIONAL_RATE, MAP_ONLY_RATE = 0.1, 0.3  # condition dropout: CFG's null condition and the map-only modes
MIN_SNR_GAMMA = 5.0


def received_condition(images, labels, channel, snr_db=None, mode="semantic"):
    """What the receiver would condition on, after the codecs and the channel. mode: "semantic" (map codec
    + latent), "map" (the map codec's map, no latent) or "gesco" (Q-GESCO's pooled one-hot map). The frozen
    codecs run on the CPU (where store.load keeps them) whatever device trains the UNet."""
    device, images, labels = images.device, images.cpu(), labels.cpu()
    with torch.no_grad():
        if mode == "gesco":
            soft_map = gesco_received_map(labels, channel, snr_db)
        else:
            map_parts = store.load("map_codec")
            map_features = map_parts["encoder"](one_hot(labels, CPU.num_classes))
            soft_map = map_parts["decoder"](channel.features(map_features, snr_db)).float().softmax(1).cpu().numpy()
        guide = None
        if mode == "semantic":
            latent_parts = store.load("latent_codec")
            mean, _ = latent_parts["encoder"](images)
            guide = latent_parts["decoder"](channel.features(mean, snr_db)).float().cpu().numpy()
        return torch.from_numpy(make_condition(soft_map, guide)).to(device)


def gesco_received_map(labels, channel: ChannelInTheLoop, snr_db=None) -> np.ndarray:
    """The gesco codec's symbols (the scaled one-hot map, in its order) through the channel, equalized,
    unscaled and pooled as its receiver does."""
    codec = GescoCodec()
    reals = one_hot(labels, codec.num_classes).flatten(1) * codec._scale
    estimate, _ = channel(torch.complex(reals[:, 0::2], reals[:, 1::2]), snr_db)
    noisy = torch.stack([estimate.real, estimate.imag], -1).flatten(1) / codec._scale
    return gesco_soft_map(noisy.view(len(labels), codec.num_classes, *labels.shape[-2:]).cpu().numpy())


def training_condition(images, labels, channel):
    """Per item: the full condition, a map-only one (either kind), or none (CFG's null condition)."""
    draw = torch.rand(len(images))
    unconditional = draw < UNCONDITIONAL_RATE
    map_only = (draw >= UNCONDITIONAL_RATE) & (draw < UNCONDITIONAL_RATE + MAP_ONLY_RATE)
    gesco = map_only & (torch.rand(len(images)) < 0.5)
    condition = received_condition(images, labels, channel)
    if gesco.any():
        condition[gesco.to(condition.device)] = received_condition(
            images[gesco.to(images.device)], labels[gesco.to(labels.device)], channel, mode="gesco")
    condition[map_only.to(condition.device), -3:] = 0  # the map codec's map, its latent dropped
    condition[unconditional.to(condition.device)] = 0
    return condition


def loss(parts, images, labels, channel):
    return denoising_loss(parts["net"], images * 2 - 1, training_condition(images, labels, channel))


def denoising_loss(net, x0: torch.Tensor, condition: torch.Tensor) -> torch.Tensor:
    """The UNet's loss on clean signals x0 [B, C, H, W] under `condition`, at timesteps drawn uniformly:
    its objective (net.prediction) as the module docstring says. Shared with latent_diffusion."""
    t = torch.randint(0, TIMESTEPS, (len(x0),), device=x0.device)
    noise = torch.randn_like(x0)
    alpha_bar = torch.from_numpy(CosineSchedule().alpha_bar).to(x0.device)[t].view(-1, 1, 1, 1)
    x_t = alpha_bar.sqrt() * x0 + (1 - alpha_bar).sqrt() * noise  # q(x_t | x0), as CosineSchedule.add_noise
    output = net(x_t, t, condition).float()
    if net.prediction == "epsilon":
        return (output - noise).pow(2).mean()
    snr = alpha_bar / (1 - alpha_bar)
    velocity = alpha_bar.sqrt() * noise - (1 - alpha_bar).sqrt() * x0
    # |v error|^2 = (1 + SNR) |x0 error|^2: this weight makes it min(SNR, gamma) |x0 error|^2.
    return (snr.clamp(max=MIN_SNR_GAMMA) / (snr + 1) * (output - velocity).pow(2)).mean()


def evaluate(parts, images, labels, seed, count: int = 16, sampler: SamplerSettings | None = None):
    """As served: `semantic` (5 DDIM steps from the channel) at 0 and 10 dB; the map-only modes from pure
    noise at 10 dB (10 steps): PSNR and the segmenter's mIoU on the regenerated images. sampler: these
    settings in every mode instead (a distilled student's one step, a teacher's)."""
    segmenter = store.load("segmenter")["net"]
    net = parts["net"]
    schedule = CosineSchedule()
    predict_noise = predicting_noise(DecoderRuntime().torch_function(net), net.prediction, schedule)

    images, labels = images[:count], labels[:count]
    metrics = {}
    for mode, snr, steps in (("semantic", 0.0, 5), ("semantic", 10.0, 5), ("map", 10.0, 10), ("gesco", 10.0, 10)):
        condition = received_condition(images, labels, ChannelInTheLoop(("awgn",), seed=seed), snr, mode).numpy()
        settings = sampler or SamplerSettings(steps=steps)
        initial = start = None
        if mode == "semantic":  # the receiver's start from the channel
            initial = condition[:, -3:]  # the guide, in [-1, 1] already
            start = settings.channel_start(schedule, snr)
        generated = settings.sampler(schedule).sample(predict_noise, condition, (len(images), 3, *images.shape[-2:]),
                                                      rng=np.random.default_rng(seed), initial=initial, start=start)
        generated = torch.from_numpy((generated + 1) / 2)
        confusion = confusion_matrix(labels.numpy(), segmenter(generated).argmax(1).numpy(), CPU.num_classes)
        metrics[f"psnr_db_{mode}_awgn_{snr:g}db"] = float(np.mean([psnr_db(to_uint8(a), to_uint8(b))
                                                                  for a, b in zip(images, generated)]))
        metrics[f"miou_{mode}_awgn_{snr:g}db"] = mean_iou(confusion)
    return metrics


def flops(parts, image):
    """One denoising step."""
    condition = torch.zeros(1, parts["net"].num_classes + 3, *image.shape[-2:])
    return {"net_per_step": count_flops(parts["net"], image, torch.zeros(1, dtype=torch.long), condition)}


SPEC = Spec({"net": {"class": "SemanticDiffusionUNet",
                     "kwargs": {"num_classes": 19, "widths": [32, 64, 96], "prediction": "v"}}},
            loss, evaluate, flops, default_steps=4000, ema_decay=0.999, batch_size=8)
