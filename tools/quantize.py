"""`semcom quantize`: the int8 receiver's ONNX models, made once from the shipped fp32 weights:
the diffusion decoder post-training quantized to int8, and the JSCC decoders exported in float
(so that an int8 receiver runs on ONNX Runtime alone, without torch).

Post-training quantization in the Q-Diffusion / Q-GESCO way, W8A8: weights
int8 symmetric per output channel, activations uint8 per tensor with ranges
calibrated (min/max) on the full-precision sampler's own inputs. The runtime
is ONNX Runtime's QDQ format: its graph optimizer fuses DequantizeLinear -> op
-> QuantizeLinear into QLinearConv / QLinearAdd / QLinearMul ..., which run on
the CPU's integer kernels. It was chosen by measurement over PyTorch's x86 (FX)
quantized backend, which is deprecated and was slower here (README, "Fast
receiver"). The receiver loads the artifacts in common/models/runtime.py.

Calibration is timestep- and noise-aware, as in Q-Diffusion / Q-GESCO: real
training-split scenes go through a codec's encoder and the channel emulator
(AWGN or Rayleigh, SNR uniform in [-5, 20] dB, both generative codecs), and
the fp32 sampler decodes them; every input it feeds the UNet (x_t, t,
condition) at every DDIM step is a calibration sample. The trajectories use
the receiver's DDIM steps (default 5; `--ddim-steps` to match a receiver run
with others): calibrating on a mix of 5, 10 and 20 steps widened the ranges
and cost 0.37 dB at the default instead of 0.04 (measured with
`semcom bench receiver`). Everything is drawn
from `--seed`, so the same seed gives the same artifact byte for byte.

`--sensitivity` measures, for each candidate op type or module kept in float,
how much of the int8 model's output error (noise or velocity) remains; that is how what
stays in float (FLOAT_OPS, FLOAT_MODULES) was chosen.
"""

from __future__ import annotations

import json
import logging
import tempfile
import time
import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from semcom.channel_emulator.emulator import ChannelConfig
from semcom.common import codecs
from semcom.common.codecs.learned import jscc_channels
from semcom.common.data.datasets import SyntheticScenes
from semcom.common.models import runtime, store
from semcom.common.models.presets import CPU
from semcom.common.models.runtime import DecoderRuntime
from semcom.common.models.sampling import SamplerSettings

from .chain import Chain
from .evaluation.timing import median_seconds

CALIBRATION_SNR_DB = (-5.0, 20.0)
CALIBRATION_CHANNELS = ("awgn", "rayleigh")
# The share of calibration scenes sent with the Q-GESCO-faithful codec: it starts from pure noise
# (t = 999) and conditions on the map alone, so its inputs cover what `semantic` does not.
GESCO_SHARE = 0.25
# Kept in float, by measurement (`semcom quantize --sensitivity`, README "Fast receiver"): the
# elementwise products (SiLU's x * sigmoid(x), SPADE's norm(x) * (1 + gamma)) carry 4/5 of the
# all-int8 model's error, and leaving them in float costs no measurable speed. The stem convolution
# sees the sampler's x_t directly (3 channels, wide range): in float it removes another third of the
# remaining error for 0.1 % of the compute.
FLOAT_OPS = ("Mul",)
FLOAT_MODULES = ("stem",)
# The step graph (condition caching) quantizes its convolutions and linear layers alone: without the SPADEs'
# condition convolutions, a step is mostly elementwise work whose quantize/dequantize pairs cost more than the
# integer ops save. Measured (64x128, 8 calibration scenes, 2-core Xeon with AVX-512 VNNI; README, Fast
# receiver): 14.2 ms and 1.5 % relative output error, against 14.3 ms and 5.5 % under FLOAT_OPS (float ORT:
# 16.1 ms); the linear layers (the timestep embedding's) in int8 cost nothing measurable and save 0.28 MB.
# The condition graph keeps FLOAT_OPS: 10.9 ms against 13.2 with its convolutions alone in int8.
STEP_INT8_OPS = ("Conv", "Gemm")
SENSITIVITY_OPS = ("Mul", "Add", "Sigmoid", "Gemm", "Concat", "Resize", "InstanceNormalization")
SENSITIVITY_MODULES = ("stem", "time_mlp", "down_blocks.0", "middle", "up_blocks.2", "out_norm", "out")


@dataclass
class QuantizeConfig:
    scenes: int = 64
    seed: int = 0
    ddim_steps: int = SamplerSettings.steps
    sampler: str = SamplerSettings.method  # the receiver's --sampler: the timesteps calibration visits
    float_ops: Sequence[str] = FLOAT_OPS
    float_modules: Sequence[str] = FLOAT_MODULES
    weights_dir: Path = field(default_factory=lambda: store.WEIGHTS_DIR)


def calibration_samples(scenes: int, seed: int, ddim_steps: int = SamplerSettings.steps,
                        sampler: str = SamplerSettings.method, diffusion_decoder: str = "diffusion",
                        weights_dir: Path = store.WEIGHTS_DIR) -> list[dict[str, np.ndarray]]:
    """The fp32 sampler's own UNet inputs on `scenes` received frames, one sample per model call; of the
    diffusion decoder, or of its student (diffusion_decoder, as DecoderRuntime's: one call a frame)."""
    if scenes < 1:
        raise ValueError(f"--scenes: {scenes}, need at least 1")
    rng = np.random.default_rng(seed)
    train = SyntheticScenes("train", 100_000)
    samples: list[dict[str, np.ndarray]] = []

    def record(x: np.ndarray, t: np.ndarray, condition: np.ndarray) -> None:
        samples.append({"x": x.copy(), "t": t.copy(), "condition": condition.copy()})

    fp32 = DecoderRuntime("fp32", SamplerSettings(steps=ddim_steps, method=sampler), weights_dir,  # full precision
                          diffusion_decoder=diffusion_decoder)
    for index in tqdm(range(scenes), desc="calibration scenes", unit="scene"):
        image, _ = train[int(rng.integers(len(train)))]
        codec_id = "gesco" if rng.random() < GESCO_SHARE else "semantic"
        chain = Chain(ChannelConfig(model=str(rng.choice(CALIBRATION_CHANNELS)),
                                    snr_db=float(rng.uniform(*CALIBRATION_SNR_DB)), seed=int(rng.integers(2**31)),
                                    csi="perfect", equalizer="mmse"), fp32)
        received = chain.equalize(chain.transmit(chain.encode(image, codec_id, frame_id=f"calibration-{seed}-{index}")))
        codec = codecs.get(codec_id)
        codec.generate([codec.prepare(received, fp32)], fp32, observe=record)
    return samples


# What each artifact is for (models/runtime.py, README "Every x86 CPU").
WEIGHTS = {
    runtime.NAME: "int8, symmetric, per output channel, full range -127..127",
    runtime.NAME_7BIT: "int8, symmetric, per output channel, 7-bit range -64..64 (ORT reduce_range)",
}
CPUS = {
    runtime.NAME: "CPUs with int8 dot products (AVX-512 VNNI, AVX-VNNI, AMX): they accumulate u8 x s8 in int32",
    runtime.NAME_7BIT: "CPUs without VNNI (AVX2, AVX-512 without VNNI): their u8 x s8 kernels sum byte pairs "
                         "into a saturating int16, which full-range weights overflow",
}


ACTIVATIONS = "uint8, asymmetric, per tensor, min/max over the calibration samples"


def weight_bytes(fp32_bytes: int, *int8_paths: Path) -> dict[str, float]:
    """A card's weight_bytes: the float model's stored constants, the int8 model's (its graphs'), and their ratio."""
    int8_bytes = sum(runtime.initializer_bytes(path) for path in int8_paths)
    return {"fp32": fp32_bytes, "int8": int8_bytes, "ratio": round(int8_bytes / fp32_bytes, 4)}


def quantize_decoder(config: QuantizeConfig, command: str = "semcom quantize") -> dict[str, dict]:
    """Writes both int8 UNet artifacts (runtime.ARTIFACTS), each its condition graph and its step graph, and their
    cards into config.weights_dir, from one calibration; returns the step graphs' cards by name."""
    started = time.perf_counter()
    net = store.load("diffusion", config.weights_dir)["net"]
    samples = calibration_samples(config.scenes, config.seed, config.ddim_steps, config.sampler)
    timesteps = sorted({int(s["t"][0]) for s in samples})
    cards = {}
    with tempfile.TemporaryDirectory() as folder:
        quantized = quantize_unet(net, samples, runtime.ARTIFACTS, Path(folder), config)
        for name in runtime.ARTIFACTS:
            condition_path, step_path = quantized.paths(name)
            shared = quantized.step_card(name)
            common = {
                "format": "ONNX QDQ, run by onnxruntime (CPUExecutionProvider)",
                "source_sha256": store.card("diffusion", config.weights_dir)["sha256"],
                "for": CPUS[name],
                "quantization": {"weights": WEIGHTS[name], "activations": ACTIVATIONS},
                "calibration": {
                    "command": command, "seed": config.seed, "scenes": config.scenes, "samples": len(samples),
                    "data": "synthetic train split scenes, drawn by the seed",
                    "channels": list(CALIBRATION_CHANNELS), "snr_db_uniform": list(CALIBRATION_SNR_DB),
                    "codecs": f"semantic, gesco ({GESCO_SHARE:.0%})",
                    "ddim_steps": config.ddim_steps, "sampler": config.sampler,
                    "timesteps": f"{len(timesteps)} distinct, {timesteps[0]}..{timesteps[-1]}",
                },
                "versions": versions(),
            }
            condition_graph = runtime.condition_name(name)
            cards[condition_graph] = {
                "model": condition_graph,
                "architecture": "SemanticDiffusionUNet's condition encoder (diffusion.card.json): condition -> every "
                                "SPADE's scale and shift, run once per frame; W8A8 post-training quantized",
                "sha256": store.sha256_of(condition_path), **common,
                "quantization": {**common["quantization"], "float_ops": list(config.float_ops),
                                 "float_modules": quantized.condition_modules,
                                 "why_float": "measured with `semcom quantize --sensitivity` on the one-graph UNet: "
                                              "see the README's Fast receiver section"}}
            cards[name] = {
                "model": name,
                "architecture": "SemanticDiffusionUNet (diffusion.card.json), W8A8 post-training quantized: its step "
                                f"graph, (x, t, modulations) -> prediction, the modulations from {condition_graph}",
                "sha256": store.sha256_of(step_path), **common, **shared,
                "quantization": {**common["quantization"], **shared["quantization"],
                                 "why_float": f"only {', '.join(STEP_INT8_OPS)} in int8: measured faster and closer "
                                              "to fp32 (tools/quantize.py, STEP_INT8_OPS)"},
            }
    for card in cards.values():
        card["wall_seconds"] = round(time.perf_counter() - started, 1)  # of the whole command, both artifacts
        write_card(config.weights_dir, card)
    return {name: cards[name] for name in runtime.ARTIFACTS}


@dataclass
class QuantizedUNet:
    weights_dir: Path
    fp32_bytes: int  # of both float graphs
    condition_modules: list[str]  # each graph's share of --float-modules (the stem is the step graph's)
    step_modules: list[str]

    def paths(self, name: str) -> tuple[Path, Path]:
        """UNet `name`'s condition graph and step graph as written."""
        return tuple(self.weights_dir / f"{graph}.onnx" for graph in (runtime.condition_name(name), name))

    def step_card(self, name: str) -> dict:
        """What UNet `name`'s card (its step graph's) says of the two graphs, whoever quantized them."""
        condition_path, step_path = self.paths(name)
        return {"quantization": {"int8_ops": list(STEP_INT8_OPS), "float_modules": self.step_modules},
                "condition_graph": {"model": runtime.condition_name(name), "sha256": store.sha256_of(condition_path)},
                # Of both graphs: what an int8 receiver holds of the UNet.
                "weight_bytes": weight_bytes(self.fp32_bytes, condition_path, step_path)}


def quantize_unet(net: torch.nn.Module, samples: Sequence[dict[str, np.ndarray]], names: Sequence[str], folder: Path,
                  config: QuantizeConfig) -> QuantizedUNet:
    """A UNet's two graphs (export_graphs) quantized for each ISA family, written into config.weights_dir:
    names[i] (its step graph; its condition graph runtime.condition_name(names[i])) for runtime.ARTIFACTS[i],
    calibrated on `samples`, the fp32 sampler's inputs {x, t, condition}. The condition graph under
    config.float_ops, the step graph's STEP_INT8_OPS alone."""
    condition_float, step_float = folder / f"{names[0]}_condition_fp32.onnx", folder / f"{names[0]}_fp32.onnx"
    export_graphs(net, condition_float, step_float, samples[0]["x"].shape[-2:])
    modules = {path: [m for m in config.float_modules if nodes_of(path, modules=(m,))]
               for path in (condition_float, step_float)}
    conditions = [{"condition": sample["condition"]} for sample in samples]
    for name, family in zip(names, runtime.ARTIFACTS, strict=True):
        seven_bit = family == runtime.NAME_7BIT
        quantize(condition_float, config.weights_dir / f"{runtime.condition_name(name)}.onnx", conditions,
                 config.float_ops, modules[condition_float], seven_bit=seven_bit)
        quantize(step_float, config.weights_dir / f"{name}.onnx", StepSamples(net, samples), (), modules[step_float],
                 seven_bit=seven_bit, int8_ops=STEP_INT8_OPS)
    return QuantizedUNet(config.weights_dir, runtime.initializer_bytes(condition_float)
                         + runtime.initializer_bytes(step_float), modules[condition_float], modules[step_float])


class StepSamples:
    """The step graph's calibration samples, (x, t, modulations), the modulations computed from each recorded
    condition by the fp32 network as they are read: all of them at once would take 22.5 MB a sample."""

    def __init__(self, net: torch.nn.Module, samples: Sequence[dict[str, np.ndarray]]):
        self._net, self._samples = net, samples

    def __iter__(self):
        for sample in self._samples:
            with torch.no_grad():
                modulations = self._net.modulations(torch.from_numpy(sample["condition"]))
            yield {"x": sample["x"], "t": sample["t"],
                   **dict(zip(runtime.modulation_names(len(modulations)), (m.numpy() for m in modulations)))}


def sensitivity(scenes: int = 16, seed: int = 0, weights_dir: Path | None = None) -> str:
    """The int8 output error (noise or velocity) on held-out samples with each candidate op type or module left in
    float, alone and on top of the chosen FLOAT_OPS; and the step latency of each variant."""
    net = store.load("diffusion", weights_dir or store.WEIGHTS_DIR)["net"]
    calibration = calibration_samples(scenes, seed)
    held_out = calibration_samples(max(scenes // 2, 1), seed + 1)
    with torch.no_grad():
        references = [net(*(torch.from_numpy(s[name]) for name in runtime.INPUTS)).numpy() for s in held_out]
    power = float(np.mean([np.mean(r**2) for r in references]))
    variants = [((), ()), *(((op,), ()) for op in SENSITIVITY_OPS),
                *((FLOAT_OPS, (module,)) for module in SENSITIVITY_MODULES)]
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        float_path = Path(folder) / "fp32.onnx"
        export(net, float_path)
        for ops, modules in tqdm(variants, desc="sensitivity", unit="variant"):
            path = Path(folder) / "int8.onnx"
            quantize(float_path, path, calibration, ops, modules)
            session = runtime.session_for(path)
            error = float(np.mean([np.mean((session.run(None, s)[0] - r) ** 2) for s, r in zip(held_out, references)]))
            seconds = median_seconds(lambda: session.run(None, held_out[0]), 15, 1, "step")
            rows.append((" + ".join((*ops, *modules)) or "(all int8)", error / power, seconds,
                         runtime.initializer_bytes(path)))
    baseline = rows[0][1]
    lines = [f"int8 output error (the UNet's noise or velocity), relative to the fp32 output's power, on "
             f"{len(held_out)} held-out "
             f"sampler inputs (calibration: {len(calibration)} from {scenes} scenes); batch-1 step latency:",
             f"  {'kept in float':<22} {'rel. MSE':>9} {'of all-int8':>12} {'ms/step':>8} {'weight bytes':>13}"]
    lines += [f"  {name:<22} {error:9.5f} {error / baseline:11.0%} {1000 * seconds:8.1f} {size:13,d}"
              for name, error, seconds, size in rows]
    return "\n".join(lines)


def export(net: torch.nn.Module, path: Path) -> None:
    """The fp32 UNet as ONNX, traced at the CPU preset's size (64x128), any size (a multiple of 4) when run."""
    export_unet(net, CPU.height, CPU.width, net.num_classes + 3, path)


def decoder_features(model: str, weights_dir: Path) -> tuple[int, int, int]:
    """What JSCC decoder `model` receives when traced, [C, h, w] symbol values (and as many reliabilities)."""
    if model == "deep_jscc":
        return codecs.get("deep_jscc").max_channels, 8, 12
    return (jscc_channels(model, weights_dir), *((16, 32) if model == "map_codec" else (8, 16)))


def export_decoders(weights_dir: Path, command: str) -> None:
    """Each JSCC decoder the receiver runs as float32 ONNX (they are ~1 % of its compute: not quantized),
    fully convolutional: any size of received feature maps."""
    for model in runtime.DECODED_MODELS:
        description = store.card(model, weights_dir)
        channels, height, width = decoder_features(model, weights_dir)
        example = (torch.zeros(1, 2 * channels, height, width),)
        decoder = store.load(model, weights_dir)["decoder"]
        path = weights_dir / f"{runtime.decoder_name(model)}.onnx"
        export_onnx(decoder, example, ("received",), path, any_size=True)
        write_card(weights_dir, {
            "model": runtime.decoder_name(model),
            "architecture": f"{description['architecture']['decoder']['class']} ({model}.card.json), float32",
            "format": "ONNX, run by onnxruntime (CPUExecutionProvider) in receivers with --precision int8",
            "sha256": store.sha256_of(path),
            "source_sha256": description["sha256"],
            "command": command,
            "versions": versions(),
        })


class _AdaptedDecoder(torch.nn.Module):
    """An adapted decoder as one graph: (received planes, condition [B, 2]) -> its output, the gate and the
    low-rank branch computed in the graph (not merged: any condition)."""

    def __init__(self, adapted):
        super().__init__()
        self.adapted = adapted

    def forward(self, received, condition):
        return self.adapted(received, condition=condition)


def export_adapters(weights_dir: Path, command: str) -> list[str]:
    """The shipped adapters' decoders for int8 receivers (which run the JSCC decoders in float ONNX, without
    torch): per adapted model, `{model}_adapters_decoder.onnx` (planes and condition -> output: the low-rank
    branch in float beside the base's weights) and `{model}_adapters_gate.onnx` (condition -> the decoder's gate,
    which the receiver reports). Made from the adapters' file (their card's sha256 in each card: a retrained adapter
    refuses them until this runs again). Returns the names made."""
    from semcom.common.models import adapters

    made = []
    for model in adapters.ADAPTED_MODELS:
        if not (weights_dir / f"{adapters.adapter_name(model)}.card.json").is_file():
            continue
        adapted = adapters.load(model, weights_dir).parts["decoder"]
        channels, height, width = decoder_features(model, weights_dir)
        condition = torch.tensor([[10.0, 1 / 12]])
        graphs = {runtime.adapted_decoder_name(model): (_AdaptedDecoder(adapted), (
                      torch.zeros(1, 2 * channels, height, width), condition), ("received", "condition"), True),
                  runtime.adapter_gate_name(model): (adapted.gate, (condition,), ("condition",), False)}
        for name, (net, example, inputs, any_size) in graphs.items():
            path = weights_dir / f"{name}.onnx"
            export_onnx(net, example, inputs, path, any_size=any_size)
            write_card(weights_dir, {
                "model": name,
                "architecture": f"{model}'s decoder with its adapters ({adapters.adapter_name(model)}.card.json), "
                                "float32" if any_size else f"the gate of {model}'s adapted decoder, float32",
                "format": "ONNX, run by onnxruntime (CPUExecutionProvider) in receivers with --precision int8",
                "sha256": store.sha256_of(path),
                "source_sha256": adapters.card(model, weights_dir)["sha256"],
                "command": command,
                "versions": versions(),
            })
            made.append(name)
    return made


def versions() -> dict[str, str]:
    import onnx
    import onnxruntime

    return {"torch": torch.__version__, "onnx": onnx.__version__, "onnxruntime": onnxruntime.__version__}


def export_onnx(net, example: tuple, input_names: Sequence[str], path: Path, any_size: bool = False,
                output_names: Sequence[str] = ("output",)) -> None:
    """A torch module as an ONNX graph, its inputs and outputs (image-shaped) batch-dynamic (the receiver batches);
    any_size: height and width of the image-shaped ([B, C, H, W]) ones dynamic too (a fully convolutional net)."""
    def axes(name: str, ndim: int) -> dict[int, str]:  # each tensor's own: an input's height is not the output's
        return {0: "batch", 2: f"{name}_height", 3: f"{name}_width"} if any_size and ndim == 4 else {0: "batch"}

    dimensions = {**{name: tensor.dim() for name, tensor in zip(input_names, example)},
                  **dict.fromkeys(output_names, 4)}

    with warnings.catch_warnings():
        # The TorchScript exporter (the dynamo one would need onnxscript too) warns that it is
        # deprecated, and that the image size becomes a constant: it is, by design (but with any_size).
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.simplefilter("ignore", torch.jit.TracerWarning)
        torch.onnx.export(net, example, str(path), input_names=list(input_names), output_names=list(output_names),
                          opset_version=17, dynamic_axes={name: axes(name, ndim) for name, ndim in dimensions.items()},
                          dynamo=False)


def export_graphs(net, condition_path: Path, step_path: Path, size: tuple[int, int] = (CPU.height, CPU.width)) -> None:
    """The fp32 UNet as its two ONNX graphs (condition caching, diffusion.py): condition -> modulations, and
    (x, t, modulations) -> its prediction; traced at `size`, any size when run."""
    condition = torch.zeros(1, net.condition_channels, *size)
    with torch.no_grad():
        modulations = tuple(net.modulations(condition))
    names = runtime.modulation_names(len(modulations))
    export_onnx(_ConditionEncoder(net), (condition,), runtime.CONDITION_INPUTS, condition_path, any_size=True,
                output_names=names)
    example = (torch.zeros(1, net.in_channels, *size), torch.zeros(1, dtype=torch.long), *modulations)
    export_onnx(_StepNetwork(net), example, ("x", "t", *names), step_path, any_size=True)


class _ConditionEncoder(torch.nn.Module):
    def __init__(self, net):
        super().__init__()
        self.net = net

    def forward(self, condition):
        return tuple(self.net.modulations(condition))


class _StepNetwork(_ConditionEncoder):
    def forward(self, x, t, *modulations):
        return self.net.denoise(x, t, modulations)


def export_unet(net, height: int, width: int, condition_channels: int, path: Path) -> None:
    """The fp32 UNet as ONNX, (x, t, condition) -> its prediction (noise or velocity, as its card says)."""
    example = (torch.zeros(1, 3, height, width), torch.zeros(1, dtype=torch.long),
               torch.zeros(1, condition_channels, height, width))
    export_onnx(net, example, runtime.INPUTS, path, any_size=True)


def nodes_of(model_path: Path, op_types: Sequence[str] = (), modules: Sequence[str] = ()) -> list[str]:
    """ONNX node names of the given op types ("Mul", ...) or in the given torch modules ("out", "time_mlp", ...; of
    the UNet, also where a wrapper exported it: "/net/out/...")."""
    import onnx

    graph = onnx.load(str(model_path)).graph
    return [node.name for node in graph.node
            if node.op_type in op_types or any(f"/{prefix}/" in node.name for prefix in modules)]


def quantize(float_path: Path, out_path: Path, samples: Iterable[dict[str, np.ndarray]],
             float_ops: Sequence[str] = (), float_modules: Sequence[str] = (), seven_bit: bool = False,
             int8_ops: Sequence[str] | None = None) -> None:
    """W8 per channel / A8 per tensor QDQ model from `float_path`, activation ranges from `samples`.

    float_ops, float_modules: ONNX op types and torch modules that stay in float
    (a measured choice: FLOAT_OPS, FLOAT_MODULES and --sensitivity). seven_bit: weights in -64..64, for CPUs without VNNI.
    int8_ops: if given, the only op types quantized (STEP_INT8_OPS), whatever else the graph holds.
    """
    from onnxruntime.quantization import (
        CalibrationDataReader, CalibrationMethod, QuantFormat, QuantType, quantize_static,
    )
    from onnxruntime.quantization.shape_inference import quant_pre_process

    class Reader(CalibrationDataReader):
        def __init__(self):
            self._samples = iter(samples)

        def get_next(self):
            return next(self._samples, None)

    prepared = out_path.with_suffix(".pre.onnx")
    # Shape inference and folding, as ORT recommends; ONNX's own shape inference only, as the symbolic one
    # cannot follow the any-size graph's resizes (and the quantizer needs no concrete shapes).
    quant_pre_process(str(float_path), str(prepared), skip_symbolic_shape=True)
    # ORT's quantizer logs a warning per calibration pass for each 1-D GroupNorm constant it cannot
    # quantize per channel (it leaves them in float, which is right): hundreds of identical lines.
    logging.disable(logging.WARNING)
    try:
        quantize_static(
            str(prepared), str(out_path), Reader(), quant_format=QuantFormat.QDQ, per_channel=True,
            activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8, calibrate_method=CalibrationMethod.MinMax,
            reduce_range=seven_bit, op_types_to_quantize=None if int8_ops is None else list(int8_ops),
            # Only per-tensor min/max scalars are kept per sample, so all samples fit in memory. (ORT's
            # CalibMaxIntermediateOutputs would discard, not merge, earlier samples: onnxruntime 1.32.)
            nodes_to_exclude=nodes_of(prepared, float_ops, float_modules),
        )
    finally:
        logging.disable(logging.NOTSET)
        prepared.unlink(missing_ok=True)
    _drop_zero_zero_points(out_path)


def _drop_zero_zero_points(path: Path) -> None:
    """ORT stores a zero point per output channel for every symmetric weight and bias (all zeros, the
    biases' as int32): a fifth of the int8 model's non-weight bytes. DequantizeLinear's zero point is
    optional and defaults to 0, so the all-zero ones of constant tensors are removed."""
    import onnx
    from onnx import numpy_helper

    model = onnx.load(str(path))
    graph = model.graph
    constants = {tensor.name: tensor for tensor in graph.initializer}
    for node in graph.node:
        if (node.op_type == "DequantizeLinear" and len(node.input) == 3 and node.input[0] in constants
                and node.input[2] in constants and not numpy_helper.to_array(constants[node.input[2]]).any()):
            del node.input[2]
    used = {name for node in graph.node for name in node.input}
    unused = [tensor for tensor in graph.initializer if tensor.name not in used]
    for tensor in unused:
        graph.initializer.remove(tensor)
    onnx.save(model, str(path))


def write_card(weights_dir: Path, description: dict) -> Path:
    path = weights_dir / f"{description['model']}.card.json"
    path.write_text(json.dumps(description, indent=2) + "\n")
    return path
