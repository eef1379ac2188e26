"""The segmenter: an attention UNet from the image to Cityscapes train IDs (no channel)."""

import torch
from torch.nn import functional as F

from semcom.common.models.layers import count_flops
from semcom.common.models.presets import CPU
from semcom.common.quality import confusion_matrix, mean_iou, pixel_accuracy

from ..spec import Spec


def loss(parts, images, labels, channel):
    return F.cross_entropy(parts["net"](images), labels, ignore_index=255)


def evaluate(parts, images, labels, seed):
    predictions = torch.cat([parts["net"](batch).argmax(1) for batch in images.split(32)])
    confusion = confusion_matrix(labels.numpy(), predictions.numpy(), CPU.num_classes)
    return {"miou": mean_iou(confusion), "pixel_accuracy": pixel_accuracy(confusion)}


SPEC = Spec({"net": {"class": "AttentionUNet", "kwargs": {"num_classes": 19, "base_channels": 16, "levels": 3}}},
            loss, evaluate, lambda parts, image: {"net": count_flops(parts["net"], image)},
            default_steps=3000, uses_channel=False)
