"""The semantic-map codec: the one-hot map through a learned JSCC encoder, the channel and its decoder."""

import torch
from torch.nn import functional as F

from semcom.common.models.presets import CPU
from semcom.common.quality import confusion_matrix, mean_iou, pixel_accuracy

from ..channel_in_the_loop import ChannelInTheLoop
from ..spec import EVAL_SNRS_DB, Spec, codec_flops, one_hot


def loss(parts, images, labels, channel):
    features = parts["encoder"](one_hot(labels, CPU.num_classes))
    return F.cross_entropy(parts["decoder"](channel.features(features)), labels, ignore_index=255)


def evaluate(parts, images, labels, seed):
    metrics = {}
    for model in ("awgn", "rayleigh"):
        for snr in EVAL_SNRS_DB:
            channel = ChannelInTheLoop((model,), seed=seed)
            predictions = torch.cat([
                parts["decoder"](channel.features(parts["encoder"](one_hot(batch, CPU.num_classes)), snr)).argmax(1)
                for batch in labels.split(32)
            ])
            confusion = confusion_matrix(labels.numpy(), predictions.numpy(), CPU.num_classes)
            metrics[f"pixel_accuracy_{model}_{snr:g}db"] = pixel_accuracy(confusion)
            metrics[f"miou_{model}_{snr:g}db"] = mean_iou(confusion)
    return metrics


def flops(parts, image):
    encoded_map = torch.zeros(1, parts["encoder"].net[0][0].in_channels, *image.shape[-2:])
    return codec_flops(parts, encoded_map, parts["encoder"](encoded_map))


SPEC = Spec({"encoder": {"class": "MapEncoder", "kwargs": {"num_classes": 19, "channels": 4}},
             "decoder": {"class": "MapDecoder", "kwargs": {"num_classes": 19, "channels": 4}}},
            loss, evaluate, flops, default_steps=2500)
