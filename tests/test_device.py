"""--device: the receiver's networks on the CPU or a CUDA GPU. No GPU is lent to this project's CI, so these
test the selection alone (which device each request resolves to, and the refusal where CUDA is missing);
the CUDA path itself is not measured (README, "Condition caching")."""

from __future__ import annotations

import pytest

from conftest import settings_for_tests
from semcom.common.models import device
from semcom.common.models.precision import Unsupported
from semcom.common.models.runtime import DecoderRuntime
from semcom.receiver import server as receiver_server

NO_CUDA = lambda precision: "no CUDA here"  # noqa: E731
CUDA = lambda precision: None  # noqa: E731


@pytest.mark.parametrize("requested, unavailable, expected", [
    ("cpu", CUDA, "cpu"),  # asked for: the CPU even where a GPU is there
    ("auto", CUDA, "cuda"),
    ("auto", NO_CUDA, "cpu"),
    ("cuda", CUDA, "cuda"),
])
def test_a_device_request_resolves_by_what_runs_here(requested, unavailable, expected):
    assert device.resolve(requested, "fp32", unavailable) == expected


def test_cuda_where_it_cannot_run_is_refused_with_the_reason_and_a_bad_name_is_an_error():
    with pytest.raises(Unsupported, match="--device cuda at int8: no CUDA here"):
        device.resolve("cuda", "int8", NO_CUDA)
    with pytest.raises(ValueError, match="--device: 'gpu', expected one of auto, cpu, cuda"):
        device.resolve("gpu", "fp32", CUDA)
    with pytest.raises(ValueError, match="resolved"):
        DecoderRuntime("fp32", device="auto")


def test_this_machines_reasons_name_the_missing_part():
    """On a CPU-only machine (CI's, this project's): each precision's reason names what CUDA would need."""
    reasons = {precision: device.cuda_unavailable(precision) for precision in ("fp32", "int8")}
    if reasons["fp32"] is not None:
        assert "torch sees no CUDA device" in reasons["fp32"]
        assert device.resolve("auto", "fp32") == "cpu"
    if reasons["int8"] is not None:
        assert "onnxruntime-gpu" in reasons["int8"]
        assert device.resolve("auto", "int8") == "cpu"


def test_onnx_runtime_gets_the_cuda_provider_first_with_the_cpu_one_under_it():
    assert device.onnx_providers("cuda") == ["CUDAExecutionProvider", "CPUExecutionProvider"]
    assert device.onnx_providers("cpu") == ["CPUExecutionProvider"]


@pytest.mark.skipif(device.cuda_unavailable("fp32") is None, reason="a CUDA device is here: it would start")
def test_a_receiver_asked_for_cuda_without_one_does_not_start():
    import asyncio

    with pytest.raises(Unsupported, match="--device cuda at fp32: torch sees no CUDA device"):
        asyncio.run(receiver_server.start(settings_for_tests(), device="cuda"))

