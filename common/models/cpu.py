"""What this CPU runs natively, read once: the receiver chooses its precision by it (bf16 is only fast
with native bf16 units), and every benchmark names it beside its figures.

Machines of one kind differ: some x86 CPUs have AVX-512 VNNI and BF16 (and AMX), some AVX2 only.
Without native bf16, torch emulates it (one UNet step: 20.8 s instead of 0.21 s in fp32, measured on
an AVX2-only machine); without VNNI, ONNX Runtime's u8 x s8 kernels sum byte pairs into saturating
16-bit integers, which the int8 artifact's 7-bit weights are made for (models/runtime.py).

Read from /proc/cpuinfo (Linux), without torch: an int8 receiver never imports it. Elsewhere nothing
is assumed: no flags, so no native bf16.
"""

from __future__ import annotations

import platform
from dataclasses import dataclass
from functools import cache
from pathlib import Path

CPUINFO = Path("/proc/cpuinfo")
BF16_FLAGS = frozenset({"avx512_bf16", "amx_bf16"})
VNNI_FLAGS = frozenset({"avx512_vnni", "avx_vnni"})


@dataclass(frozen=True)
class CpuCapabilities:
    model: str
    flags: frozenset[str]

    @property
    def native_bf16(self) -> bool:
        """bf16 matmuls and convolutions in hardware (AVX-512 BF16 or AMX-BF16), not emulated."""
        return bool(self.flags & BF16_FLAGS)

    @property
    def int8_dot_product(self) -> bool:
        """u8 x s8 dot products that accumulate in int32 (VNNI or AMX), rather than in saturating int16."""
        return bool(self.flags & (VNNI_FLAGS | {"amx_int8"}))

    @property
    def isa(self) -> str:
        """The vector extensions that matter for the receiver's kernels, e.g. "AVX-512 VNNI BF16 AMX", "AVX2"."""
        flags = self.flags
        if not flags:
            return f"unknown ({platform.machine() or 'unknown machine'})"
        if "avx512f" in flags:
            extras = [name for name, flag in (("VNNI", "avx512_vnni"), ("BF16", "avx512_bf16")) if flag in flags]
            parts = ["AVX-512", *extras] if extras else ["AVX-512 (no VNNI)"]
        elif "avx2" in flags:
            parts = ["AVX2", *(["AVX-VNNI"] if "avx_vnni" in flags else [])]
        else:
            parts = ["no AVX2"]
        return " ".join(parts + (["AMX"] if flags & {"amx_int8", "amx_bf16"} else []))

    def describe(self) -> str:
        """One line for logs, benchmarks and --help: model, ISA and what follows from it."""
        bf16 = "native bf16" if self.native_bf16 else "no native bf16"
        int8 = "int8 dot products" if self.int8_dot_product else "no VNNI"
        return f"{self.model}: {self.isa}; {bf16}, {int8}"


def parse_cpuinfo(text: str) -> CpuCapabilities:
    """The first processor's model name and flags in /proc/cpuinfo's format."""
    model, flags = "", frozenset()
    for line in text.splitlines():
        key, _, value = line.partition(":")
        key = key.strip()
        if key == "model name" and not model:
            model = value.strip()
        elif key == "flags" and not flags:
            flags = frozenset(value.split())
    return CpuCapabilities(model or platform.processor() or "unknown CPU", flags)


@cache
def detect() -> CpuCapabilities:
    """This machine's CPU."""
    try:
        return parse_cpuinfo(CPUINFO.read_text())
    except OSError:
        return CpuCapabilities(platform.processor() or "unknown CPU", frozenset())
