"""Timing helpers shared by the benchmarks and `semcom quantize --sensitivity`."""

from __future__ import annotations

import time
from collections.abc import Callable

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
