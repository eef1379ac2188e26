"""Timing and memory helpers shared by the benchmarks and `semcom quantize --sensitivity`."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
from tqdm import tqdm


def seconds(call: Callable) -> float:
    """Wall time of one call."""
    start = time.perf_counter()
    call()
    return time.perf_counter() - start


def median_seconds(function: Callable, repeats: int, warmup: int, label: str) -> float:
    """Median wall time of `repeats` calls after `warmup` untimed ones (with a progress bar)."""
    samples = []
    for i in tqdm(range(warmup + repeats), desc=label, unit="call", leave=False):
        elapsed = seconds(function)
        if i >= warmup:
            samples.append(elapsed)
    return float(np.median(samples))


def peak_rss(pid: int) -> int:
    """A running process's peak resident memory (VmHWM), in bytes."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError(f"no VmHWM for process {pid}")
