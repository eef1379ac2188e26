"""The evaluation sweep on a tiny configuration."""

import math

import pytest
from PIL import Image

from semcom.tools.evaluation.sweep import CONTACT_WIDTH, Samples, markdown_table, run_sweep, write_outputs

SAMPLES = Samples()  # the module's sweep fills it


@pytest.fixture(scope="module")
def points():
    return run_sweep(["linear_analog", "deep_jscc", "webp", "semantic_map"], ["awgn", "rayleigh"], [0.0, 20.0],
                     count=4, seed=3, samples=SAMPLES)


def test_every_codec_channel_and_snr_is_measured(points):
    assert len(points) == 4 * 2 * 2
    for point in points:
        assert point.images == 4 and 0 <= point.miou <= 1
        if point.codec == "semantic_map":
            assert math.isnan(point.psnr_db) and point.channel_uses == 1024
        else:
            assert math.isfinite(point.psnr_db) and 0 < point.ssim <= 1
    linear = {(p.channel, p.snr_db): p for p in points if p.codec == "linear_analog"}
    # At k/n = 0.05 linear analog is mostly limited by its 4.4x downsampling; noise still costs > 3 dB at 0 dB.
    assert linear[("awgn", 20.0)].psnr_db > linear[("awgn", 0.0)].psnr_db + 3
    assert linear[("awgn", 0.0)].bandwidth_ratio <= 1280 / (64 * 128 * 3) + 1e-9  # equal bandwidth


def test_outputs_are_written(points, tmp_path):
    paths = write_outputs(points, tmp_path)
    assert [p.name for p in paths] == ["results.csv", "results.md", "psnr_miou_vs_snr.png"]
    assert write_outputs(points, tmp_path, SAMPLES)[-1].name == "contact_sheet.png"
    # A row per codec, channel and k/n sending images (semantic_map sends labels): 3 x 2; the original and 2 SNRs
    with Image.open(tmp_path / "contact_sheet.png") as sheet:
        assert sheet.width >= 3 * CONTACT_WIDTH and sheet.height >= 6 * CONTACT_WIDTH // 2
    assert len(SAMPLES.reconstructions) == 3 * 2 * 2 and SAMPLES.original.shape == (64, 128, 3)
    assert (tmp_path / "results.csv").read_text().count("\n") == len(points) + 1
    assert "| semantic_map | awgn |" in markdown_table(points)
    assert (tmp_path / "psnr_miou_vs_snr.png").stat().st_size > 10_000


def test_via_grpc_gives_the_same_numbers_as_in_process(services):
    """Same seed, same frames in the same order: the services reproduce the in-process sweep."""
    kwargs = dict(codec_ids=["linear_analog"], channels=["rayleigh"], snrs_db=[5.0], count=3, seed=7)
    local = run_sweep(**kwargs)[0]
    remote = run_sweep(**kwargs, via_grpc=services.address(services.transmitter),
                       channel_address=services.address(services.channel))[0]
    assert remote.psnr_db == pytest.approx(local.psnr_db, abs=1e-6)
    assert remote.miou == pytest.approx(local.miou, abs=1e-9)


def test_adjustable_codecs_are_swept_over_several_bandwidth_ratios():
    points = run_sweep(["linear_analog", "deep_jscc"], ["awgn"], [10.0], count=2, bandwidth_ratios=(0.02, 0.125))
    ratios = sorted(p.bandwidth_ratio for p in points if p.codec == "linear_analog")
    assert len(points) == 4 and ratios[0] <= 0.02 and 0.1 < ratios[1] <= 0.125
    for codec in ("linear_analog", "deep_jscc"):
        swept = sorted((p for p in points if p.codec == codec), key=lambda p: p.bandwidth_ratio)
        assert swept[1].psnr_db > swept[0].psnr_db, codec  # more bandwidth, a better image
    assert markdown_table(points).count("| linear_analog | awgn |") == 2


def test_each_adjustable_codec_is_swept_at_the_ratios_it_sends(capsys):
    points = run_sweep(["latent_diffusion", "linear_analog"], ["awgn"], [10.0], count=1, bandwidth_ratios=(1 / 6, 1 / 48))
    assert sorted((p.codec, round(1 / p.requested_ratio)) for p in points) == [
        ("latent_diffusion", 48), ("linear_analog", 6), ("linear_analog", 48)]
    assert "latent_diffusion does not send k/n 0.1667: skipped there" in capsys.readouterr().err
