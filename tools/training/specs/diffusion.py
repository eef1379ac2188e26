"""The semantic diffusion decoder: a UNet predicting the noise, conditioned on what the receiver gets
(the received soft map and the latent's coarse image), trained with condition dropout for
classifier-free guidance and the map-only mode; shipped as an EMA of its weights."""

import numpy as np
import torch
from torch.nn import functional as F

from semcom.common.models import store
from semcom.common.models.conditioning import make_condition
from semcom.common.models.layers import count_flops
from semcom.common.models.presets import CPU
from semcom.common.models.runtime import DecoderRuntime
from semcom.common.models.sampling import CosineSchedule, DDIMSampler
from semcom.common.quality import confusion_matrix, mean_iou, psnr_db

from ..channel_in_the_loop import ChannelInTheLoop
from ..spec import Spec, one_hot, to_uint8

TIMESTEPS = 1000
UNCONDITIONAL_RATE, MAP_ONLY_RATE = 0.1, 0.2  # condition dropout: CFG's null condition and the map-only mode


def received_condition(images, labels, channel, snr_db=None, map_only=False):
    """What the receiver would condition on: the map and latent after their codecs and the channel."""
    map_parts, latent_parts = store.load("map_codec"), store.load("latent_codec")
    with torch.no_grad():
        map_features = map_parts["encoder"](one_hot(labels, CPU.num_classes))
        soft_map = map_parts["decoder"](channel.features(map_features, snr_db)).float().softmax(1)
        guide = None
        if not map_only:
            mean, _ = latent_parts["encoder"](images)
            guide = latent_parts["decoder"](channel.features(mean, snr_db)).float().cpu().numpy()
        return torch.from_numpy(make_condition(soft_map.cpu().numpy(), guide)).to(images.device)


def loss(parts, images, labels, channel):
    condition = received_condition(images, labels, channel)
    draw = torch.rand(len(images), device=images.device)
    condition = torch.where((draw < UNCONDITIONAL_RATE).view(-1, 1, 1, 1), torch.zeros_like(condition), condition)
    map_only = ((draw >= UNCONDITIONAL_RATE) & (draw < UNCONDITIONAL_RATE + MAP_ONLY_RATE)).view(-1, 1, 1, 1)
    condition[:, -3:] = torch.where(map_only, torch.zeros_like(condition[:, -3:]), condition[:, -3:])
    x0 = images * 2 - 1
    t = torch.randint(0, TIMESTEPS, (len(images),), device=images.device)
    noise = torch.randn_like(x0)
    alpha_bar = torch.from_numpy(CosineSchedule(TIMESTEPS).alpha_bar).to(images.device)[t].view(-1, 1, 1, 1)
    x_t = alpha_bar.sqrt() * x0 + (1 - alpha_bar).sqrt() * noise  # q(x_t | x0), as CosineSchedule.add_noise
    return F.mse_loss(parts["net"](x_t, t, condition).float(), noise)


def evaluate(parts, images, labels, seed, count: int = 16, steps: int = 10):
    segmenter = store.load("segmenter")["net"]
    count = min(count, len(images))
    metrics = {}
    for snr in (0.0, 10.0):
        channel = ChannelInTheLoop(("awgn",), seed=seed)
        condition = received_condition(images[:count], labels[:count], channel, snr)
        sampler = DDIMSampler(CosineSchedule(TIMESTEPS), steps=steps)
        generated = (sampler.sample(DecoderRuntime().torch_function(parts["net"]), condition.cpu().numpy(),
                                    (count, 3, *images.shape[-2:]), rng=np.random.default_rng(seed)) + 1) / 2
        generated = torch.from_numpy(generated)
        confusion = confusion_matrix(labels[:count].numpy(), segmenter(generated).argmax(1).numpy(), CPU.num_classes)
        metrics[f"psnr_db_awgn_{snr:g}db"] = float(np.mean([psnr_db(to_uint8(a), to_uint8(b))
                                                            for a, b in zip(images[:count], generated)]))
        metrics[f"miou_awgn_{snr:g}db"] = mean_iou(confusion)
    return metrics


def flops(parts, image):
    """One denoising step."""
    condition = torch.zeros(1, parts["net"].num_classes + 3, *image.shape[-2:])
    return {"net_per_step": count_flops(parts["net"], image, torch.zeros(1, dtype=torch.long), condition)}


SPEC = Spec({"net": {"class": "SemanticDiffusionUNet", "kwargs": {"num_classes": 19, "widths": [32, 64, 96]}}},
            loss, evaluate, flops, default_steps=4000, ema_decay=0.999, batch_size=8)
