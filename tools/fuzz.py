"""`semcom fuzz`: a seeded fuzzer against the three services on loopback.

It starts the services as processes of their own, then runs `passes` passes of the same seeded
inputs: image files mutated (bytes flipped, cut, repeated, chunks spliced) sent to the
transmitter, and valid frames mutated (bytes of the serialized message flipped or cut, header
fields and block sizes changed) sent to the channel emulator (Apply) and the receiver (Decode).
Every LARGE_EVERY-th input is a large one instead, in turn: a 12 MiB frame (a 1024x1024 image as
linear analog symbols) to Apply, the same frame through the channel to Decode, and a request past
the services' 64 MiB message limit: what memory does under large frames counts in the RSS check.
Per pass it counts the status codes, the calls that did not answer within their deadline (hangs),
and each service's resident memory (VmRSS) afterwards. Any INTERNAL or UNKNOWN, any hang, or RSS
growing past --rss-limit times the first pass's is a failure (exit 1).
"""

from __future__ import annotations

import collections
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import grpc
import numpy as np

from semcom.channel_emulator.emulator import ChannelConfig
from semcom.common import codecs
from semcom.common.data import sample_images
from semcom.common.data.images import decode_image
from semcom.common.wire import frames

from .chain import Chain
from .services import start_processes

BAD_CODES = ("INTERNAL", "UNKNOWN")
LARGE_EVERY = 30
LARGE_SIDE = 1024  # a 1024x1024 image at k/n 0.5: 1.6 M symbols, 12 MiB on the wire


@dataclass
class PassReport:
    codes: collections.Counter = field(default_factory=collections.Counter)
    hangs: int = 0
    rss: dict[str, int] = field(default_factory=dict)  # bytes, after the pass


def mutate(data: bytes, rng: np.random.Generator) -> bytes:
    """One of: flip a few bytes, cut the tail, repeat a stretch, splice a random run in."""
    raw = bytearray(data)
    kind = rng.integers(4)
    if kind == 0 and raw:
        for index in rng.integers(0, len(raw), size=int(rng.integers(1, 9))):
            raw[index] ^= int(rng.integers(1, 256))
    elif kind == 1:
        raw = raw[:int(rng.integers(0, max(1, len(raw))))]
    elif kind == 2 and raw:
        start = int(rng.integers(len(raw)))
        raw[start:start] = raw[start:start + int(rng.integers(1, 4096))] * int(rng.integers(2, 8))
    else:
        start = int(rng.integers(len(raw) + 1))
        raw[start:start] = rng.integers(0, 256, size=int(rng.integers(1, 512)), dtype=np.uint8).tobytes()
    return bytes(raw)


def seeded_inputs(count: int, seed: int) -> list[tuple[str, bytes]]:
    """(method, request bytes): mutated TransmitRequests, Apply and Decode requests, the same for a seed."""
    from semcom.common.wire.pb import channel_emulator_pb2, receiver_pb2, transmitter_pb2

    rng = np.random.default_rng(seed)
    images = [path.read_bytes() for path in sample_images()]
    valid_frames = []
    for codec_id in ("linear_analog", "deep_jscc", "jpeg", "semantic_map"):
        codec = codecs.get(codec_id)
        frame = codec.encode(decode_image(images[0]), codec.default_bandwidth_ratio, f"fuzz-{codec_id}")
        valid_frames.append(frames.to_proto(Chain(ChannelConfig(snr_db=20.0, seed=seed)).transmit(frame)))
    large = _large_inputs(seed)
    inputs = []
    for index in range(count):
        which = index % 3
        if index % LARGE_EVERY == LARGE_EVERY - 1:
            inputs.append(large[index // LARGE_EVERY % len(large)])
        elif which == 0:
            request = transmitter_pb2.TransmitRequest(image=mutate(images[index % len(images)], rng),
                                                      codec=("linear_analog", "jpeg", "deep_jscc")[index // 3 % 3])
            inputs.append(("/semcom.v1.Transmitter/Transmit", request.SerializeToString()))
        else:
            frame = valid_frames[int(rng.integers(len(valid_frames)))]
            wrapped = (channel_emulator_pb2.ApplyRequest(frame=frame) if which == 1
                       else receiver_pb2.DecodeRequest(frame=frame)).SerializeToString()
            method = "/semcom.v1.ChannelEmulator/Apply" if which == 1 else "/semcom.v1.Receiver/Decode"
            inputs.append((method, mutate(wrapped, rng)))
    return inputs


def _large_inputs(seed: int) -> list[tuple[str, bytes]]:
    """(method, request bytes): a large frame to Apply, the same frame after the channel to Decode, and an
    image past the message limit (RESOURCE_EXHAUSTED before anything is parsed)."""
    from semcom.common.serving.rpc import DEFAULT_MAX_MESSAGE_BYTES
    from semcom.common.wire.pb import channel_emulator_pb2, receiver_pb2, transmitter_pb2

    image = np.random.default_rng(seed).integers(0, 256, (LARGE_SIDE, LARGE_SIDE, 3), dtype=np.uint8)
    frame = codecs.get("linear_analog").encode(image, 0.5, "fuzz-large")
    received = frames.to_proto(Chain(ChannelConfig(snr_db=20.0, seed=seed)).transmit(frame))
    too_large = transmitter_pb2.TransmitRequest(image=bytes(DEFAULT_MAX_MESSAGE_BYTES + 1), codec="jpeg")
    return [("/semcom.v1.ChannelEmulator/Apply",
             channel_emulator_pb2.ApplyRequest(frame=frames.to_proto(frame)).SerializeToString()),
            ("/semcom.v1.Receiver/Decode", receiver_pb2.DecodeRequest(frame=received).SerializeToString()),
            ("/semcom.v1.Transmitter/Transmit", too_large.SerializeToString())]


def current_rss(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError(f"no VmRSS for process {pid}")


def run_fuzz(count: int = 300, passes: int = 3, seed: int = 0, timeout: float = 20.0,
             progress=None) -> list[PassReport]:
    inputs = seeded_inputs(count, seed)
    reports = []
    with tempfile.TemporaryDirectory() as logs, start_processes(Path(logs)) as services:
        addresses = {"Transmitter": services.transmitter, "ChannelEmulator": services.channel,
                     "Receiver": services.processes["receiver"].address}
        channels = {name: grpc.insecure_channel(address) for name, address in addresses.items()}
        try:
            for number in range(passes):
                report = PassReport()
                for method, payload in inputs:
                    service = method.split("/")[1].split(".")[-1]
                    call = channels[service].unary_unary(method, request_serializer=lambda raw: raw,
                                                         response_deserializer=lambda raw: raw)
                    try:
                        call(payload, timeout=timeout)
                        report.codes["OK"] += 1
                    except grpc.RpcError as error:
                        report.codes[error.code().name] += 1
                        report.hangs += error.code() == grpc.StatusCode.DEADLINE_EXCEEDED
                report.rss = {name: current_rss(process.process.pid) for name, process in services.processes.items()}
                reports.append(report)
                if progress:
                    progress(number, report)
        finally:
            for channel in channels.values():
                channel.close()
    return reports


def verdict(reports: list[PassReport], rss_limit: float) -> list[str]:
    """What failed: INTERNAL/UNKNOWN answers, hangs, memory growth past rss_limit x the first pass."""
    failures = []
    for number, report in enumerate(reports):
        bad = sum(report.codes[code] for code in BAD_CODES)
        if bad:
            failures.append(f"pass {number + 1}: {bad} INTERNAL/UNKNOWN answers")
        if report.hangs:
            failures.append(f"pass {number + 1}: {report.hangs} calls past their deadline")
    for name, first in reports[0].rss.items():
        growth = reports[-1].rss[name] / first
        if growth > rss_limit:
            failures.append(f"{name}: RSS grew {growth:.2f}x from the first pass (limit {rss_limit:g}x)")
    return failures
