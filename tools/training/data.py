"""What a model trains and is validated on: the embedded scenes, or real photo crops with scenes."""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from PIL import Image

from semcom.common.data.datasets import SyntheticScenes, materialize
from semcom.common.data.photos import PhotosMissing, load_photos

Batch = tuple[torch.Tensor, torch.Tensor]  # images float [B, 3, H, W] in [0, 1], labels long [B, H, W]


@dataclass
class TrainData:
    sample: Callable[[np.random.Generator, int], tuple]  # a training batch (Batch mostly), drawn from the generator
    validation: tuple  # what `evaluate` gets: (images, labels), or (images of their own sizes, None)
    description: str  # of the training data, for the model card
    validation_description: str


def as_tensors(images: np.ndarray, labels: np.ndarray) -> Batch:
    return torch.from_numpy(images).permute(0, 3, 1, 2).float() / 255.0, torch.from_numpy(labels).long()


def scenes(config) -> TrainData:
    """The scenes at the preset size, flipped at random (the labelled data: every semantic model)."""
    size = (config.preset.height, config.preset.width)
    print(f"generating {config.train_count} training and {config.val_count} validation scenes at "
          f"{size[0]}x{size[1]} ...", file=sys.stderr)
    images, labels = as_tensors(*materialize(SyntheticScenes("train", config.train_count, size)))

    def sample(rng: np.random.Generator, batch_size: int) -> Batch:
        index = rng.integers(0, len(images), batch_size)
        batch = images[index], labels[index]
        return (batch[0].flip(-1), batch[1].flip(-1)) if rng.random() < 0.5 else batch

    return TrainData(sample, validation_scenes(config),
                     f"embedded synthetic scenes (semcom.common.data.scenes), train split items "
                     f"0..{config.train_count - 1}", validation_description(config))


def validation_scenes(config) -> Batch:
    """The validation split at the preset size: what the semantic models are evaluated on."""
    size = (config.preset.height, config.preset.width)
    return as_tensors(*materialize(SyntheticScenes("val", config.val_count, size)))


def validation_description(config) -> str:
    return f"synthetic val split items 0..{config.val_count - 1}"


class PhotoCrops:
    """Square crops of photos at several scales (textures seen at several sizes), flipped at random.
    Each photo is resized once per scale; crops are cut from those."""

    def __init__(self, photos: list[np.ndarray], crop: int, scales: tuple[float, ...] = (0.25, 0.4, 0.6, 1.0)):
        self.crop = crop
        self.pyramid = []
        for photo in photos:
            height, width = photo.shape[:2]
            for scale in scales:
                size = (round(width * scale), round(height * scale))
                if min(size) >= crop:
                    self.pyramid.append(np.asarray(Image.fromarray(photo).resize(size, Image.Resampling.LANCZOS)))
        if not self.pyramid:
            raise ValueError(f"no photo is {crop} pixels on its shorter side at any scale")

    def sample(self, rng: np.random.Generator, count: int) -> np.ndarray:
        """uint8 [count, crop, crop, 3]."""
        crops = []
        for _ in range(count):
            image = self.pyramid[rng.integers(len(self.pyramid))]
            top = rng.integers(image.shape[0] - self.crop + 1)
            left = rng.integers(image.shape[1] - self.crop + 1)
            crop = image[top:top + self.crop, left:left + self.crop]
            crops.append(crop[:, ::-1] if rng.random() < 0.5 else crop)
        return np.stack(crops)


def photos_and_scenes(config, crop: int = 128, photo_share: float = 0.75) -> TrainData:
    """Real photo crops (the installed training photos) and scene crops, `photo_share` of each batch
    photos; validated on the Kodak images, which are held out (never a training crop). Without the
    photos (`semcom data photos` not run) it trains on scenes alone and says so."""
    try:
        photos = load_photos("train")
        validation = load_photos("kodak")[:config.val_count]  # a short run (a test) validates on fewer
    except PhotosMissing as error:
        print(f"training on scenes alone: {error}", file=sys.stderr)
        photos, validation = [], []
    scenes_images, _ = materialize(SyntheticScenes("train", config.train_count, (crop, crop)))
    crops = PhotoCrops(photos, crop) if photos else None

    def sample(rng: np.random.Generator, batch_size: int) -> Batch:
        from_photos = int(round(batch_size * photo_share)) if crops else 0
        parts = [crops.sample(rng, from_photos)] if from_photos else []
        parts.append(scenes_images[rng.integers(0, len(scenes_images), batch_size - from_photos)])
        images = np.concatenate(parts)
        return as_tensors(images, np.zeros(images.shape[:3], np.uint8))

    if validation:
        val_images = [torch.from_numpy(photo.copy()).permute(2, 0, 1).float()[None] / 255.0 for photo in validation]
        description = (f"{len(photos)} real photos (`semcom data photos`: opencv-doc, scikit-learn, matplotlib), "
                       f"{crop}x{crop} crops at scales 0.25-1, {photo_share:.0%} of each batch; the rest "
                       f"{crop}x{crop} synthetic scenes (train split items 0..{config.train_count - 1})")
        validated = f"the {len(validation)} held-out Kodak images (pyiqa's), at their own size"
    else:
        val_scenes, _ = materialize(SyntheticScenes("val", config.val_count, (config.preset.height,
                                                                              config.preset.width)))
        val_images = [torch.from_numpy(image).permute(2, 0, 1).float()[None] / 255.0 for image in val_scenes]
        description = (f"{crop}x{crop} synthetic scenes only (train split items 0..{config.train_count - 1}): "
                       "the photos were not installed")
        validated = f"synthetic val split items 0..{config.val_count - 1} (the Kodak images were not installed)"
    return TrainData(sample, (val_images, None), description, validated)
