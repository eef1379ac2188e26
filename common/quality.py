"""Image-quality metrics on uint8 RGB arrays: PSNR in dB and SSIM.

SSIM follows Wang et al. 2004: 11x11 Gaussian window with sigma 1.5,
K1 = 0.01, K2 = 0.03, data range 255, computed per channel and averaged.
Images smaller than the window use the largest odd window that fits.
"""

from __future__ import annotations

import math

import numpy as np

_DATA_RANGE = 255.0


def psnr_db(reference: np.ndarray, test: np.ndarray) -> float:
    """Peak signal-to-noise ratio in dB; inf for identical images."""
    _check_pair(reference, test)
    mse = float(np.mean((reference.astype(np.float64) - test.astype(np.float64)) ** 2))
    return math.inf if mse == 0.0 else 10.0 * math.log10(_DATA_RANGE**2 / mse)


def ssim(reference: np.ndarray, test: np.ndarray, *, window: int = 11, sigma: float = 1.5) -> float:
    """Mean structural similarity in [-1, 1] (1 for identical images)."""
    _check_pair(reference, test)
    size = min(window, *reference.shape[:2])
    size -= 1 - size % 2  # odd, so the window has a centre
    kernel = _gaussian_kernel(size, sigma)
    c1, c2 = (0.01 * _DATA_RANGE) ** 2, (0.03 * _DATA_RANGE) ** 2
    x = reference.astype(np.float64)
    y = test.astype(np.float64)
    mu_x, mu_y = _filter(x, kernel), _filter(y, kernel)
    var_x = _filter(x * x, kernel) - mu_x**2
    var_y = _filter(y * y, kernel) - mu_y**2
    cov = _filter(x * y, kernel) - mu_x * mu_y
    ssim_map = ((2 * mu_x * mu_y + c1) * (2 * cov + c2)) / ((mu_x**2 + mu_y**2 + c1) * (var_x + var_y + c2))
    return float(ssim_map.mean())


def _check_pair(reference: np.ndarray, test: np.ndarray) -> None:
    if reference.shape != test.shape:
        raise ValueError(f"images differ in shape: {reference.shape} vs {test.shape}")


def _gaussian_kernel(size: int, sigma: float) -> np.ndarray:
    offsets = np.arange(size) - size // 2
    kernel = np.exp(-(offsets**2) / (2 * sigma**2))
    return kernel / kernel.sum()


def _filter(image: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    """Separable 'valid' Gaussian filter over the two spatial axes of [H, W, C]."""
    size = len(kernel)
    rows = sum(kernel[i] * image[i : image.shape[0] - size + 1 + i] for i in range(size))
    return sum(kernel[i] * rows[:, i : rows.shape[1] - size + 1 + i] for i in range(size))
