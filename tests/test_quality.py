import math

import numpy as np
import pytest

from semcom.common.quality import psnr_db, ssim


def image(seed=0, shape=(32, 48, 3)):
    return np.random.default_rng(seed).integers(0, 256, shape, dtype=np.uint8)


def test_psnr_of_identical_images_is_infinite_and_follows_the_formula():
    a = image()
    assert psnr_db(a, a) == math.inf
    b = a.astype(np.int16)
    b[::2] += np.where(b[::2] < 250, 5, -5)  # error of exactly 5 on half the rows
    mse = np.mean((b - a.astype(np.int16)) ** 2)
    assert psnr_db(a, b.astype(np.uint8)) == pytest.approx(10 * math.log10(255**2 / mse))


def test_ssim_is_one_for_identical_images_and_falls_with_noise():
    a = image(1)
    assert ssim(a, a) == pytest.approx(1.0)
    rng = np.random.default_rng(2)
    values = [ssim(a, np.clip(a + rng.normal(0, s, a.shape), 0, 255).astype(np.uint8)) for s in (5, 20, 60)]
    assert 1.0 > values[0] > values[1] > values[2] > 0.0


def test_ssim_is_symmetric_and_handles_images_smaller_than_the_window():
    a, b = image(3, (5, 8, 3)), image(4, (5, 8, 3))
    assert ssim(a, b) == pytest.approx(ssim(b, a))
    assert -1.0 <= ssim(a, b) <= 1.0


def test_ssim_matches_the_closed_form_for_constant_images():
    """For flat images only the luminance term remains: (2ab + C1)/(a^2 + b^2 + C1)."""
    a = np.full((16, 16, 3), 100, np.uint8)
    b = np.full((16, 16, 3), 120, np.uint8)
    c1 = (0.01 * 255) ** 2
    assert ssim(a, b) == pytest.approx((2 * 100 * 120 + c1) / (100**2 + 120**2 + c1))


def test_mismatched_shapes_are_an_error():
    with pytest.raises(ValueError, match="shape"):
        psnr_db(image(0, (4, 4, 3)), image(0, (4, 5, 3)))
