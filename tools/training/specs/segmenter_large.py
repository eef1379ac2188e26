"""The large transmitter model, the encoder student's teacher (seed arXiv 2506.13243's "large-scale model",
of the project's own): the segmenter's attention UNet twice as wide (4x the FLOPs), trained the same way.

    semcom train segmenter_large --resume
"""

from dataclasses import replace

from .segmenter import SPEC as SEGMENTER

SPEC = replace(SEGMENTER, architecture={
    "net": {"class": "AttentionUNet", "kwargs": {"num_classes": 19, "base_channels": 32, "levels": 3}}})
