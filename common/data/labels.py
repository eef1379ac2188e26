"""Cityscapes label spaces: label IDs -> train IDs, class names, a palette."""

from __future__ import annotations

import numpy as np

IGNORE = 255
TRAIN_ID_NAMES = ("road", "sidewalk", "building", "wall", "fence", "pole", "traffic light", "traffic sign",
                  "vegetation", "terrain", "sky", "person", "rider", "car", "truck", "bus", "train", "motorcycle",
                  "bicycle")
NUM_TRAIN_IDS = len(TRAIN_ID_NAMES)

# gtFine *_labelIds.png value -> train ID (cityscapesScripts' table); every other ID is ignored.
_LABEL_TO_TRAIN = {7: 0, 8: 1, 11: 2, 12: 3, 13: 4, 17: 5, 19: 6, 20: 7, 21: 8, 22: 9, 23: 10, 24: 11, 25: 12,
                   26: 13, 27: 14, 28: 15, 31: 16, 32: 17, 33: 18}
LABEL_ID_TO_TRAIN_ID = np.full(256, IGNORE, dtype=np.uint8)
for _label, _train in _LABEL_TO_TRAIN.items():
    LABEL_ID_TO_TRAIN_ID[_label] = _train

PALETTE = np.array([(128, 64, 128), (244, 35, 232), (70, 70, 70), (102, 102, 156), (190, 153, 153), (153, 153, 153),
                    (250, 170, 30), (220, 220, 0), (107, 142, 35), (152, 251, 152), (70, 130, 180), (220, 20, 60),
                    (255, 0, 0), (0, 0, 142), (0, 0, 70), (0, 60, 100), (0, 80, 100), (0, 0, 230), (119, 11, 32)],
                   dtype=np.uint8)


def colorize(labels: np.ndarray) -> np.ndarray:
    """uint8 [H, W] train IDs -> uint8 [H, W, 3] Cityscapes colours (ignore: black)."""
    out = np.zeros((*labels.shape, 3), dtype=np.uint8)
    valid = labels < NUM_TRAIN_IDS
    out[valid] = PALETTE[labels[valid]]
    return out
