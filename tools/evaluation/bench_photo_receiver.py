"""`semcom bench receiver --codec latent_diffusion`: the photo codec's receiver at fp32, bf16 and
int8, measured in one run on the held-out Kodak photos at their own size (384x512).

* Each network the receiver runs (the head, one UNet step, the VAE decoder), on the inputs of a
  real received frame: latency (batch 1, median of repeats) and the bytes of its weights.
* The whole decode of a frame, per image over `count` photos at 1/48, 10 dB AWGN.
* Quality against fp32 over the Kodak sweep (1/48 and 1/96, AWGN 0 and 10 dB): PSNR, SSIM and KID
  per point (KID on 128x128 patches: `semcom data inception`).

Precisions are interleaved, so a noisy machine slows them alike. No serving figures: a frame takes
about a second, and the batching gains are the semantic benchmark's (`semcom bench receiver`).
"""

from __future__ import annotations

import statistics
from collections.abc import Callable

import numpy as np
import torch

from semcom.channel_emulator.emulator import ChannelConfig
from semcom.common.data.photos import load_photos
from semcom.common.models import precision, runtime, store
from semcom.common.models.runtime import DecoderRuntime

from ..chain import Chain
from ..quantize_photo import CODEC, RecordingRuntime
from . import perceptual, sweep, timing

RATIOS = (1 / 48, 1 / 96)
SNRS_DB = (0.0, 10.0)
PARTS = {("latent_diffusion", "head"): "head", ("latent_diffusion", "net"): "UNet step",
         ("photo_vae", "decoder"): "VAE decoder"}


def bench_photo_receiver(count: int = 5, quality_count: int = 5, repeats: int = 5,
                         progress: Callable[[str], None] = print, precisions: tuple[str, ...] | None = None) -> str:
    precisions = precisions or precision.runnable()
    if not 1 <= count <= 5 or not 1 <= quality_count <= 5:
        raise ValueError(f"--count {count}, --quality-count {quality_count}: photos, 1 to 5 (the held-out Kodak ones)")
    for name in precisions:
        if reason := precision.supported(name):
            raise precision.Unsupported(reason.replace("--precision", "--precisions", 1))
    perceptual.inception_path()  # KID needs it: say so before minutes of measuring
    if "int8" in precisions:
        for model, part in runtime.PHOTO_PARTS:  # must be there: say so before minutes of measuring fp32
            runtime.load_part(model, part)
    photos = load_photos("kodak")[:count]
    received = [Chain(ChannelConfig(snr_db=10.0, seed=i)).transmit(
        Chain().encode(photo, CODEC, RATIOS[0], f"bench-{i}")) for i, photo in enumerate(photos)]
    progress("timing each network ...")
    recording = RecordingRuntime()
    Chain(runtime=recording).decode(received[0])
    part_ms = {key: _median_ms(repeats, precisions, lambda name, key=key: _part(name, key, recording.inputs[key][0]))
               for key in PARTS}
    progress("timing whole decodes ...")
    decode_ms = {name: ms / len(received) for name, ms in
                 _median_ms(max(repeats // 2, 1), precisions, lambda name: _decode_all(name, received)).items()}
    progress("quality over the Kodak sweep ...")
    quality = {}
    for name in precisions:
        progress(f"  sweep at {name}")
        quality[name] = sweep.run_sweep([CODEC], channels=("awgn",), snrs_db=SNRS_DB, count=quality_count,
                                        bandwidth_ratios=RATIOS, runtime=DecoderRuntime(name), data="kodak", kid=True)
    return _render(part_ms, decode_ms, quality, photos[0].shape, count, quality_count, precisions)


def _part(name: str, key: tuple[str, str], inputs: tuple) -> Callable[[], object]:
    network = DecoderRuntime(name).network(*key)
    network(*inputs)  # untimed: first-call allocations, the previous precision's threads
    return lambda: network(*inputs)


def _decode_all(name: str, received: list) -> Callable[[], object]:
    chain = Chain(runtime=DecoderRuntime(name))
    chain.decode(received[0])  # untimed, as _part
    return lambda: [chain.decode(frame) for frame in received]


def _median_ms(repeats: int, precisions: tuple[str, ...], prepare: Callable[[str], Callable]) -> dict[str, float]:
    """Median ms of each precision's call, the precisions interleaved within each repeat."""
    calls = {name: prepare(name) for name in precisions}
    seconds: dict[str, list[float]] = {}
    for _ in range(repeats):
        for name, call in calls.items():
            seconds.setdefault(name, []).append(timing.seconds(call))
    return {name: 1000 * statistics.median(values) for name, values in seconds.items()}


def _weight_bytes(name: str, key: tuple[str, str]) -> int:
    if name == "int8":
        return runtime.load_part(*key).weight_bytes
    return sum(p.numel() * p.element_size() for p in store.load(key[0])[key[1]].parameters())  # bf16: fp32's


def _render(part_ms, decode_ms, quality, shape, count, quality_count, precisions) -> str:
    fp32 = "fp32"
    lines = [f"Receiver benchmark: latent_diffusion, 5 DDIM steps, Kodak {shape[0]}x{shape[1]}, "
             f"{torch.get_num_threads()} threads; ratios are to fp32, measured in this run.", "",
             "each network on a received frame's inputs (1/48, 10 dB AWGN), batch 1:",
             f"  {'network':<12} {'precision':<9} {'ms':>8} {'speed-up':>8} {'weight bytes':>13} {'of fp32':>7}"]
    for key, label in PARTS.items():
        for name in precisions:
            size, reference = _weight_bytes(name, key), _weight_bytes(fp32, key)
            kind = "" if name != "int8" or runtime.PHOTO_PARTS[key] else " (float ONNX)"
            lines.append(f"  {label:<12} {name:<9} {part_ms[key][name]:8.1f} "
                         f"{part_ms[key][fp32] / part_ms[key][name]:7.2f}x {size:13,d} {size / reference:7.1%}{kind}")
    lines += ["", f"whole decode of one frame (head, 5 steps, VAE decoder), {count} photos at 1/48, 10 dB AWGN:"]
    lines += [f"  {name:<6} {decode_ms[name]:8.1f} ms/image  {decode_ms[fp32] / decode_ms[name]:5.2f}x"
              for name in precisions]
    lines += ["", f"quality against fp32 over the Kodak sweep ({quality_count} photos per point, AWGN):",
              f"  {'k/n':<6} {'SNR':>4}  " + "  ".join(f"{'PSNR ' + n:>10} {'SSIM ' + n:>10} {'KIDx1e3 ' + n:>13}"
                                                      for n in precisions)]
    for i, reference in enumerate(quality[fp32]):
        cells = "  ".join(f"{quality[n][i].psnr_db:10.2f} {quality[n][i].ssim:10.4f} {1000 * quality[n][i].kid:13.1f}"
                          for n in precisions)
        lines.append(f"  1/{round(1 / reference.requested_ratio):<4} {reference.snr_db:4g}  {cells}")
    for name in precisions[1:]:
        psnr = [p.psnr_db - q.psnr_db for p, q in zip(quality[name], quality[fp32])]
        kid = [p.kid / q.kid - 1 for p, q in zip(quality[name], quality[fp32])]
        lines.append(f"  {name}: mean PSNR {np.mean(psnr):+.3f} dB (worst {min(psnr):+.3f}), KID {np.mean(kid):+.1%} "
                     f"(worst {max(kid):+.1%}) of fp32's")
    return "\n".join(lines)
