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
from semcom.common.data.scenes import generate_scene
from semcom.common.images import encode_png
from semcom.common.pb import transmitter_pb2, transmitter_pb2_grpc
from semcom.common.rpc import sync_channel
from semcom.receiver.pipeline import decode_frame
from semcom.transmitter import pipeline

from .services import start_processes


def bench_pipeline(size: tuple[int, int] = (64, 64), repeats: int = 200, warmup: int = 20,
                   codec: str = "linear_analog", snr_db: float = 10.0) -> dict[str, float]:
    image = encode_png(generate_scene(*size, seed=0)[0])
    emulator = ChannelEmulator(ChannelConfig(snr_db=snr_db, seed=0))

    def in_process() -> None:
        encoded = pipeline.encode(image, codec, 0.0, max_pixels=size[0] * size[1])
        reconstruction = decode_frame(emulator.apply(encoded.frame)[0])
        pipeline.quality(encoded.image, reconstruction)
        encode_png(reconstruction)

    local = _time(in_process, repeats, warmup, "in-process")
    with tempfile.TemporaryDirectory() as logs, start_processes(
        Path(logs), channel_args=("--snr-db", str(snr_db), "--seed", "0")
    ) as services, sync_channel(services.transmitter) as channel:
        stub = transmitter_pb2_grpc.TransmitterStub(channel)
        request = transmitter_pb2.TransmitRequest(image=image, codec=codec)
        stages: list[transmitter_pb2.StageTimings] = []
        remote = _time(lambda: stages.append(stub.Transmit(request, timeout=30).timings), repeats, warmup, "via gRPC")
    stage_medians = {
        name: statistics.median(getattr(t, name) for t in stages[warmup:])
        for name in ("encode_seconds", "channel_seconds", "decode_seconds", "quality_seconds", "end_to_end_seconds")
    }
    return {"in_process_seconds": local, "grpc_seconds": remote, **stage_medians}


def report(results: dict[str, float], size: tuple[int, int], repeats: int) -> str:
    local, remote = results["in_process_seconds"], results["grpc_seconds"]
    overhead = remote - local
    lines = [
        f"one {size[0]}x{size[1]} image, linear_analog codec, AWGN; medians of {repeats} sequential calls",
        f"  in-process pipeline (same code, no gRPC):       {1000 * local:8.2f} ms",
        f"  client -> transmitter -> channel -> receiver:   {1000 * remote:8.2f} ms",
        f"    of which encode / channel / decode / quality: {1000 * results['encode_seconds']:.2f} / "
        f"{1000 * results['channel_seconds']:.2f} / {1000 * results['decode_seconds']:.2f} / "
        f"{1000 * results['quality_seconds']:.2f} ms",
        f"  gRPC + serialization overhead:                  {1000 * overhead:8.2f} ms "
        f"({overhead / remote:.0%} of end to end; {remote / local:.2f}x the in-process time)",
    ]
    return "\n".join(lines)


def _time(function, repeats: int, warmup: int, label: str) -> float:
    samples = []
    for i in tqdm(range(warmup + repeats), desc=label, unit="call", leave=False):
        start = time.perf_counter()
        function()
        if i >= warmup:
            samples.append(time.perf_counter() - start)
    return float(np.median(samples))
