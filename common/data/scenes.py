"""Procedural street-like scenes with labels in Cityscapes train-ID space.

Deterministic by seed, any resolution. Each scene is drawn as a label map
(sky, buildings with windows, vegetation, sidewalks, road in perspective
with lane marks, poles and signs, cars, people) and rendered with per-class
colours, vertical shading, texture noise and sensor noise.
"""

from __future__ import annotations

import numpy as np

# Cityscapes train IDs of the classes drawn here.
ROAD, SIDEWALK, BUILDING, POLE, TRAFFIC_SIGN, VEGETATION, SKY, PERSON, CAR = 0, 1, 2, 5, 7, 8, 10, 11, 13
CLASS_NAMES = {ROAD: "road", SIDEWALK: "sidewalk", BUILDING: "building", POLE: "pole",
               TRAFFIC_SIGN: "traffic sign", VEGETATION: "vegetation", SKY: "sky", PERSON: "person", CAR: "car"}
_BASE_COLOURS = {
    ROAD: (90, 88, 92), SIDEWALK: (160, 150, 140), BUILDING: (140, 110, 90), POLE: (70, 70, 75),
    TRAFFIC_SIGN: (220, 200, 40), VEGETATION: (60, 120, 50), SKY: (120, 170, 225), PERSON: (200, 60, 60),
    CAR: (40, 60, 150),
}


def generate_scene(height: int, width: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Returns (image uint8 [H, W, 3], labels uint8 [H, W] of train IDs)."""
    rng = np.random.default_rng(seed)
    labels = np.full((height, width), SKY, dtype=np.uint8)
    rows, cols = np.mgrid[0:height, 0:width]
    horizon = int(height * rng.uniform(0.40, 0.55))

    # Buildings along the skyline, vegetation between some of them.
    x = 0
    while x < width:
        w = max(1, int(width * rng.uniform(0.12, 0.3)))  # at least a column: a narrow image would loop forever
        top = int(horizon * rng.uniform(0.1, 0.7))
        kind = BUILDING if rng.random() < 0.75 else VEGETATION
        labels[top:horizon + 2, x:x + w] = kind
        x += w
    # Road: a trapezoid from the vanishing point; sidewalks beside it.
    vanish_x = width * rng.uniform(0.35, 0.65)
    depth = np.clip((rows - horizon) / max(1, height - horizon), 0, 1)
    half_road = 2 + depth * width * rng.uniform(0.45, 0.7)
    half_walk = half_road + 1 + depth * width * 0.25
    below = rows >= horizon
    labels[below & (np.abs(cols - vanish_x) < half_walk)] = SIDEWALK
    labels[below & (np.abs(cols - vanish_x) >= half_walk)] = VEGETATION
    labels[below & (np.abs(cols - vanish_x) < half_road)] = ROAD

    # Poles with signs, cars on the road, people on the sidewalks (far to near).
    for _ in range(rng.integers(1, 3)):
        px = int(rng.uniform(0.05, 0.95) * width)
        pole_top = int(horizon * rng.uniform(0.3, 0.8))
        labels[pole_top:horizon + int(0.1 * height), px:px + max(1, width // 60)] = POLE
        sign = max(2, height // 16)
        labels[pole_top:pole_top + sign, px - sign // 2:px + sign // 2 + 1] = TRAFFIC_SIGN
    for _ in range(rng.integers(1, 4)):
        y = int(rng.uniform(horizon + 0.15 * (height - horizon), height - 2))
        scale = (y - horizon) / max(1, height - horizon)
        cw, ch = max(3, int(width * 0.35 * scale)), max(2, int(height * 0.25 * scale))
        cx = int(vanish_x + rng.uniform(-0.8, 0.8) * (2 + scale * width * 0.45)) - cw // 2
        labels[max(0, y - ch):y, max(0, cx):max(0, cx + cw)] = CAR
    for _ in range(rng.integers(1, 4)):
        y = int(rng.uniform(horizon + 0.1 * (height - horizon), height - 1))
        scale = (y - horizon) / max(1, height - horizon)
        ph, pw = max(3, int(height * 0.3 * scale)), max(1, int(width * 0.03 * scale) + 1)
        side = rng.choice([-1, 1])
        px = int(vanish_x + side * (2 + scale * width * rng.uniform(0.5, 0.8)))
        labels[max(0, y - ph):y, max(0, px):max(0, px + pw)] = PERSON

    return _render(labels, horizon, rng), labels


def _render(labels: np.ndarray, horizon: int, rng: np.random.Generator) -> np.ndarray:
    height, width = labels.shape
    image = np.zeros((height, width, 3), dtype=np.float32)
    rows = np.arange(height, dtype=np.float32)[:, None]
    for class_id, colour in _BASE_COLOURS.items():
        mask = labels == class_id
        if not mask.any():
            continue
        tint = np.array(colour, dtype=np.float32) * rng.uniform(0.8, 1.2, size=3)
        shading = 1.0 + 0.25 * (rows / height - 0.5) * (1 if class_id == SKY else -1)
        texture = 1.0 + 0.08 * rng.standard_normal((height, width)).astype(np.float32)
        image[mask] = (tint[None, None, :] * (shading * texture)[..., None])[mask]
    # Windows on buildings: a darker grid.
    windows = (labels == BUILDING) & ((np.arange(height)[:, None] // max(2, height // 20)) % 2 == 0) & (
        (np.arange(width)[None, :] // max(2, width // 30)) % 2 == 0)
    image[windows] *= 0.6
    image += rng.normal(0, 3.0, size=image.shape).astype(np.float32)  # sensor noise
    return np.clip(image, 0, 255).astype(np.uint8)


SAMPLE_SIZE = (64, 128)  # height, width: the CPU preset, Cityscapes' 1:2 aspect
SAMPLE_SEEDS = (0, 1, 2, 3)


def write_samples(folder, size: tuple[int, int] = SAMPLE_SIZE, seeds=SAMPLE_SEEDS) -> list:
    """Writes scene_<seed>.png for each seed (how the bundled samples were made)."""
    from pathlib import Path

    from PIL import Image

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for seed in seeds:
        image, _labels = generate_scene(*size, seed=seed)
        path = folder / f"scene_{seed}.png"
        Image.fromarray(image).save(path)
        paths.append(path)
    return paths
