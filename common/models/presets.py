"""Model presets: the image size and label space the learned models are built
and trained for. The CPU preset is the default everywhere; a GPU preset at
Cityscapes scale is recorded for the diffusion decoder's later issue."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Preset:
    name: str
    height: int
    width: int
    num_classes: int  # Cityscapes train IDs 0..18; 255 is "ignore"


CPU = Preset("cpu", 64, 128, 19)
GPU = Preset("gpu", 256, 512, 19)
PRESETS = {p.name: p for p in (CPU, GPU)}
