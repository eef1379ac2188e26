import math

import numpy as np
import pytest

from semcom.common.data.scenes import generate_scene
from semcom.common.quality import ms_ssim, psnr_db, ssim


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


@pytest.mark.parametrize("distortion", ["noise", "blur", "shift"])
def test_ms_ssim_agrees_with_a_reference_implementation(distortion):
    # pytorch-msssim (Po-Hsun Su's port of Wang et al.'s MS-SSIM): it averages the colour channels after
    # the product over scales, we before it; the two agree to well under 1e-3 on images whose sides
    # halve evenly (it zero-pads odd sides, we crop them).
    import torch
    from pytorch_msssim import ms_ssim as reference_ms_ssim

    image = generate_scene(192, 256, seed=4)[0]
    rng = np.random.default_rng(5)
    distorted = {
        "noise": lambda: np.clip(image + rng.normal(0, 25, image.shape), 0, 255),
        "blur": lambda: sum(np.roll(image.astype(float), shift, axis=(0, 1)) for shift in (-2, 0, 2)) / 3,
        "shift": lambda: np.roll(image, 3, axis=1),
    }[distortion]().astype(np.uint8)

    def tensor(x):
        return torch.from_numpy(x).permute(2, 0, 1)[None].double()

    expected = float(reference_ms_ssim(tensor(image), tensor(distorted), data_range=255))
    assert 0.2 < expected < 0.99
    assert ms_ssim(image, distorted) == pytest.approx(expected, abs=1e-3)
