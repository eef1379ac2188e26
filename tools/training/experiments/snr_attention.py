"""ADJSCC-style SNR attention (Xu et al. 2021) on Deep JSCC, measured against the plain model on the
same budget, under matched and mismatched SNR (issue 15: "where it measurably helps").

The plain model is the shipped recipe (ratio_choice.py's rate_adaptive run: its weights are loaded
from --baseline). The attention model adds attention-feature modules: a channel gate from the
features' global average and the SNR (two small fully connected layers, a sigmoid), twice in the
encoder, which is told the transmitter's design SNR, and twice in the decoder, which reads the SNR
from the per-symbol error variances it is already given. Trained from scratch with the same seed,
data, steps and schedule, each item's SNR uniform in [-5, 20] dB and the design SNR equal to it.

Evaluation: Kodak PSNR at k/n = 1/12 over AWGN, for design SNR x channel SNR in {0, 10, 20}^2
(mismatch: the channel differs from what the transmitter designed for).

    python -m semcom.tools.training.experiments.snr_attention --steps 4000 --out /tmp/snr_attention \\
        --baseline /tmp/ratio_choice/rate_adaptive/deep_jscc.pt
"""

from __future__ import annotations

import argparse
import dataclasses
import json
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from semcom.common.codecs.learned import DeepJSCCCodec
from semcom.common.models import jscc
from semcom.common.models.layers import SNRAttention
from semcom.common.quality import psnr_db

from .. import loop
from ..channel_in_the_loop import ChannelInTheLoop
from ..spec import to_uint8
from ..specs import deep_jscc

RATIO = 1 / 12
SNRS_DB = (0.0, 10.0, 20.0)
SNR_RANGE_DB = (-5.0, 20.0)


class AttentionEncoder(jscc.NativeImageEncoder):
    """NativeImageEncoder with a gate after its stride-4 stage and after its residual blocks."""

    def __init__(self, max_channels: int = 64, widths=(32, 64, 128)):
        super().__init__(max_channels, widths)
        self.early, self.late = SNRAttention(widths[1]), SNRAttention(widths[2])

    def forward(self, image: torch.Tensor, snr_db: torch.Tensor) -> torch.Tensor:
        layers = list(self.net)
        x = nn.Sequential(*layers[:6])(image * 2 - 1)  # to the stride-4 features, after their GELU
        x = self.early(x, snr_db)
        x = nn.Sequential(*layers[6:9])(x)  # stride 8 and the residual blocks
        return nn.Sequential(*layers[9:])(self.late(x, snr_db))


class AttentionDecoder(jscc.NativeImageDecoder):
    """NativeImageDecoder with a gate after its first convolution and after its residual blocks; the SNR
    is that of the sent maps' error variances (the receiver's own estimate)."""

    def __init__(self, max_channels: int = 64, widths=(32, 64, 128)):
        super().__init__(max_channels, widths)
        self.early, self.late = SNRAttention(widths[2]), SNRAttention(widths[2])

    def forward(self, received: torch.Tensor) -> torch.Tensor:
        reliability = received[:, self.max_channels:]
        sent = reliability < jscc.ERASED_RELIABILITY - 0.1
        mean_log_error = (reliability * sent).sum((1, 2, 3)) / sent.sum((1, 2, 3)).clamp_min(1)
        snr_db = -10 * mean_log_error  # an MMSE error e at SNR s is 1/(1+s): -10 log10 e ~ s in dB above 0 dB
        layers = list(self.net)
        x = self.early(layers[0](received), snr_db)
        x = self.late(nn.Sequential(*layers[1:3])(x), snr_db)
        return torch.sigmoid(nn.Sequential(*layers[3:])(x))


def attention_loss(parts, images, labels, channel: ChannelInTheLoop):
    channels = 2 * int(torch.randint(1, deep_jscc.MAX_CHANNELS // 2 + 1, ()))
    low, high = SNR_RANGE_DB
    snrs = torch.rand(images.shape[0]) * (high - low) + low
    reconstruction = deep_jscc.decode(parts, parts["encoder"](images, snrs), channels, channel, snrs.tolist())
    return F.mse_loss(reconstruction.float(), images)


def mismatch_psnr(parts, images, seed: int = 12345, attention: bool = True) -> dict[str, float]:
    """Kodak PSNR at RATIO: design SNR (what the encoder is told) x channel SNR, AWGN."""
    channels = DeepJSCCCodec.channels_for(RATIO)
    results = {}
    with torch.no_grad():
        for design in SNRS_DB:
            for actual in SNRS_DB:
                channel = ChannelInTheLoop(("awgn",), seed=seed)
                psnrs = []
                for image in images:
                    height, width = image.shape[-2:]
                    padded = deep_jscc.pad_to_stride(image)
                    features = (parts["encoder"](padded, torch.tensor([design])) if attention
                                else parts["encoder"](padded))
                    output = deep_jscc.decode(parts, features, channels, channel, actual)
                    psnrs.append(psnr_db(to_uint8(image[0]), to_uint8(output[0, :, :height, :width])))
                results[f"design_{design:g}db_channel_{actual:g}db"] = float(np.mean(psnrs))
    return results


def build(architecture: dict[str, dict]) -> dict:
    classes = {"AttentionEncoder": AttentionEncoder, "AttentionDecoder": AttentionDecoder}
    return {part: classes[spec["class"]](**spec["kwargs"]) for part, spec in architecture.items()}


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=4000, help="optimizer steps [%(default)s]")
    parser.add_argument("--out", type=Path, required=True, help="weights, checkpoints and results.json go here")
    parser.add_argument("--baseline", type=Path, required=True, help="the plain model's deep_jscc.pt (ratio_choice)")
    args = parser.parse_args(argv)

    spec = dataclasses.replace(
        deep_jscc.SPEC, loss=attention_loss,
        architecture={"encoder": {"class": "AttentionEncoder", "kwargs": {"max_channels": deep_jscc.MAX_CHANNELS}},
                      "decoder": {"class": "AttentionDecoder", "kwargs": {"max_channels": deep_jscc.MAX_CHANNELS}}},
        evaluate=lambda parts, images, labels, seed: mismatch_psnr(parts, images, seed),
        flops=lambda parts, image: {})
    loop.spec_of = lambda model: spec  # the loop looks its spec and its modules up by name
    loop.store.build = build
    card = loop.train("deep_jscc", loop.TrainConfig(steps=args.steps, checkpoint_dir=args.out, weights_dir=args.out,
                                                    resume=True), command="snr_attention")

    plain = {part: getattr(jscc, name)(max_channels=deep_jscc.MAX_CHANNELS)
             for part, name in (("encoder", "NativeImageEncoder"), ("decoder", "NativeImageDecoder"))}
    for part, state in torch.load(args.baseline, weights_only=True).items():
        plain[part].load_state_dict(state)
    images = deep_jscc.SPEC.data(loop.TrainConfig(steps=0)).validation[0]
    results = {"snr_attention": card["evaluation"]["metrics"],
               "plain": mismatch_psnr({part: module.eval() for part, module in plain.items()}, images, attention=False),
               "wall_seconds": card["training"]["wall_seconds"]}
    (args.out / "results.json").write_text(json.dumps(results, indent=1))
    print(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
