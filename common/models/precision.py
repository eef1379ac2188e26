"""The precision learned decoders run in (the receiver's --precision): a process
default, overridden per thread or task by `using` (each receiver decodes in its own).

fp32: plain float32. bf16: torch autocast to bfloat16, which this CPU runs on
its AVX-512 BF16 units (it has no AMX); weights stay float32 and only matmuls/convolutions drop to
bf16. int8: every network runs on ONNX Runtime (runtime.py): the diffusion
decoder (nearly all of the receiver's compute) post-training quantized to
int8 (quantized.py), the small JSCC decoders in float32; no torch at all.
"""

from __future__ import annotations

import contextlib
import contextvars

PRECISIONS = ("fp32", "bf16", "int8")
_default = "fp32"
# Set by `using` for one block of one thread (or task): receivers with different precisions can
# share a process (the tests do), and a benchmark can switch without touching the others.
_override: contextvars.ContextVar[str | None] = contextvars.ContextVar("precision", default=None)


def check(precision: str) -> str:
    if precision not in PRECISIONS:
        raise ValueError(f"--precision: {precision!r}, expected one of {', '.join(PRECISIONS)}")
    return precision


def configure(precision: str) -> None:
    """Sets the process's default precision."""
    global _default
    _default = check(precision)


def current() -> str:
    return _override.get() or _default


@contextlib.contextmanager
def using(precision: str):
    """Runs a block (in this thread or task) at `precision`."""
    token = _override.set(check(precision))
    try:
        yield
    finally:
        _override.reset(token)


def autocast():
    """A context in which model calls run at the current precision."""
    if current() == "bf16":
        import torch  # not before: an int8 receiver runs without torch

        return torch.autocast("cpu", dtype=torch.bfloat16)
    return contextlib.nullcontext()
