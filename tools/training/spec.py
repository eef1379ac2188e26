"""What a model's training declares (its Spec), and the helpers the specs share."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from torch.nn import functional as F

from semcom.common.quality import psnr_db

from .channel_in_the_loop import ChannelInTheLoop
from .data import TrainData, scenes

EVAL_SNRS_DB = (0.0, 10.0, 20.0)


@dataclass
class Spec:
    """What differs between models: parts, the loss of a batch, the evaluation, the FLOP count."""

    architecture: dict[str, dict]
    loss: Callable  # (parts, *batch, channel) -> loss tensor; a batch is data.sample's: (images, labels) mostly
    evaluate: Callable  # (parts, images, labels, seed) -> {metric: value}
    flops: Callable  # (parts, example image [1, 3, H, W]) -> {part: FLOPs per image}
    default_steps: int
    uses_channel: bool = True
    ema_decay: float | None = None  # ship an exponential moving average of the weights
    batch_size: int = 16
    data: Callable[..., TrainData] = scenes  # (TrainConfig) -> what it trains and is validated on
    # Shipped models it is trained on top of (frozen, loaded from common/weights): their sha256 goes into its
    # card, and its codec refuses another version of them (LatentDiffusionCodec.check_models).
    trained_on: tuple[str, ...] = ()


def one_hot(labels: torch.Tensor, num_classes: int) -> torch.Tensor:
    """long [B, H, W] (255 = ignore) -> float [B, C, H, W]; ignored pixels are all zero."""
    valid = labels < num_classes
    hot = F.one_hot(torch.where(valid, labels, 0), num_classes).permute(0, 3, 1, 2).float()
    return hot * valid.unsqueeze(1)


def to_uint8(image: torch.Tensor) -> np.ndarray:
    """float [3, H, W] in [0, 1] -> uint8 [H, W, 3]."""
    return (image.float().clamp(0, 1) * 255).round().byte().permute(1, 2, 0).numpy()


def image_codec_eval(encode: Callable) -> Callable:
    """The evaluation of an image codec whose encoder features are encode(parts, images): PSNR per
    channel model and SNR."""
    def evaluate(parts, images, labels, seed):
        metrics = {}
        for model in ("awgn", "rayleigh"):
            for snr in EVAL_SNRS_DB:
                channel = ChannelInTheLoop((model,), seed=seed)
                outputs = torch.cat([parts["decoder"](channel.features(encode(parts, batch), snr))
                                     for batch in images.split(32)])
                metrics[f"psnr_db_{model}_{snr:g}db"] = float(np.mean(
                    [psnr_db(to_uint8(a), to_uint8(b)) for a, b in zip(images, outputs)]))
        return metrics

    return evaluate


def codec_flops(parts: dict, encoder_input: torch.Tensor, features: torch.Tensor) -> dict[str, int]:
    """FLOPs of a JSCC codec's encoder on its input and of its decoder on what it receives."""
    from semcom.common.models.layers import count_flops

    decoder_input = torch.zeros(1, 2 * features.shape[1], *features.shape[-2:])
    return {"encoder": count_flops(parts["encoder"], encoder_input), "decoder": count_flops(parts["decoder"], decoder_input)}
