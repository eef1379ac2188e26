"""Deep JSCC (Bourtsoulatze, Kurka, Gündüz 2019) at the image's own size and any bandwidth ratio up
to 1/6: one rate-adaptive model. Each batch sends the first C of the encoder's 64 feature maps, C
even and uniform in 2..64 (k/n = C/384, 1/192 to 1/6), the rest erased as the receiver erases them,
so the encoder learns to put what matters most first. Trained on real photo crops and scenes,
through the channel; validated on the held-out Kodak images at their own size."""

import numpy as np
import torch
from torch.nn import functional as F

from semcom.common.codecs.learned import DeepJSCCCodec
from semcom.common.models.jscc import NATIVE_STRIDE, erase_unsent
from semcom.common.models.layers import count_flops
from semcom.common.quality import psnr_db

from ..channel_in_the_loop import ChannelInTheLoop
from ..data import photos_and_scenes
from ..spec import Spec, to_uint8

MAX_CHANNELS = DeepJSCCCodec.max_channels
EVAL_RATIOS = (1 / 6, 1 / 12, 1 / 24, 1 / 48)
EVAL_SNRS_DB = (0.0, 10.0)


def decode(parts, features: torch.Tensor, channels: int, channel: ChannelInTheLoop, snr_db=None) -> torch.Tensor:
    """The first `channels` maps through the channel (snr_db: one, one per item, or None: drawn), the
    rest erased, decoded."""
    received = channel.features(features[:, :channels], snr_db)
    return parts["decoder"](erase_unsent(received, MAX_CHANNELS))


def loss(parts, images, labels, channel):
    channels = 2 * int(torch.randint(1, MAX_CHANNELS // 2 + 1, ()))
    reconstruction = decode(parts, parts["encoder"](images), channels, channel)
    return F.mse_loss(reconstruction.float(), images)


def pad_to_stride(image: torch.Tensor) -> torch.Tensor:
    """[1, 3, H, W] -> padded with its edge pixels to multiples of the stride, as the codec pads."""
    height, width = image.shape[-2:]
    return F.pad(image, (0, -width % NATIVE_STRIDE, 0, -height % NATIVE_STRIDE), mode="replicate")


def evaluate(parts, images, labels, seed):
    """PSNR per bandwidth ratio and AWGN SNR over the validation images, each at its own size."""
    metrics = {}
    for ratio in EVAL_RATIOS:
        for snr in EVAL_SNRS_DB:
            channel = ChannelInTheLoop(("awgn",), seed=seed)
            psnrs = []
            for image in images:
                height, width = image.shape[-2:]
                output = decode(parts, parts["encoder"](pad_to_stride(image)), DeepJSCCCodec.channels_for(ratio), channel, snr)
                psnrs.append(psnr_db(to_uint8(image[0]), to_uint8(output[0, :, :height, :width])))
            metrics[f"psnr_db_ratio_1_{round(1 / ratio)}_awgn_{snr:g}db"] = float(np.mean(psnrs))
    return metrics


def flops(parts, image):
    """At 512x768 (the full Kodak images' size; the held-out copies are 384x512), all 64 maps."""
    photo = torch.zeros(1, 3, 512, 768)
    received = torch.zeros(1, 2 * MAX_CHANNELS, 64, 96)
    return {"encoder_512x768": count_flops(parts["encoder"], photo),
            "decoder_512x768": count_flops(parts["decoder"], received)}


SPEC = Spec({"encoder": {"class": "NativeImageEncoder", "kwargs": {"max_channels": MAX_CHANNELS}},
             "decoder": {"class": "NativeImageDecoder", "kwargs": {"max_channels": MAX_CHANNELS}}},
            loss, evaluate, flops, default_steps=20000, batch_size=16, data=photos_and_scenes)
