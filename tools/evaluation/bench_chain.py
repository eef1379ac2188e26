"""`semcom bench chain`: the whole chain's throughput under load, driven as `semcom load` drives it.

The three services are started here (receiver, channel emulator, transmitter, on loopback, as
`semcom demo` runs them), then for each codec, scoring level and concurrency: images/s, latency
percentiles, errors, and where a call's CPU goes: each service's CPU seconds (user + system, from
/proc) and the load client's over the calls served. On a 2-core machine the load client shares the
cores with the services, as it would in the demo.

Scoring levels (TransmitRequest.scoring): full (PSNR, SSIM and the segmenter's mIoU, with the PNGs
back), pixels (PSNR and SSIM, with the PNGs), none (no scores and no PNGs: omit_images).
"""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from semcom.transmitter import pipeline

from ..load import run_load
from ..services import start_processes
from .timing import peak_rss

CODECS = ("linear_analog", "semantic")
CONCURRENCY = (1, 4, 16)
SCORINGS = tuple(reversed(pipeline.SCORINGS))  # full first: the ratios are to it
CLIENT = "load client"


@dataclass
class ChainPoint:
    codec: str
    scoring: str
    concurrency: int
    images_per_second: float
    p50_ms: float
    p95_ms: float
    errors: str
    cpu_ms: dict[str, float]  # per call served, by service (and the load client)


def cpu_seconds(pid: int) -> float:
    """A process's CPU time so far, user + system (its threads included)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime, stime: fields 14 and 15


def bench_chain(images: Sequence[bytes], codecs: Sequence[str] = CODECS, concurrency: Sequence[int] = CONCURRENCY,
                scorings: Sequence[str] = SCORINGS, requests: int = 160, duration: float = 60.0,
                receiver_args: tuple[str, ...] = (), transmitter_args: tuple[str, ...] = (),
                progress: Callable[[str], None] = print) -> str:
    """At each (codec, scoring, concurrency): at most `requests` calls (at least 2 per caller) or `duration`
    seconds. Ends with each service's peak memory over the whole run."""
    points = []
    with tempfile.TemporaryDirectory() as logs, start_processes(Path(logs), receiver_args=receiver_args,
                                                                transmitter_args=transmitter_args) as group:
        pids = {name: service.process.pid for name, service in group.processes.items()}
        for codec in codecs:
            # Untimed: each codec's models load on its first call.
            run_load(group.transmitter, list(images), 1, duration, max_requests=2, codec=codec, progress=False)
            for scoring in scorings:
                for callers in concurrency:
                    progress(f"  {codec}, scoring {scoring}, {callers} callers")
                    before = {name: cpu_seconds(pid) for name, pid in pids.items()}
                    client_before = time.process_time()
                    report = run_load(group.transmitter, list(images), callers, duration,
                                      max_requests=max(requests, 2 * callers), codec=codec, scoring=scoring,
                                      omit_images=scoring == "none", progress=False)
                    served = max(len(report.latencies), 1)
                    cpu = {name: 1000 * (cpu_seconds(pid) - before[name]) / served for name, pid in pids.items()}
                    cpu[CLIENT] = 1000 * (time.process_time() - client_before) / served
                    errors = ", ".join(f"{code} {n}" for code, n in report.errors.most_common()) or "none"
                    points.append(ChainPoint(codec, scoring, callers, len(report.latencies) / report.duration_seconds,
                                             report.percentile_ms(50), report.percentile_ms(95), errors, cpu))
        peaks = {name: peak_rss(pid) for name, pid in pids.items()}
    return render(points, len(images), peaks)


def render(points: list[ChainPoint], image_count: int, peaks: dict[str, int]) -> str:
    services = list(points[0].cpu_ms) if points else []
    lines = [f"the chain under load (`semcom load` against the three services, {image_count} images in turn, "
             f"{os.cpu_count()} cores): images/s, latency, and CPU ms per call by process", "",
             f"  {'codec':<14} {'scoring':<7} {'callers':>7} {'images/s':>9} {'p50 ms':>8} {'p95 ms':>8}  "
             + "  ".join(f"{name:>11}" for name in services) + "  errors"]
    for p in points:
        lines.append(f"  {p.codec:<14} {p.scoring:<7} {p.concurrency:7d} {p.images_per_second:9.1f} {p.p50_ms:8.1f} "
                     f"{p.p95_ms:8.1f}  " + "  ".join(f"{p.cpu_ms[name]:11.1f}" for name in services)
                     + f"  {p.errors}")
    by_key = {(p.codec, p.scoring, p.concurrency): p for p in points}
    for p in points:
        full = by_key.get((p.codec, "full", p.concurrency))
        if p.scoring == "none" and full:
            lines.append(f"  {p.codec} at {p.concurrency} callers: scoring none / full "
                         f"{p.images_per_second / full.images_per_second:.2f}x images/s (none: no PNGs either)")
    lines.append("peak RSS over the run: " + ", ".join(f"{name} {peak / 2**20:.0f} MiB" for name, peak in peaks.items()))
    return "\n".join(lines)
