"""The receiver on every x86 CPU: capabilities read from /proc/cpuinfo, `--precision auto`, bf16 refused
where it would be emulated, the int8 artifact chosen per ISA family, and the 7-bit one exact on an AVX2
CPU without VNNI.

The other kinds of CPU are shown by patching the capability check (`cpu.detect`); the AVX2 integer
kernels run for real under QEMU's user-mode emulation of a Haswell CPU (`qemu-x86_64 -cpu Haswell-noTSX`,
Debian's qemu-user, installed by `make test`), whose CPUID ONNX Runtime reads to pick its kernels."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from helpers import metric, scrape
from semcom.channel_emulator.emulator import ChannelConfig, ChannelEmulator
from semcom.common import codecs
from semcom.common.data.datasets import SyntheticScenes, materialize
from semcom.common.models import cpu, precision, runtime, store
from semcom.common.models.runtime import DecoderRuntime
from semcom.receiver import server as receiver_server
from semcom.receiver.pipeline import equalize_frame
from semcom.tools import cli

HASWELL_FLAGS = "fpu sse sse2 ssse3 sse4_1 sse4_2 popcnt avx f16c fma bmi1 bmi2 avx2"
ZEN4_FLAGS = f"{HASWELL_FLAGS} avx512f avx512dq avx512bw avx512vl avx512_vnni avx512_bf16"
SAPPHIRE_RAPIDS_FLAGS = f"{ZEN4_FLAGS} amx_bf16 amx_tile amx_int8"
SKYLAKE_X_FLAGS = f"{HASWELL_FLAGS} avx512f avx512dq avx512bw avx512vl"


def cpuinfo(model: str, flags: str) -> str:
    return "".join(f"processor\t: {n}\nmodel name\t: {model}\nflags\t\t: {flags}\n\n" for n in range(2))


AVX2 = cpu.parse_cpuinfo(cpuinfo("Intel(R) Xeon(R) CPU E5-2680 v3", HASWELL_FLAGS))
AVX512_BF16 = cpu.parse_cpuinfo(cpuinfo("AMD EPYC 9R14", ZEN4_FLAGS))


@pytest.mark.parametrize("flags, isa, bf16, dot_product", [
    (HASWELL_FLAGS, "AVX2", False, False),
    (f"{HASWELL_FLAGS} avx_vnni", "AVX2 AVX-VNNI", False, True),
    (SKYLAKE_X_FLAGS, "AVX-512 (no VNNI)", False, False),
    (ZEN4_FLAGS, "AVX-512 VNNI BF16", True, True),
    (SAPPHIRE_RAPIDS_FLAGS, "AVX-512 VNNI BF16 AMX", True, True),
])
def test_capabilities_are_read_from_cpuinfo(flags, isa, bf16, dot_product):
    capabilities = cpu.parse_cpuinfo(cpuinfo("Some CPU", flags))
    assert (capabilities.model, capabilities.isa) == ("Some CPU", isa)
    assert capabilities.native_bf16 is bf16 and capabilities.int8_dot_product is dot_product
    assert capabilities.describe().startswith(f"Some CPU: {isa}; ")
    assert precision.runnable(capabilities) == (("fp32", "bf16", "int8") if bf16 else ("fp32", "int8"))
    assert runtime.artifact_name(capabilities) == (runtime.NAME if dot_product else runtime.NAME_7BIT)


def test_this_machine_is_read_and_a_missing_cpuinfo_assumes_nothing(monkeypatch, tmp_path):
    here = cpu.detect()
    assert here.model and ("avx2" in here.flags) == ("AVX2" in here.isa or "AVX-512" in here.isa)
    monkeypatch.setattr(cpu, "CPUINFO", tmp_path / "absent")
    cpu.detect.cache_clear()
    try:
        nothing = cpu.detect()
        assert not nothing.flags and not nothing.native_bf16 and nothing.isa.startswith("unknown")
    finally:
        monkeypatch.undo()
        cpu.detect.cache_clear()
    assert cpu.detect() == here


def test_auto_picks_int8_and_bf16_is_refused_where_it_would_be_emulated(monkeypatch):
    assert precision.resolve("auto", AVX2) == "int8"
    assert precision.resolve("auto", AVX512_BF16) == "int8"  # never bf16, even where it is native
    assert precision.resolve("bf16", AVX512_BF16) == "bf16"
    assert precision.resolve("fp32", AVX2) == "fp32"
    with pytest.raises(precision.Unsupported, match=r"AVX2.*emulate.*--precision int8"):
        precision.resolve("bf16", AVX2)
    with pytest.raises(ValueError, match=r"--precision: 'int4', expected one of auto, fp32, bf16, int8"):
        precision.resolve("int4", AVX2)

    def missing(*_, **__):
        raise store.WeightsMissing("diffusion_int8.onnx is missing: run `semcom quantize`")

    monkeypatch.setattr(runtime, "load_int8", missing)
    assert precision.resolve("auto", AVX2) == "fp32"  # and says why in the log


def test_an_auto_receiver_on_an_avx2_cpu_runs_int8_says_so_and_refuses_bf16(services, monkeypatch):
    monkeypatch.setattr(cpu, "detect", lambda: AVX2)
    receiver = services.start(receiver_server, precision="auto")
    try:
        samples = scrape(receiver)
        assert metric(samples, "semcom_receiver_model_info", codec="semantic", precision="int8",
                      cpu_isa="AVX2", native_bf16="false") == 1
        assert runtime.load_artifact(runtime.artifact_name()).card["model"] == runtime.NAME_7BIT  # what it decodes with
    finally:
        services.loop.run(receiver.stop(0))
    with pytest.raises(precision.Unsupported, match="bf16"):
        services.start(receiver_server, precision="bf16")


def test_the_receiver_benchmark_measures_what_this_cpu_runs_natively(monkeypatch, capsys):
    monkeypatch.setattr(cpu, "detect", lambda: AVX2)
    assert cli._precisions("") == ("fp32", "int8")
    assert cli._precisions("int8") == ("fp32", "int8")  # fp32 is the reference of every ratio
    assert cli.main(["bench", "receiver", "--precisions", "fp32,bf16"]) != 0
    assert "--precisions bf16: this CPU" in capsys.readouterr().err
    monkeypatch.setattr(cpu, "detect", lambda: AVX512_BF16)
    assert cli._precisions("") == ("fp32", "bf16", "int8")


QEMU = shutil.which("qemu-x86_64")


@pytest.mark.process
@pytest.mark.skipif(QEMU is None, reason="qemu-x86_64 (Debian's qemu-user, installed by `make test`) is missing")
def test_the_shipped_int8_decoder_is_exact_on_an_emulated_avx2_cpu(tmp_path):
    """One UNet step of a real received frame with the artifact for CPUs without VNNI, natively and on an
    emulated Haswell: the same output."""
    image = materialize(SyntheticScenes("val", 1))[0][0]
    codec = codecs.get("semantic")
    frame = ChannelEmulator(ChannelConfig(snr_db=5.0, seed=3)).apply(
        codec.encode(image, codec.default_bandwidth_ratio, "every-cpu"))[0]
    steps = []
    fp32 = DecoderRuntime()
    codec.generate([codec.prepare(equalize_frame(frame), fp32)], fp32, observe=lambda *inputs: steps.append(inputs))
    unet = runtime.load_artifact(runtime.artifact_name(AVX2))
    x, t, condition = steps[0]
    # Both graphs: the condition graph on the condition, the step graph on this CPU's modulations of it.
    modulations = dict(zip(runtime.modulation_names(30), unet.condition(condition), strict=True))
    np.savez(tmp_path / "inputs.npz", x=x, t=t, condition=condition, **modulations)
    probe = Path(__file__).with_name("emulated_cpu_probe.py")
    graphs = [str(unet.condition.path), str(unet.step.path)]
    native = tmp_path / "native.npz"
    subprocess.run([sys.executable, str(probe), str(tmp_path / "inputs.npz"), str(native), *graphs],
                   check=True, timeout=120)
    emulated = tmp_path / "emulated.npz"
    run = subprocess.run([QEMU, "-cpu", "Haswell-noTSX", sys.executable, str(probe), str(tmp_path / "inputs.npz"),
                          str(emulated), *graphs], capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]
    native, emulated = np.load(native), np.load(emulated)
    # The emulated CPU really runs the saturating AVX2 kernels: 8-bit weights overflow there (measured 32.5
    # instead of 64), 7-bit ones do not. On an AVX2 machine the native run saturates alike.
    assert emulated["pairs_full"] < 48 and emulated["pairs_7bit"] == 64
    assert native["pairs_7bit"] == 64
    relative = lambda a, b: float(np.mean((a - b) ** 2) / np.mean(b**2))  # noqa: E731
    # Measured: 0.0 with the 7-bit artifact; the full-range one differed by 0.0053 on this step.
    for graph in ("model0", "model1"):
        assert relative(emulated[graph], native[graph]) < 1e-5
    reference = fp32.torch_function(store.load("diffusion")["net"])(*steps[0])  # the network's own output, as ONNX's
    assert relative(emulated["model1"], reference.ravel()) < 0.02  # int8 against fp32: measured ~0.005
