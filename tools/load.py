"""`semcom load`: a bounded load client for a transmitter.

N concurrent workers send images (the bundled samples unless given) for at
most --duration seconds and --max-requests calls, optionally paced to --rate
calls per second in total, with a progress bar; then a report: throughput,
latency percentiles and errors by gRPC code. It refuses literal IP addresses
outside loopback: point it at 127.0.0.1, localhost or a compose service name.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import time
from collections import Counter
from dataclasses import dataclass, field

import grpc
import numpy as np
import uvloop
from tqdm import tqdm

from semcom.common.serving.rpc import aio_channel
from semcom.common.wire.pb import transmitter_pb2, transmitter_pb2_grpc
from semcom.transmitter.pipeline import SCORING_VALUES

MAX_DURATION_SECONDS = 24 * 3600
MAX_REQUESTS = 10_000_000


@dataclass
class LoadReport:
    duration_seconds: float
    latencies: list[float] = field(default_factory=list)
    errors: Counter = field(default_factory=Counter)

    @property
    def requests(self) -> int:
        return len(self.latencies) + sum(self.errors.values())

    def percentile_ms(self, q: float) -> float:
        return 1000 * float(np.percentile(self.latencies, q)) if self.latencies else float("nan")

    def render(self) -> str:
        ok = len(self.latencies)
        lines = [
            f"requests: {self.requests} in {self.duration_seconds:.1f} s, {ok} OK",
            f"throughput: {ok / max(self.duration_seconds, 1e-9):.1f} images/s",
            f"latency: p50 {self.percentile_ms(50):.1f} ms, p95 {self.percentile_ms(95):.1f} ms, "
            f"p99 {self.percentile_ms(99):.1f} ms",
            "errors: " + (", ".join(f"{code} {n}" for code, n in self.errors.most_common()) or "none"),
        ]
        return "\n".join(lines)


def check_target(address: str) -> None:
    """Allows loopback, host names (e.g. compose services) and nothing else literal."""
    host = address.rsplit(":", 1)[0].strip("[]")
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        if host in ("", "localhost"):
            return
        socket.getaddrinfo(host, None)  # a name must at least resolve (compose DNS)
        return
    if not ip.is_loopback:
        raise ValueError(f"--transmitter {address}: load is only sent to loopback or a compose service name")


def run_load(address: str, images: list[bytes], concurrency: int, duration: float, rate: float | None = None,
             max_requests: int = 1000, codec: str = "", timeout: float = 30.0, progress: bool = True,
             scoring: str = "", omit_images: bool = False) -> LoadReport:
    """scoring: one of transmitter.pipeline.SCORINGS, or "" for the transmitter's default; omit_images: ask for
    no PNGs back."""
    if concurrency < 1 or not 0 < duration <= MAX_DURATION_SECONDS or not 0 < max_requests <= MAX_REQUESTS:
        raise ValueError("need concurrency >= 1, 0 < duration <= 24 h and 0 < max-requests <= 10M")
    if rate is not None and rate <= 0:
        raise ValueError("--rate must be > 0 requests per second")
    check_target(address)
    template = transmitter_pb2.TransmitRequest(codec=codec, scoring=scoring_value(scoring), omit_images=omit_images)
    return uvloop.run(_load(address, images, concurrency, duration, rate, max_requests, template, timeout, progress))


def scoring_value(scoring: str) -> int:
    """TransmitRequest.scoring for a --scoring name ("" for the transmitter's default)."""
    if not scoring:
        return transmitter_pb2.SCORING_UNSPECIFIED
    if scoring not in SCORING_VALUES:
        raise ValueError(f"--scoring: {scoring!r}, expected one of {', '.join(SCORING_VALUES)}")
    return SCORING_VALUES[scoring]


async def _load(address, images, concurrency, duration, rate, max_requests, template, timeout,
                progress) -> LoadReport:
    channel = aio_channel(address, retries=True)  # a client: the edge retries
    stub = transmitter_pb2_grpc.TransmitterStub(channel)
    start = time.monotonic()
    deadline = start + duration
    report = LoadReport(0.0)
    issued = 0
    bar = tqdm(total=max_requests, desc="load", unit="req", disable=not progress)

    def next_slot() -> int | None:
        nonlocal issued
        if issued >= max_requests or time.monotonic() >= deadline:
            return None
        issued += 1
        return issued - 1

    async def worker() -> None:
        while (index := next_slot()) is not None:
            if rate:  # request i is due at start + i / rate
                await asyncio.sleep(max(0.0, start + index / rate - time.monotonic()))
                if time.monotonic() >= deadline:
                    return
            request = transmitter_pb2.TransmitRequest(image=images[index % len(images)], image_id=f"load-{index}")
            request.MergeFrom(template)
            sent = time.monotonic()
            try:
                await stub.Transmit(request, timeout=min(timeout, max(0.001, deadline - sent + timeout)))
                report.latencies.append(time.monotonic() - sent)
            except grpc.aio.AioRpcError as error:
                report.errors[error.code().name] += 1
            bar.update()

    try:
        await asyncio.gather(*(worker() for _ in range(concurrency)))
    finally:
        bar.close()
        await channel.close()
    report.duration_seconds = time.monotonic() - start
    return report
