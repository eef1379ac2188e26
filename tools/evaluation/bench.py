"""`semcom bench pipeline`: end-to-end latency of one image through the three
services, and how much of it is gRPC and serialization.

Both paths run the same encode, channel and decode code: once in this process
(no gRPC), once through the three services as separate processes on loopback.
The difference of the medians is the cost of the three gRPC hops (with
serialization and the transmitter's PNG of the reconstruction).
"""

from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
from tqdm import tqdm

from semcom.channel_emulator.emulator import ChannelConfig, ChannelEmulator
from semcom.common.data.images import encode_png
from semcom.common.data.scenes import generate_scene
from semcom.common.models import cpu
from semcom.common.models.runtime import DecoderRuntime
from semcom.common.models.sampling import SamplerSettings
from semcom.common.serving.rpc import sync_channel
from semcom.common.wire.pb import transmitter_pb2, transmitter_pb2_grpc
from semcom.transmitter import pipeline

from ..chain import Chain
from ..services import start_processes
from . import timing
from .timing import median_seconds


def bench_pipeline(size: tuple[int, int] = (64, 64), repeats: int = 200, warmup: int = 20,
                   codec: str = "linear_analog", snr_db: float = 10.0) -> dict[str, float]:
    image = encode_png(generate_scene(*size, seed=0)[0])
    chain = Chain(ChannelConfig(snr_db=snr_db, seed=0))

    def in_process() -> None:
        encoded = pipeline.encode(image, codec, 0.0, max_pixels=size[0] * size[1])
        reconstruction, _ = chain.decode(chain.transmit(encoded.frame))
        pipeline.quality(encoded.image, reconstruction)
        pipeline.semantic_fidelity(encoded.image, reconstruction, codec)  # the transmitter computes it too
        encode_png(reconstruction)

    local = median_seconds(in_process, repeats, warmup, "in-process")
    with tempfile.TemporaryDirectory() as logs, start_processes(
        Path(logs), channel_args=("--snr-db", str(snr_db), "--seed", "0")
    ) as services, sync_channel(services.transmitter) as channel:
        stub = transmitter_pb2_grpc.TransmitterStub(channel)
        # Full scoring, as the in-process figure does.
        request = transmitter_pb2.TransmitRequest(image=image, codec=codec, scoring=transmitter_pb2.SCORING_FULL)
        stages: list[transmitter_pb2.StageTimings] = []
        remote = median_seconds(lambda: stages.append(stub.Transmit(request, timeout=30).timings), repeats, warmup, "via gRPC")
    stage_medians = {
        name: statistics.median(getattr(t, name) for t in stages[warmup:])
        for name in ("encode_seconds", "channel_seconds", "decode_seconds", "quality_seconds", "end_to_end_seconds")
    }
    return {"in_process_seconds": local, "grpc_seconds": remote, **stage_medians}


def bench_photo(repeats: int = 10, codec: str = "deep_jscc", ratio: float = 1 / 12, snr_db: float = 10.0,
                precision: str = "auto", scale: int = 1, warmup: int = 2) -> str:
    """A 512x768 photo (times `scale` a side, bicubic) through the three services (separate processes):
    end-to-end latency, its stages, and each service's peak memory. The transmitter sends it with `codec`
    even where the photo is out of the codec's domain (--out-of-domain off): the figures are the codec's own."""
    from semcom.common.codecs.base import resize
    from semcom.common.data.photos import load_photo, photo_paths

    # building.jpg (600x868), centre-cut to 512x768, the full Kodak images' size (the held-out copies are
    # TID2013's, 384x512).
    source = next(path for path in photo_paths("train") if path.name == "opencv-building.jpg")
    photo = resize(load_photo(source)[44:556, 50:818], 512 * scale, 768 * scale)
    request = transmitter_pb2.TransmitRequest(image=encode_png(photo), codec=codec, bandwidth_ratio=ratio)
    with tempfile.TemporaryDirectory() as logs, start_processes(
        Path(logs), channel_args=("--snr-db", str(snr_db), "--seed", "0"), receiver_args=("--precision", precision),
        transmitter_args=("--out-of-domain", "off")
    ) as services, sync_channel(services.transmitter) as channel:
        stub = transmitter_pb2_grpc.TransmitterStub(channel)
        responses = []
        wall = median_seconds(lambda: responses.append(stub.Transmit(request, timeout=600)), repeats, warmup, "photo")
        memory = {name: timing.peak_rss(process.process.pid) for name, process in services.processes.items()}
    timed = responses[warmup:]
    stage = {name: 1000 * statistics.median(getattr(r.timings, name) for r in timed)
             for name in ("encode_seconds", "channel_seconds", "link_seconds", "decode_seconds", "quality_seconds",
                          "end_to_end_seconds", "overhead_seconds")}
    first = timed[0]
    return "\n".join([
        f"one {photo.shape[0]}x{photo.shape[1]} photo (opencv-doc building.jpg), {first.codec} at k/n = "
        f"{first.bandwidth_ratio:.4f} ({first.channel_uses} channel uses), AWGN {snr_db:g} dB, receiver "
        f"--precision {precision}; medians of {repeats} sequential calls through three service processes",
        f"  client wall time:          {1000 * wall:8.1f} ms   (PSNR {first.quality.psnr_db:.2f} dB, "
        f"SSIM {first.quality.ssim:.3f})",
        f"  transmitter end to end:    {stage['end_to_end_seconds']:8.1f} ms",
        "    encode {encode_seconds:.1f} / channel {channel_seconds:.1f} / link {link_seconds:.1f} / decode "
        "{decode_seconds:.1f} / quality (PSNR, SSIM, PNGs) {quality_seconds:.1f} / gRPC and the rest "
        "{overhead_seconds:.1f} ms".format(**stage),
        "  peak memory (VmHWM):       " + ", ".join(f"{name} {rss / 2**20:.0f} MiB" for name, rss in memory.items()),
    ])


def report(results: dict[str, float], size: tuple[int, int], repeats: int) -> str:
    local, remote = results["in_process_seconds"], results["grpc_seconds"]
    overhead = remote - local
    lines = [
        f"one {size[0]}x{size[1]} image, linear_analog codec, AWGN; medians of {repeats} sequential calls",
        f"  in-process pipeline (same code, no gRPC):       {1000 * local:8.2f} ms",
        f"  client -> transmitter -> channel -> receiver:   {1000 * remote:8.2f} ms",
        f"    of which encode / channel / decode / quality (PSNR, SSIM, mIoU): {1000 * results['encode_seconds']:.2f} / "
        f"{1000 * results['channel_seconds']:.2f} / {1000 * results['decode_seconds']:.2f} / "
        f"{1000 * results['quality_seconds']:.2f} ms",
        f"  gRPC + serialization overhead:                  {1000 * overhead:8.2f} ms "
        f"({overhead / remote:.0%} of end to end; {remote / local:.2f}x the in-process time)",
    ]
    return "\n".join(lines)


CHANNEL_MODELS = {
    "awgn": {"model": "awgn"},
    "rayleigh block": {"model": "rayleigh", "coherence_symbols": 0},
    "rayleigh fast": {"model": "rayleigh", "coherence_symbols": 1},
    "rician K=3, L=64": {"model": "rician", "k_factor": 3.0, "coherence_symbols": 64},
}


def bench_channel(repeats: int = 200, large_symbols: int = 1 << 20) -> str:
    """Emulator throughput in channel uses per second (in-process), and the
    latency the channel hop adds to a 64x64 frame (through the services)."""
    from semcom.common.wire import frames as frame_codec
    from semcom.common.wire.frames import Frame, SymbolBlock
    from semcom.common.wire.pb import channel_emulator_pb2, channel_emulator_pb2_grpc, receiver_pb2, receiver_pb2_grpc

    rng = np.random.default_rng(0)
    lines = [f"emulator throughput, in-process (median of {repeats // 10} frames):",
             f"  {'model':<18} {'64x64 frame':>22} {f'{large_symbols} symbols':>24}"]
    small = pipeline.encode(encode_png(generate_scene(64, 64, seed=0)[0]), "linear_analog", 0.0,
                            max_pixels=64 * 64).frame
    symbols = (rng.standard_normal(large_symbols) + 1j * rng.standard_normal(large_symbols)).astype(np.complex64)
    large = Frame("large", "linear_analog", 1, 1024, 1024, [SymbolBlock("image", symbols / np.sqrt(2))])
    for name, settings in CHANNEL_MODELS.items():
        emulator = ChannelEmulator(ChannelConfig(snr_db=10.0, seed=0, **settings))
        rates = []
        for frame in (small, large):
            seconds = median_seconds(lambda: emulator.apply(frame), max(5, repeats // 10), 2, name)
            rates.append(f"{frame.channel_uses / seconds / 1e6:8.1f} M uses/s")
        lines.append(f"  {name:<18} {rates[0]:>22} {rates[1]:>24}")

    message = frame_codec.to_proto(small)
    with tempfile.TemporaryDirectory() as logs, start_processes(Path(logs), channel_args=("--seed", "0")) as services:
        receiver_address = services.processes["receiver"].address
        with sync_channel(services.channel) as ch, sync_channel(receiver_address) as rx:
            channel_stub = channel_emulator_pb2_grpc.ChannelEmulatorStub(ch)
            receiver_stub = receiver_pb2_grpc.ReceiverStub(rx)
            noisy = channel_stub.Apply(channel_emulator_pb2.ApplyRequest(frame=message)).frame
            direct = median_seconds(lambda: receiver_stub.Decode(receiver_pb2.DecodeRequest(frame=noisy), timeout=10),
                           repeats, 20, "decode direct")
            through = median_seconds(lambda: channel_stub.Forward(channel_emulator_pb2.ForwardRequest(frame=message), timeout=10),
                            repeats, 20, "via channel")
    lines += [
        f"\nadded latency of the channel hop, one 64x64 frame ({small.channel_uses} symbols), AWGN, no link delay "
        f"(medians of {repeats}):",
        f"  client -> receiver Decode:                      {1000 * direct:7.2f} ms",
        f"  client -> channel Forward -> receiver Decode:   {1000 * through:7.2f} ms",
        f"  added by the channel emulator:                  {1000 * (through - direct):7.2f} ms "
        f"({through / direct:.2f}x)",
    ]
    return "\n".join(lines)


def bench_diffusion(steps_list=(5, 10, 20, 50), count: int = 8, snrs_db=(0.0, 10.0),
                    methods: tuple[str, ...] = ("ddim",)) -> str:
    """Quality and fp32 decode time of the semantic codec against the sampler and its steps (and the start
    from the channel)."""
    from semcom.common import codecs
    from semcom.common.data.datasets import SyntheticScenes, materialize
    from semcom.common.data.labels import NUM_TRAIN_IDS
    from semcom.common.quality import confusion_matrix, mean_iou, psnr_db

    images, labels = materialize(SyntheticScenes("val", count))
    codec, segmenter = codecs.get("semantic"), codecs.get("semantic_map")
    frames = {snr: [Chain(ChannelConfig(snr_db=snr, seed=i)).transmit(
        codec.encode(image, codec.default_bandwidth_ratio, f"bench-{i}")) for i, image in enumerate(images)]
        for snr in snrs_db}
    pure_noise_steps = steps_list[min(1, len(steps_list) - 1)]
    settings = [(method, steps, True) for method in methods for steps in steps_list] + \
               [(method, pure_noise_steps, False) for method in methods]
    header = "  ".join(f"PSNR@{s:g}dB  mIoU@{s:g}dB" for s in snrs_db)
    lines = [f"semantic codec, AWGN, {count} validation scenes, fp32, {cpu.detect().describe()}; "
             "start from the channel unless noted",
             f"  {'sampler, steps':<26} {header}  decode s/image"]
    for method, steps, from_channel in settings:
        sampler = SamplerSettings(steps=steps, method=method, start_from_channel=from_channel)
        chain = Chain(runtime=DecoderRuntime(sampler=sampler))
        cells, seconds = [], []
        for snr in snrs_db:
            confusion = np.zeros((NUM_TRAIN_IDS, NUM_TRAIN_IDS), np.int64)
            psnrs = []
            for frame, image, truth in tqdm(list(zip(frames[snr], images, labels)), leave=False,
                                            desc=f"{steps} steps {snr:g} dB"):
                start = time.perf_counter()
                output, _ = chain.decode(frame)
                seconds.append(time.perf_counter() - start)
                psnrs.append(psnr_db(image, output))
                confusion += confusion_matrix(truth, segmenter.segment(output), NUM_TRAIN_IDS)
            cells.append(f"{np.mean(psnrs):9.2f}  {mean_iou(confusion):9.3f}")
        name = f"{method} {steps}" + ("" if from_channel else " (from pure noise)")
        lines.append(f"  {name:<26} {'  '.join(cells)}  {np.median(seconds):8.2f}")
    return "\n".join(lines)
