"""The precision learned decoders run in, per process (the receiver's --precision).

fp32: plain float32. bf16: torch autocast to bfloat16, which this CPU runs on
its AMX units; weights stay float32 and only matmuls/convolutions drop to
bf16. int8: the diffusion decoder (nearly all of the receiver's compute) runs
the post-training-quantized ONNX Runtime model (quantized.py); the small
JSCC decoders stay float32.
"""

from __future__ import annotations

import contextlib

import torch

PRECISIONS = ("fp32", "bf16", "int8")
_precision = "fp32"


def configure(precision: str) -> None:
    global _precision
    if precision not in PRECISIONS:
        raise ValueError(f"--precision: {precision!r}, expected one of {', '.join(PRECISIONS)}")
    _precision = precision


def current() -> str:
    return _precision


@contextlib.contextmanager
def using(precision: str):
    """Runs a block at `precision`, then restores the previous one (benchmarks, calibration)."""
    previous = current()
    configure(precision)
    try:
        yield
    finally:
        configure(previous)


def autocast():
    """A context in which model calls run at the configured precision."""
    if _precision == "bf16":
        return torch.autocast("cpu", dtype=torch.bfloat16)
    return contextlib.nullcontext()
