"""The precisions learned decoders run in (the receiver's --precision), checked against the CPU.
A receiver's precision is part of its DecoderRuntime (runtime.py); nothing here is process state.

fp32: plain float32. bf16: torch autocast to bfloat16, on the CPU's native bf16
units (AVX-512 BF16 or AMX); weights stay float32 and only matmuls/convolutions drop to
bf16. Without those units torch emulates bf16 about 100 times slower than fp32, so
`resolve` refuses it there (common/models/cpu.py reads the CPU).
int8: every network runs on ONNX Runtime (runtime.py): the diffusion
decoder (nearly all of the receiver's compute) post-training quantized to
int8 (runtime.py, made by `semcom quantize`), the small JSCC decoders in float32; no torch at all.
"""

from __future__ import annotations

import logging

from . import cpu

PRECISIONS = ("fp32", "bf16", "int8")
# What a receiver may be asked for: "auto" is resolved at start (`resolve`).
CHOICES = ("auto", *PRECISIONS)
CHOICES_HELP = ("auto (int8 when its artifact is there, else fp32; never bf16 on a CPU that emulates it), "
                "fp32, bf16 (autocast; needs native bf16) or int8 (the ONNX models made by `semcom quantize`)")
log = logging.getLogger(__name__)


def check(precision: str, choices: tuple[str, ...] = PRECISIONS) -> str:
    if precision not in choices:
        raise ValueError(f"--precision: {precision!r}, expected one of {', '.join(choices)}")
    return precision


class Unsupported(ValueError):
    """A precision this CPU cannot run at a useful speed."""


def supported(precision: str, capabilities: cpu.CpuCapabilities | None = None) -> str | None:
    """None when `precision` runs natively here, else why not (a sentence naming the fix)."""
    capabilities = capabilities or cpu.detect()
    if check(precision) == "bf16" and not capabilities.native_bf16:
        return (f"--precision bf16: this CPU ({capabilities.describe()}) has neither AVX-512 BF16 nor AMX-BF16, so "
                "torch would emulate bf16, about 100x slower than fp32 (one UNet step 20.8 s instead of 0.21 s on "
                "an AVX2 machine); use --precision int8 (the fastest on every x86 CPU) or fp32")
    return None


def runnable(capabilities: cpu.CpuCapabilities | None = None) -> tuple[str, ...]:
    """The precisions this CPU runs natively, in PRECISIONS order."""
    return tuple(name for name in PRECISIONS if supported(name, capabilities) is None)


def resolve(requested: str, capabilities: cpu.CpuCapabilities | None = None) -> str:
    """The precision a receiver asked for `requested` runs at, checked against this CPU.

    auto: int8 when its ONNX artifacts load (they are exact on every x86 CPU), else fp32 with the
    reason logged; never bf16. An explicit bf16 without native bf16 raises Unsupported.
    """
    if check(requested, CHOICES) != "auto":
        reason = supported(requested, capabilities)
        if reason:
            raise Unsupported(reason)
        return requested
    from . import runtime

    try:
        runtime.load_int8(capabilities=capabilities)
    except (OSError, ValueError) as error:
        log.warning("--precision auto: fp32, the int8 artifacts do not load (%s)", error)
        return "fp32"
    return "int8"
