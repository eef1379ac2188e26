"""Datasets of (image, labels) pairs at a preset size.

* SyntheticScenes: the embedded procedural street scenes (scenes.py), any
  size, deterministic: item i of a split is always the same scene.
* CityscapesFolder: a Cityscapes root with leftImg8bit/<split>/<city>/*_leftImg8bit.png
  and gtFine/<split>/<city>/*_gtFine_labelIds.png; label IDs become train IDs.
* ADE20KFolder: ADEChallengeData2016 with images/<training|validation>/*.jpg and
  annotations/<...>/*.png; class 0 ("other") becomes ignore, 1..150 -> 0..149.

Items are numpy: image uint8 [H, W, 3], labels uint8 [H, W] (255 = ignore),
resized to the requested size (area for images, nearest for labels).
`as_tensors` turns a dataset into float/long torch batches for training.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from .labels import IGNORE, LABEL_ID_TO_TRAIN_ID
from .scenes import generate_scene

SPLIT_SEED_OFFSETS = {"train": 0, "val": 1_000_000, "test": 2_000_000}


class SyntheticScenes:
    def __init__(self, split: str = "train", count: int = 1000, size: tuple[int, int] = (64, 128)):
        if split not in SPLIT_SEED_OFFSETS:
            raise ValueError(f"split must be one of {sorted(SPLIT_SEED_OFFSETS)}, got {split!r}")
        self.split, self.count, self.size = split, count, size

    def __len__(self) -> int:
        return self.count

    def __getitem__(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        if not 0 <= index < self.count:
            raise IndexError(index)
        return generate_scene(*self.size, seed=SPLIT_SEED_OFFSETS[self.split] + index)


class _FolderDataset:
    def __init__(self, pairs: list[tuple[Path, Path]], size: tuple[int, int], root: Path):
        if not pairs:
            raise FileNotFoundError(f"no image/label pairs found under {root}")
        self.pairs, self.size = pairs, size

    def __len__(self) -> int:
        return len(self.pairs)

    def __getitem__(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        image_path, label_path = self.pairs[index]
        height, width = self.size
        image = Image.open(image_path).convert("RGB").resize((width, height), Image.Resampling.BOX)
        labels = Image.open(label_path).resize((width, height), Image.Resampling.NEAREST)
        return np.asarray(image, dtype=np.uint8), self._train_ids(np.asarray(labels, dtype=np.uint8))

    def _train_ids(self, labels: np.ndarray) -> np.ndarray:
        raise NotImplementedError


class CityscapesFolder(_FolderDataset):
    def __init__(self, root: str | Path, split: str = "val", size: tuple[int, int] = (64, 128)):
        root = Path(root)
        pairs = []
        for image in sorted((root / "leftImg8bit" / split).glob("*/*_leftImg8bit.png")):
            stem = image.name.removesuffix("_leftImg8bit.png")
            label = root / "gtFine" / split / image.parent.name / f"{stem}_gtFine_labelIds.png"
            if not label.is_file():
                raise FileNotFoundError(f"{image} has no label file {label}")
            pairs.append((image, label))
        super().__init__(pairs, size, root)

    def _train_ids(self, labels: np.ndarray) -> np.ndarray:
        return LABEL_ID_TO_TRAIN_ID[labels]


class ADE20KFolder(_FolderDataset):
    num_classes = 150

    def __init__(self, root: str | Path, split: str = "validation", size: tuple[int, int] = (64, 128)):
        root = Path(root)
        pairs = []
        for image in sorted((root / "images" / split).glob("*.jpg")):
            label = root / "annotations" / split / (image.stem + ".png")
            if not label.is_file():
                raise FileNotFoundError(f"{image} has no annotation {label}")
            pairs.append((image, label))
        super().__init__(pairs, size, root)

    def _train_ids(self, labels: np.ndarray) -> np.ndarray:
        return np.where(labels == 0, IGNORE, labels - 1).astype(np.uint8)


def materialize(dataset, limit: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """All items as arrays: images uint8 [N, H, W, 3], labels uint8 [N, H, W]."""
    count = len(dataset) if limit is None else min(limit, len(dataset))
    items = [dataset[i] for i in range(count)]
    return np.stack([i for i, _ in items]), np.stack([l for _, l in items])


def write_split(dataset, folder: str | Path) -> int:
    """Writes images/<i>.png and labels/<i>.png (train IDs); returns the count."""
    folder = Path(folder)
    (folder / "images").mkdir(parents=True, exist_ok=True)
    (folder / "labels").mkdir(parents=True, exist_ok=True)
    for index in range(len(dataset)):
        image, labels = dataset[index]
        Image.fromarray(image).save(folder / "images" / f"{index:06d}.png")
        Image.fromarray(labels).save(folder / "labels" / f"{index:06d}.png")
    return len(dataset)
