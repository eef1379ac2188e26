"""Where a receiver's networks run (`semcom serve receiver --device`): the CPU, or a CUDA GPU.

On a GPU, fp32 and bf16 run the torch modules on CUDA (a CUDA build of torch), int8 runs the
ONNX artifacts on ONNX Runtime's CUDA provider (the onnxruntime-gpu wheel in place of
onnxruntime), with the CPU provider under it for any op CUDA lacks. The sampler stays numpy on the
CPU: each step moves x_t to the device and the prediction back (a 64x128 frame: 100 KB each way).

This path is kept small and is not measured: no GPU was lent to its work (README, "Condition
caching"). `auto` picks CUDA only where the precision can run there.
"""

from __future__ import annotations

from collections.abc import Callable

from .precision import Unsupported

DEVICES = ("cpu", "cuda")
CHOICES = ("auto", *DEVICES)
CUDA_PROVIDER = "CUDAExecutionProvider"


def cuda_unavailable(precision: str) -> str | None:
    """Why `precision` cannot run on CUDA in this process, or None when it can."""
    if precision == "int8":
        import onnxruntime

        if CUDA_PROVIDER not in onnxruntime.get_available_providers():
            return "ONNX Runtime has no CUDA provider here: install onnxruntime-gpu in place of onnxruntime"
        return None
    import torch

    if not torch.cuda.is_available():
        return "torch sees no CUDA device (a CPU build of torch, or no GPU visible)"
    if precision == "bf16" and not torch.cuda.is_bf16_supported():
        return "this GPU has no bf16"
    return None


def resolve(requested: str, precision: str, unavailable: Callable[[str], str | None] = cuda_unavailable) -> str:
    """The device (one of DEVICES) a receiver of `precision` runs on for --device `requested`: cpu; cuda, or
    Unsupported saying why not; auto: cuda where the precision runs there, else cpu."""
    if requested not in CHOICES:
        raise ValueError(f"--device: {requested!r}, expected one of {', '.join(CHOICES)}")
    if requested == "cpu":
        return "cpu"
    reason = unavailable(precision)
    if requested == "cuda" and reason:
        raise Unsupported(f"--device cuda at {precision}: {reason}")
    return "cpu" if reason else "cuda"


def onnx_providers(device: str) -> list[str]:
    """ONNX Runtime's execution providers for `device`, in order of preference."""
    return [CUDA_PROVIDER, "CPUExecutionProvider"] if device == "cuda" else ["CPUExecutionProvider"]
