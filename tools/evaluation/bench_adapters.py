"""`semcom bench adapters`: what condition-aware adapters cost the receiver, measured in one run (`semcom
bench` names the CPU first).

Per adapted codec (deep_jscc on a photo at its own size, semantic_map and semantic on scenes) and precision
(fp32, int8, and bf16 where the CPU has it natively): the median decode time of a plain frame and of the same
image sent with adapters, their ratio, and the one-off cost of a band's first frame. At fp32 and bf16 an adapted
frame runs its band's merged decoder (made on the band's first frame); at int8 the decoder's ONNX graph with the
low-rank branch beside the base weights, fed the band. Plain and adapted decodes are interleaved, so a noisy
machine slows them alike.
"""

from __future__ import annotations

import statistics
import time

import torch

from semcom.channel_emulator.emulator import ChannelConfig
from semcom.common.codecs.base import resize
from semcom.common.data import photos
from semcom.common.data.datasets import SyntheticScenes, materialize
from semcom.common.models import adapters, precision, store
from semcom.common.models.runtime import DecoderRuntime

from ..chain import Chain

CODECS = ("deep_jscc", "semantic_map", "semantic")
PHOTO_SIZE = (384, 512)  # deep_jscc's frame: a photo of the held-out Kodak set's size
SNR_DB = 10.0


def bench_adapters(repeats: int = 20, precisions: tuple[str, ...] | None = None) -> str:
    precisions = precisions or precision.runnable()
    for name in precisions:
        if reason := precision.supported(name):
            raise precision.Unsupported(reason.replace("--precision", "--precisions", 1))
    scene = materialize(SyntheticScenes("val", 1))[0][0]
    photo = photos.load_photos("kodak")[0] if not photos.missing() else resize(scene, *PHOTO_SIZE)
    rows = []
    for name in precisions:
        runtime = DecoderRuntime(name)
        for codec_id in CODECS:
            image = photo if codec_id == "deep_jscc" else scene
            chain = Chain(ChannelConfig(snr_db=SNR_DB, seed=1), runtime=runtime)
            plain = chain.transmit(chain.encode(image, codec_id, design_snr_db=SNR_DB))
            adapted = chain.transmit(chain.encode(image, codec_id, design_snr_db=SNR_DB, adapters=True))
            for model in adapters.ADAPTED_MODELS:  # every band cold: the first adapted frame merges its decoders
                adapters.load(model).forget_merged()
            chain.decode(plain)  # warm
            first = _seconds(chain, adapted)
            times = {"plain": [], "adapted": []}
            for _ in range(repeats):
                times["plain"].append(_seconds(chain, plain))
                times["adapted"].append(_seconds(chain, adapted))
            plain_ms, adapted_ms = (1000 * statistics.median(times[key]) for key in ("plain", "adapted"))
            rows.append((name, codec_id, f"{image.shape[0]}x{image.shape[1]}", plain_ms, adapted_ms,
                         1000 * first - adapted_ms))
    lines = [f"Adapter benchmark: decode of one frame at {SNR_DB:g} dB AWGN, plain vs sent with adapters (fp32/bf16: "
             f"the band's merged decoder; int8: the low-rank branch in the ONNX graph), medians of {repeats}, "
             f"{torch.get_num_threads()} threads; ratios measured in this "
             "run.", "",
             f"  {'':<5} {'codec':<13} {'size':<8} {'plain ms':>9} {'adapted ms':>11} {'overhead':>9} "
             f"{'first frame of a band: + ms':>28}"]
    for name, codec_id, size, plain_ms, adapted_ms, merge_ms in rows:
        lines.append(f"  {name:<5} {codec_id:<13} {size:<8} {plain_ms:9.2f} {adapted_ms:11.2f} "
                     f"{100 * (adapted_ms / plain_ms - 1):+8.1f}% {merge_ms:28.1f}")
    sizes = {model: sum(p.numel() * p.element_size() for p in store.load(model)["decoder"].parameters())
             for model in adapters.ADAPTED_MODELS}  # a merged decoder is the base decoder's size
    lines += ["", "memory: each band served keeps a merged decoder (at most "
              f"{adapters.MERGED_CACHE} per model): " + ", ".join(f"{model} {size / 2**20:.2f} MiB"
                                                                  for model, size in sizes.items())]
    return "\n".join(lines)


def _seconds(chain: Chain, frame) -> float:
    start = time.perf_counter()
    chain.decode(frame)
    return time.perf_counter() - start
