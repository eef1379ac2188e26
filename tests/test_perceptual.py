"""KID and FID (tools/evaluation/perceptual.py): the statistics on features drawn from known
distributions (fixed seeds), then the installed FID Inception network on real photo patches."""

from __future__ import annotations

import numpy as np
import pytest

from semcom.common.data import photos
from semcom.tools.evaluation import perceptual


def test_kid_is_unbiased_near_zero_for_one_distribution_and_grows_with_the_difference():
    rng = np.random.default_rng(0)
    same = [perceptual.kid(rng.normal(size=(60, 64)), rng.normal(size=(60, 64))) for _ in range(20)]
    assert abs(np.mean(same)) < 3 * np.std(same) / np.sqrt(len(same))  # unbiased: its mean is 0
    shifted = [perceptual.kid(rng.normal(size=(60, 64)), rng.normal(0.3, 1, size=(60, 64))) for _ in range(20)]
    farther = [perceptual.kid(rng.normal(size=(60, 64)), rng.normal(0.6, 1, size=(60, 64))) for _ in range(20)]
    assert np.mean(same) < np.mean(shifted) < np.mean(farther)


def test_fid_is_zero_for_identical_sets_and_the_gaussian_formula_otherwise():
    rng = np.random.default_rng(1)
    a = rng.normal(size=(500, 4))
    assert perceptual.fid(a, a) == pytest.approx(0, abs=1e-9)
    b = rng.normal(size=(500, 4)) * 2 + 1  # cov 4I, mean 1: FID = |1|^2 d + tr(I + 4I - 2 * 2I) = 4 + 4
    expected = (np.sum((a.mean(0) - b.mean(0)) ** 2) + np.trace(np.cov(a.T)) + np.trace(np.cov(b.T))
                - 2 * np.trace(_sqrtm(np.cov(a.T) @ np.cov(b.T))))
    assert perceptual.fid(a, b) == pytest.approx(expected, rel=1e-6)
    assert perceptual.fid(a, b) == pytest.approx(8, rel=0.15)


def _sqrtm(matrix):
    from scipy.linalg import sqrtm

    return np.real(sqrtm(matrix))


def test_patches_tile_each_image_from_the_top_left():
    image = np.arange(300 * 520 * 3, dtype=np.uint32).reshape(300, 520, 3).astype(np.uint8)
    tiles = perceptual.patches([image])
    assert len(tiles) == 2 * 4 and all(t.shape == (128, 128, 3) for t in tiles)
    assert np.array_equal(tiles[5], image[128:256, 128:256])


def test_a_missing_network_names_the_command_that_installs_it(tmp_path):
    with pytest.raises(perceptual.InceptionMissing, match="semcom data inception"):
        perceptual.inception_path(tmp_path)


NOT_INSTALLED = photos.missing() or photos.missing(sources=(perceptual.INCEPTION,))


@pytest.mark.skipif(bool(NOT_INSTALLED), reason="the Kodak photos or the FID Inception network are not installed: "
                                                 "`semcom data photos` and `semcom data inception` (make test runs them)")
def test_kid_on_photo_patches_orders_distortions_by_strength():
    originals = perceptual.patches(photos.load_photos("kodak")[:2])
    rng = np.random.default_rng(2)

    def noisy(sigma):
        return [np.clip(p + rng.normal(0, sigma, p.shape), 0, 255).astype(np.uint8) for p in originals]

    reference = perceptual.features(originals)
    assert reference.shape == (24, 2048)
    light, heavy = (perceptual.kid(reference, perceptual.features(noisy(sigma))) for sigma in (4, 40))
    assert light < heavy and heavy > 0.01


@pytest.mark.skipif(bool(NOT_INSTALLED), reason="the Kodak photos or the FID Inception network are not installed")
def test_the_sweep_reports_kid_and_fid_on_photos_and_on_scenes(tmp_path):
    from semcom.tools.evaluation.sweep import markdown_table, run_sweep, write_outputs

    points = run_sweep(["deep_jscc"], ["awgn"], [-5.0, 20.0], count=1, bandwidth_ratios=(1 / 12,), data="kodak",
                       kid=True)
    assert all(np.isfinite(p.kid) and np.isfinite(p.fid) for p in points)
    assert points[0].kid > points[1].kid  # the worse channel, the farther from the photo
    assert "KID x 1000 / FID" in markdown_table(points)
    assert [path.name for path in write_outputs(points, tmp_path)][-1] == "psnr_vs_kid.png"
    assert (tmp_path / "psnr_vs_kid.png").stat().st_size > 10_000  # the perception-distortion plot
    scenes = run_sweep(["linear_analog"], ["awgn"], [-5.0, 20.0], count=2, kid=True)  # two 64x64 patches each
    assert scenes[0].kid > scenes[1].kid and all(np.isfinite(p.miou) for p in scenes)
