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
    return _ssim_terms(reference.astype(np.float64), test.astype(np.float64), window, sigma)[0]


MS_SSIM_WEIGHTS = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)
MS_SSIM_MIN_SIDE = 11 * 2 ** (len(MS_SSIM_WEIGHTS) - 1)  # the window must fit the coarsest scale


def ms_ssim(reference: np.ndarray, test: np.ndarray) -> float:
    """Multi-scale SSIM (Wang, Simoncelli, Bovik 2003), five scales, 2x2 average
    down-sampling; needs both sides >= 176 pixels (ValueError otherwise)."""
    _check_pair(reference, test)
    if min(reference.shape[:2]) < MS_SSIM_MIN_SIDE:
        raise ValueError(f"MS-SSIM needs images of at least {MS_SSIM_MIN_SIDE} px a side, got {reference.shape[:2]}")
    x, y = reference.astype(np.float64), test.astype(np.float64)
    value = 1.0
    for scale, weight in enumerate(MS_SSIM_WEIGHTS):
        full, contrast_structure = _ssim_terms(x, y, 11, 1.5)
        last = scale == len(MS_SSIM_WEIGHTS) - 1
        value *= max(full if last else contrast_structure, 0.0) ** weight
        x, y = _halve(x), _halve(y)
    return float(value)


def _halve(image: np.ndarray) -> np.ndarray:
    h, w = image.shape[0] // 2 * 2, image.shape[1] // 2 * 2
    image = image[:h, :w]
    return (image[0::2, 0::2] + image[1::2, 0::2] + image[0::2, 1::2] + image[1::2, 1::2]) / 4


def _ssim_terms(x: np.ndarray, y: np.ndarray, window: int, sigma: float) -> tuple[float, float]:
    """(mean SSIM, mean contrast-structure term) of float images [H, W, C]."""
    size = min(window, *x.shape[:2])
    size -= 1 - size % 2  # odd, so the window has a centre
    kernel = _gaussian_kernel(size, sigma)
    c1, c2 = (0.01 * _DATA_RANGE) ** 2, (0.03 * _DATA_RANGE) ** 2
    mu_x, mu_y = _filter(x, kernel), _filter(y, kernel)
    var_x = _filter(x * x, kernel) - mu_x**2
    var_y = _filter(y * y, kernel) - mu_y**2
    cov = _filter(x * y, kernel) - mu_x * mu_y
    contrast_structure = (2 * cov + c2) / (var_x + var_y + c2)
    ssim_map = (2 * mu_x * mu_y + c1) / (mu_x**2 + mu_y**2 + c1) * contrast_structure
    return float(ssim_map.mean()), float(contrast_structure.mean())


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


def confusion_matrix(labels: np.ndarray, predictions: np.ndarray, num_classes: int, ignore: int = 255) -> np.ndarray:
    """int64 [num_classes, num_classes]: rows true class, columns predicted; `ignore` pixels skipped."""
    valid = labels != ignore
    index = labels[valid].astype(np.int64) * num_classes + predictions[valid].astype(np.int64)
    return np.bincount(index, minlength=num_classes**2).reshape(num_classes, num_classes)


def mean_iou(confusion: np.ndarray) -> float:
    """Mean intersection over union over the classes that occur (in truth or prediction)."""
    intersection = np.diag(confusion).astype(np.float64)
    union = confusion.sum(0) + confusion.sum(1) - intersection
    present = union > 0
    return float(np.mean(intersection[present] / union[present])) if present.any() else math.nan


def pixel_accuracy(confusion: np.ndarray) -> float:
    return float(np.trace(confusion) / max(1, confusion.sum()))
