"""Shipped weights: where they live, how they are loaded, and their model cards.

Each trained model `name` ships as common/weights/<name>.pt (a dict of state
dicts, one per part, loaded with torch.load(weights_only=True)) beside
common/weights/<name>.card.json (the model card: architecture, training
command, data, steps, wall time, metrics, sha256 of the .pt). Cards and
checks need no torch (an int8 receiver reads them); loading the .pt does.
"""

from __future__ import annotations

import hashlib
import json
from functools import cache
from pathlib import Path

WEIGHTS_DIR = Path(__file__).resolve().parent.parent / "weights"


class WeightsMissing(FileNotFoundError):
    pass


def sha256_of(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def build(architecture: dict[str, dict]) -> dict:
    """{"encoder": {"class": "MapEncoder", "kwargs": {...}}, ...} -> fresh torch modules."""
    from . import diffusion, jscc, photo_latent, segmenter

    classes = {
        "AttentionUNet": segmenter.AttentionUNet, "ChannelAdaptiveEncoder": segmenter.ChannelAdaptiveEncoder,
        "MapEncoder": jscc.MapEncoder, "MapDecoder": jscc.MapDecoder,
        "LatentEncoder": jscc.LatentEncoder, "LatentDecoder": jscc.LatentDecoder,
        "ImageEncoder": jscc.ImageEncoder, "ImageDecoder": jscc.ImageDecoder,
        "NativeImageEncoder": jscc.NativeImageEncoder, "NativeImageDecoder": jscc.NativeImageDecoder,
        "SemanticDiffusionUNet": diffusion.SemanticDiffusionUNet,
        "PhotoVAEEncoder": photo_latent.PhotoVAEEncoder, "PhotoVAEDecoder": photo_latent.PhotoVAEDecoder,
        "LatentDownsampler": photo_latent.LatentDownsampler, "LatentUpsamplingHead": photo_latent.LatentUpsamplingHead,
    }
    return {part: classes[spec["class"]](**spec["kwargs"]) for part, spec in architecture.items()}


def card(name: str, weights_dir: Path = WEIGHTS_DIR, fix: str | None = None) -> dict:
    """Model `name`'s card. fix: the command that makes the model, for the error (default `semcom train NAME`)."""
    path = weights_dir / f"{name}.card.json"
    if not path.is_file():
        raise WeightsMissing(f"no '{name}' model at {weights_dir}: run `{fix or f'semcom train {name}'}` first")
    return json.loads(path.read_text())


def check_trained_on(name: str, weights_dir: Path = WEIGHTS_DIR, fix: str | None = None) -> None:
    """Raises WeightsMissing when a shipped model `name` was trained on top of (its card's training.trained_on:
    frozen inputs, a teacher) is not the version it was trained on: its inputs are no longer what it learned."""
    check_versions(name, card(name, weights_dir)["training"].get("trained_on", {}), fix or f"semcom train {name}",
                   weights_dir)


def check_versions(what: str, digests: dict[str, str], fix: str, weights_dir: Path = WEIGHTS_DIR) -> None:
    """Raises WeightsMissing unless each model in `digests` (name -> sha256) is the shipped version; `what` (a
    model, a store) was made from them, `fix` makes it again."""
    for model, digest in digests.items():
        shipped = card(model, weights_dir)["sha256"]
        if digest != shipped:
            raise WeightsMissing(f"{what} was made with {model} {digest[:12]}, but the shipped {model} is "
                                 f"{shipped[:12]}: run `{fix}` again")


def checked_file(name: str, suffix: str, weights_dir: Path = WEIGHTS_DIR, fix: str | None = None) -> tuple[dict, Path]:
    """(card, path) of model `name`'s file <name><suffix>, once it is there and matches the card's sha256."""
    description = card(name, weights_dir, fix)
    path = weights_dir / f"{name}{suffix}"
    if not path.is_file():
        raise WeightsMissing(f"model card for '{name}' found but {path} is missing: run `{fix or f'semcom train {name}'}`")
    digest = sha256_of(path)
    if digest != description["sha256"]:
        raise ValueError(f"{path}: sha256 {digest} does not match its model card ({description['sha256']})")
    return description, path


def card_stamp(names: tuple[str, ...], weights_dir: Path) -> tuple:
    """The current version of the named model cards' files: loaders cache per stamp, so that weights or
    artifacts written anew (by training or `semcom quantize`, which rewrite the cards) are loaded anew
    without anyone flushing a cache."""
    stamps = []
    for name in names:
        try:
            status = (weights_dir / f"{name}.card.json").stat()
            stamps.append((status.st_mtime_ns, status.st_size, status.st_ino))
        except FileNotFoundError:
            stamps.append(None)  # the loader raises WeightsMissing, which is not cached
    return tuple(stamps)


def load(name: str, weights_dir: Path = WEIGHTS_DIR) -> dict:
    """The trained parts of model `name` (torch modules), in eval mode; checks the card's sha256. Cached
    per version of its card."""
    return _load(name, weights_dir, card_stamp((name,), weights_dir))


@cache
def _load(name: str, weights_dir: Path, stamp: tuple) -> dict:
    import torch

    description, path = checked_file(name, ".pt", weights_dir)
    parts = build(description["architecture"])
    states = torch.load(path, map_location="cpu", weights_only=True)
    for part, module in parts.items():
        module.load_state_dict(states[part])
        module.eval()
    return parts
