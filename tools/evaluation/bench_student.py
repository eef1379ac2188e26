"""`semcom bench student`: the distilled one-step student (`--decoder student`) against the 5-step diffusion
decoder it replaces and the teacher it was distilled from (10 DDIM steps, guidance 1.5), measured in one run
(`semcom bench` names the CPU first).

* Whole decode of a frame (map and latent decoders, then the UNet), semantic and gesco frames at 10 dB AWGN,
  per precision (fp32, int8, and bf16 where the CPU has it natively): ms per frame and the ratio.
* Quality over the sweep (semantic and gesco, AWGN and Rayleigh, -5..20 dB, validation scenes): PSNR,
  SSIM, re-segmented mIoU and, with the Inception network installed, KID on 64x64 patches.

Decoders are interleaved, so a noisy machine slows them alike; latencies are medians of repeats.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable

import numpy as np
import torch

from semcom.channel_emulator.emulator import ChannelConfig
from semcom.common import codecs
from semcom.common.data.datasets import SyntheticScenes, materialize
from semcom.common.models import precision
from semcom.common.models.runtime import DecoderRuntime
from semcom.common.models.sampling import SamplerSettings

from ..chain import Chain
from ..training.teacher_store import TEACHER_SAMPLER
from . import perceptual, sweep

CODECS = ("semantic", "gesco")
# What is compared, by name: the served decoder, its student, and the student's teacher (quality only).
DECODERS = {"5-step": ("diffusion", SamplerSettings()), "student": ("student", SamplerSettings()),
            "teacher": ("diffusion", TEACHER_SAMPLER)}


def bench_student(count: int = 8, quality_count: int = 16, repeats: int = 3,
                  precisions: tuple[str, ...] | None = None, progress: Callable[[str], None] = print) -> str:
    precisions = precisions or precision.runnable()
    for name in precisions:
        if reason := precision.supported(name):
            raise precision.Unsupported(reason.replace("--precision", "--precisions", 1))
        _runtime("student", name).noise_predictor()  # the student (and its int8) must be there: say so now
    try:
        perceptual.inception_path()
        kid = True
    except perceptual.InceptionMissing:
        kid = False
    progress(f"precisions {', '.join(precisions)}; KID {'on' if kid else 'off (`semcom data inception`)'}")
    images, _ = materialize(SyntheticScenes("val", count))
    received = {codec_id: [Chain(ChannelConfig(snr_db=10.0, seed=i)).transmit(
        codecs.get(codec_id).encode(image, codecs.get(codec_id).default_bandwidth_ratio, f"bench-{i}"))
        for i, image in enumerate(images)] for codec_id in CODECS}
    progress("timing whole decodes ...")
    seconds: dict[tuple, list[float]] = {}
    for _ in range(repeats):
        for name in precisions:
            for decoder in ("5-step", "student"):
                chain = Chain(runtime=_runtime(decoder, name))
                for codec_id, frames in received.items():
                    chain.decode(frames[0])  # warm
                    start = time.perf_counter()
                    for frame in frames:
                        chain.decode(frame)
                    elapsed = (time.perf_counter() - start) / len(frames)
                    seconds.setdefault((name, decoder, codec_id), []).append(elapsed)
    frame_ms = {key: 1000 * statistics.median(values) for key, values in seconds.items()}
    quality = {}
    if quality_count:  # 0: latency alone
        for decoder in DECODERS:
            progress(f"quality over the sweep: {decoder} ...")
            quality[decoder] = sweep.run_sweep(list(CODECS), count=quality_count, runtime=_runtime(decoder, "fp32"),
                                               kid=kid)
    return _render(frame_ms, quality, precisions, count, quality_count, kid)


def _runtime(decoder: str, name: str) -> DecoderRuntime:
    diffusion_decoder, sampler = DECODERS[decoder]
    return DecoderRuntime(name, sampler, diffusion_decoder=diffusion_decoder)


def _render(frame_ms, quality, precisions, count, quality_count, kid) -> str:
    lines = [f"Student benchmark: the one-step student against the 5-step diffusion decoder, 64x128, "
             f"{torch.get_num_threads()} threads; ratios measured in this run.", "",
             f"whole decode of one frame (map/latent decoders + the UNet, condition cached), {count} frames at 10 dB "
             "AWGN:", f"  {'':<6} {'codec':<9} {'5-step ms':>10} {'student ms':>11} {'speed-up':>9}"]
    for name in precisions:
        for codec_id in CODECS:
            five, student = frame_ms[name, "5-step", codec_id], frame_ms[name, "student", codec_id]
            lines.append(f"  {name:<6} {codec_id:<9} {five:10.1f} {student:11.1f} {five / student:8.2f}x")
    if not quality:
        return "\n".join(lines)
    lines += ["", f"quality over the sweep at fp32 ({quality_count} validation scenes per point, AWGN and Rayleigh, "
                  f"-5..20 dB{', KID x1000 on 64x64 patches' if kid else ''}):"]
    metrics = ("psnr_db", "ssim", "miou") + (("kid",) if kid else ())
    for codec_id in CODECS:
        reference = [p for p in quality["5-step"] if p.codec == codec_id]
        for decoder in ("student", "teacher"):
            points = [p for p in quality[decoder] if p.codec == codec_id]
            diffs = {m: [getattr(p, m) - getattr(q, m) for p, q in zip(points, reference)] for m in metrics}
            worst = min(range(len(points)), key=lambda i: diffs["psnr_db"][i])
            text = (f"  {codec_id} {decoder} vs 5-step: mean PSNR {np.mean(diffs['psnr_db']):+.2f} dB (worst "
                    f"{diffs['psnr_db'][worst]:+.2f}, {points[worst].channel} {points[worst].snr_db:g} dB), SSIM "
                    f"{np.mean(diffs['ssim']):+.4f}, mIoU {np.mean(diffs['miou']):+.4f} "
                    f"(worst {min(diffs['miou']):+.4f})")
            if kid:
                ratios = [p.kid / q.kid for p, q in zip(points, reference)]
                text += f", KID {np.mean(ratios):.2f}x (worst {max(ratios):.2f}x)"
            lines.append(text)
    header = "  ".join(f"{'PSNR ' + d:>13} {'mIoU ' + d:>13}" + (f" {'KID ' + d:>12}" if kid else "") for d in DECODERS)
    lines += ["", f"  {'codec':<9} {'channel':<9} {'SNR':>4}  {header}"]
    for i, reference in enumerate(quality["5-step"]):
        cells = "  ".join(f"{quality[d][i].psnr_db:13.2f} {quality[d][i].miou:13.3f}"
                          + (f" {1000 * quality[d][i].kid:12.1f}" if kid else "") for d in DECODERS)
        lines.append(f"  {reference.codec:<9} {reference.channel:<9} {reference.snr_db:4g}  {cells}")
    return "\n".join(lines)
