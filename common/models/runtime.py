"""The receiver's decoder runtime: what its codecs decode with, as one object.

A `DecoderRuntime` holds a receiver's precision, its sampler settings and its
weights folder, and hands the codecs' numpy decode paths each network:

* fp32 and bf16: the trained torch modules (bf16 under CPU autocast);
* int8: ONNX Runtime, the diffusion UNet quantized to int8 and the JSCC
  decoders exported in float, both made by `semcom quantize`. An int8
  receiver so never imports torch, which is most of a receiver process's
  memory (README, "Fast receiver").

The receiver server builds one and passes it to every decode; nothing on the
decode path is process state, so receivers of different precisions and
sampler settings share a process and decode independently.

The int8 artifacts. One UNet artifact per ISA family, chosen at start by the CPU
(`artifact_name`): CPUs with int8 dot products (AVX-512 VNNI, AVX-VNNI, AMX)
accumulate u8 x s8 products in int32 and run the full-range weights
(diffusion_int8.onnx); CPUs without them (AVX2, AVX-512 without VNNI) multiply
with vpmaddubsw, which sums each byte pair into a saturating int16: 255 * 127 * 2
overflows it (measured: a dB lost), so they run 7-bit weights (-64..64, ORT's
reduce_range; 255 * 64 * 2 fits), diffusion_int8_7bit.onnx. The 7-bit weights
would cost the VNNI machines 0.2 dB (README, "Every x86 CPU"), hence two
artifacts, not one. Each artifact is two graphs (condition caching, diffusion.py):
`{name}_condition.onnx`, the condition to every SPADE's modulation, run once per
frame, and `{name}.onnx`, a step given them (OnnxUNet). Each card names the torch
weights it was made from, and a stale artifact is refused rather than silently used.
Making them (export, calibration, quantization) is the quantize command's: tools/quantize.py.

The photo codec's networks (`latent_diffusion`, PHOTO_PARTS) follow the same
rules, one ONNX file per part named `{model}_{part}[_int8|_int8_7bit]`: its UNet
and the VAE decoder quantized (two artifacts each, by ISA), its head in float
(int8 made it slower: measured, tools/quantize_photo.py). The distilled student of the
diffusion decoder (`--decoder student`, STUDENT_PARTS) is quantized as the decoder is,
its graphs named the same way (tools/quantize_student.py).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from functools import cache, cached_property
from pathlib import Path

import numpy as np

from ..serving.errors import FailedPrecondition, Unavailable
from . import adapters, cpu
from . import device as devices
from . import precision as precisions
from . import store
from .sampling import Conditioned, CosineSchedule, SamplerSettings, predicting_noise, two_stage, uncached
from .store import WEIGHTS_DIR

NumpyFunction = Callable[..., np.ndarray]

NAME = "diffusion_int8"  # for CPUs with int8 dot products (VNNI, AMX): full-range 8-bit weights
NAME_7BIT = "diffusion_int8_7bit"  # for CPUs without: 7-bit weights, which their 16-bit pair sums cannot overflow
ARTIFACTS = (NAME, NAME_7BIT)
INPUTS = ("x", "t", "condition")  # of the whole UNet (forward)
# Each artifact is the UNet in two graphs (condition caching, diffusion.py): `{name}_condition.onnx`, condition ->
# the SPADEs' modulations (run once per frame), and `{name}.onnx`, (x, t, modulations) -> its prediction (each step).
CONDITION_INPUTS = ("condition",)
DECODED_MODELS = ("map_codec", "latent_codec", "deep_jscc")  # whose decoders the receiver runs
# The photo codec's parts an int8 receiver runs in ONNX Runtime: quantized (True) or in float (False).
PHOTO_PARTS = {("latent_diffusion", "head"): False, ("latent_diffusion", "net"): True, ("photo_vae", "decoder"): True}
# The distilled student's (diffusion_student.py): quantized as the diffusion decoder, calibrated on its own inputs.
STUDENT_PARTS = {("diffusion_student", "net"): True}
INT8_PARTS = {**PHOTO_PARTS, **STUDENT_PARTS}  # what an int8 receiver runs in ONNX Runtime beside ARTIFACTS
UNET_PARTS = (("latent_diffusion", "net"), ("diffusion_student", "net"))  # two graphs each, as the UNet artifacts
# The command that makes a model's int8 parts again.
QUANTIZE_FIXES = {"latent_diffusion": "semcom quantize --latent-diffusion-only",
                  "photo_vae": "semcom quantize --latent-diffusion-only",
                  "diffusion_student": "semcom quantize --student-only"}
# The scene codecs' (semantic, gesco) diffusion decoder, `--decoder`: the shipped UNet at the sampler's steps, or
# its distilled student (tools/training/specs/diffusion_student.py), trained for one DDIM step from the same start.
DIFFUSION_DECODERS = {"diffusion": "diffusion", "student": "diffusion_student"}
# The student's sampling, whatever the receiver's sampler flags: one deterministic unguided step (its teacher's
# steps and guidance are distilled into it) from the start it was trained at (the defaults': the channel's, t >= 800).
STUDENT_SAMPLER = SamplerSettings(steps=1)


def modulation_names(count: int) -> tuple[str, ...]:
    """The names of the condition graph's outputs, the step graph's inputs after x and t."""
    return tuple(f"modulation_{i}" for i in range(count))


def condition_name(name: str) -> str:
    """The condition graph of UNet artifact `name`."""
    return f"{name}_condition"


@dataclass(frozen=True)
class DecoderRuntime:
    """precision: one of precision.PRECISIONS (resolved: "auto" is the server's to settle).
    sampler: the diffusion decoder's sampling. weights_dir: where the decoders' weights and ONNX
    artifacts are read from (a test or benchmark may point it elsewhere; the encode side and the
    codecs' model versions read the shipped folder). device: one of device.DEVICES (resolved: the
    server settles "auto"), where the networks run; the sampler's numpy stays on the CPU."""

    precision: str = "fp32"
    sampler: SamplerSettings = field(default_factory=SamplerSettings)
    weights_dir: Path = WEIGHTS_DIR
    device: str = "cpu"
    diffusion_decoder: str = "diffusion"  # one of DIFFUSION_DECODERS: the scene codecs' (--decoder)

    def __post_init__(self):
        precisions.check(self.precision)
        if self.device not in devices.DEVICES:
            raise ValueError(f"device {self.device!r}: expected one of {', '.join(devices.DEVICES)} (resolved)")
        if self.diffusion_decoder not in DIFFUSION_DECODERS:
            raise ValueError(f"--decoder {self.diffusion_decoder!r}: expected one of {', '.join(DIFFUSION_DECODERS)}")

    @property
    def diffusion_model(self) -> str:
        """The trained model the scene codecs' diffusion decoder is."""
        return DIFFUSION_DECODERS[self.diffusion_decoder]

    @cached_property
    def diffusion_sampler(self) -> SamplerSettings:
        """How the scene codecs sample: the receiver's settings, or the student's (STUDENT_SAMPLER; the condition
        cache as the receiver's)."""
        if self.diffusion_decoder == "diffusion":
            return self.sampler
        return replace(STUDENT_SAMPLER, condition_cache=self.sampler.condition_cache)

    def decoder(self, model: str, condition: adapters.Condition | None = None) -> NumpyFunction:
        """The decoder part of trained model `model` (one of DECODED_MODELS): received planes -> output. With a
        condition (an adapted frame's, codecs/adapting.py), the decoder with its adapters merged for its band."""
        if condition is not None:
            if self.precision == "int8":  # the low-rank branch in the graph, fed the band (merged: torch's only)
                graph = self._adapter_graph(adapted_decoder_name(model), model)
                band = condition.band()
                return lambda planes: graph(planes, np.array([[band.snr_db, band.bandwidth_ratio]], np.float32))
            return self.torch_function(self._adapters(model).network("decoder", condition))
        if self.precision == "int8":
            return load_decoder(model, self.weights_dir, self.device)
        return self.network(model, "decoder")

    def adapter_gate(self, model: str, condition: adapters.Condition) -> np.ndarray:
        """The expert weights [K] of model `model`'s adapted decoder at `condition`'s band (an int8 receiver's
        from its gate graph: no torch)."""
        band = condition.band()
        if self.precision == "int8":
            graph = self._adapter_graph(adapter_gate_name(model), model)
            return graph(np.array([[band.snr_db, band.bandwidth_ratio]], np.float32))[0]
        return self._adapters(model).gate("decoder", band)

    def load_adapters(self, model: str) -> None:
        """Loads model `model`'s shipped adapters as this runtime runs them (at int8 their two graphs)."""
        if self.precision == "int8":
            for name in (adapted_decoder_name(model), adapter_gate_name(model)):
                self._adapter_graph(name, model)
        else:
            self._adapters(model)

    def _adapters(self, model: str) -> adapters.AdapterSet:
        try:
            return adapters.load(model, self.weights_dir)
        except store.WeightsMissing as error:
            raise FailedPrecondition(f"adapters: {error}") from error

    def _adapter_graph(self, name: str, model: str) -> OnnxModel:
        """An int8 receiver's ONNX graph `name` of model `model`'s adapters, checked against the adapters' file."""
        source = adapters.adapter_name(model)
        try:
            return _session(name, source, self.weights_dir, store.card_stamp((name, source), self.weights_dir),
                            "semcom quantize --decoders-only", self.device)
        except (store.WeightsMissing, ValueError) as error:
            raise FailedPrecondition(f"adapters at int8: {error}") from error

    def network(self, model: str, part: str) -> NumpyFunction:
        """Part `part` of trained model `model` as a numpy function: in torch at fp32 or bf16 (a diffusion UNet's a
        Conditioned one, torch_unet); at int8, its ONNX model (INT8_PARTS; the JSCC decoders' and the diffusion
        UNet's are decoder() and noise_predictor()'s)."""
        if self.precision == "int8":
            if (model, part) not in INT8_PARTS:
                raise Unavailable(f"{model}'s {part} has no int8 artifact: run it at fp32 or bf16")
            try:
                return load_part(model, part, self.weights_dir, device=self.device)
            except (store.WeightsMissing, ValueError) as error:
                # That model's codecs alone: the receiver serves the others, and their frames get UNAVAILABLE.
                raise Unavailable(f"{model} at int8: {error}") from error
        module = store.load(model, self.weights_dir)[part]
        # A diffusion UNet (diffusion.py) can cache its condition's work across a sampler's steps.
        return self.torch_unet(module) if hasattr(module, "modulations") else self.torch_function(module)

    def noise_predictor(self, model: str | None = None) -> NumpyFunction:
        """Model `model`'s diffusion UNet (its part "net"; default the scene codecs', diffusion_model):
        (x_t [B, C, H, W] float32, t [B] int64, condition)
        -> predicted noise, float32 (a v-predicting UNet's output turned into the noise it implies). At int8,
        the quantized artifact (runtime.ARTIFACTS for `diffusion`, INT8_PARTS' for the others).
        With the sampler's condition_cache, a Conditioned predictor: the samplers compute the condition's
        share of the network once per frame (both models, at every precision)."""
        model = model or self.diffusion_model
        if model != "diffusion" and model in DIFFUSION_DECODERS.values():  # a student of the shipped teacher?
            store.check_trained_on(model, self.weights_dir)
        if self.precision == "int8" and model == "diffusion":  # its artifacts' names predate INT8_PARTS'
            network = load_artifact(artifact_name(), self.weights_dir, self.device)
        else:
            network = self.network(model, "net")
        prediction = store.card(model, self.weights_dir)["architecture"]["net"]["kwargs"].get("prediction", "epsilon")
        predictor = predicting_noise(network, prediction, CosineSchedule())
        return predictor if self.sampler.condition_cache else uncached(predictor)

    def torch_unet(self, net) -> Conditioned:
        """A SemanticDiffusionUNet as a Conditioned numpy predictor: its modulations once per binding, then its
        denoising steps (the same output as its forward, diffusion.py); called with the condition, its forward."""
        if self.device != "cpu":
            net = _on_device(net, self.device)
        return two_stage(self.torch_function(lambda condition: tuple(net.modulations(condition)), tensors_out=True),
                         self.torch_function(lambda x, t, *modulations: net.denoise(x, t, modulations)),
                         whole=self.torch_function(net))

    def load(self, models: tuple[str, ...]) -> None:
        """Loads what decoder() and noise_predictor() will run, ahead of the first frame."""
        for model in models:
            if model == "diffusion":  # the scene codecs' diffusion decoder: this runtime's (the student's too)
                self.noise_predictor()
            else:
                self.decoder(model)

    def autocast(self):
        """A context in which torch model calls run at this precision."""
        if self.precision == "bf16":
            import torch  # not before: an int8 receiver runs without torch

            return torch.autocast(self.device, dtype=torch.bfloat16)
        return contextlib.nullcontext()

    def torch_function(self, module, tensors_out: bool = False) -> NumpyFunction:
        """A torch module as a numpy function: arrays (or tensors) in, float32 array (or a tuple of them) out; no
        grad, autocast at this precision. tensors_out: the output tensors as they are, in autocast's dtype (the
        UNet's cached maps: a bf16 map widened to float32 would change the step's bf16 products)."""
        import torch

        if self.device != "cpu" and isinstance(module, torch.nn.Module):  # functions of one: torch_unet moves it
            module = _on_device(module, self.device)

        def run(*arrays):
            with torch.no_grad(), self.autocast():
                output = module(*(torch.from_numpy(a).to(self.device) if isinstance(a, np.ndarray) else a
                                  for a in arrays))
            if tensors_out:
                return output
            if isinstance(output, tuple):  # a network with several outputs (a mean and a log-variance)
                return tuple(part.float().cpu().numpy() for part in output)
            return output.float().cpu().numpy()

        return run


@cache
def _on_device(module, device: str):
    """A copy of a (shared, cached) torch module on `device`: the CPU one stays where the others use it. A module
    already there is itself (torch_unet's, whose forward torch_function runs too)."""
    import copy

    if all(parameter.device.type == device for parameter in module.parameters()):
        return module
    return copy.deepcopy(module).to(device)


def decoder_name(model: str) -> str:
    return f"{model}_decoder"


def adapted_decoder_name(model: str) -> str:
    """An int8 receiver's graph of model `model`'s decoder with its adapters (tools/quantize.py export_adapters)."""
    return f"{adapters.adapter_name(model)}_decoder"


def adapter_gate_name(model: str) -> str:
    return f"{adapters.adapter_name(model)}_gate"


def _for_cpu(full_range: str, seven_bit: str, capabilities: cpu.CpuCapabilities | None) -> str:
    """Of an int8 model's two artifacts, the one this CPU (or `capabilities`) runs (the module doc says why)."""
    return full_range if (capabilities or cpu.detect()).int8_dot_product else seven_bit


def artifact_name(capabilities: cpu.CpuCapabilities | None = None) -> str:
    """The int8 UNet artifact made for this CPU (or `capabilities`)."""
    return _for_cpu(NAME, NAME_7BIT, capabilities)


def part_names(model: str, part: str) -> tuple[str, ...]:
    """The ONNX models made of part (model, part) (INT8_PARTS): if quantized, one per ISA family (the
    full-range one first, as ARTIFACTS), else one in float."""
    if not INT8_PARTS[model, part]:
        return (f"{model}_{part}",)
    return f"{model}_{part}_int8", f"{model}_{part}_int8_7bit"


def part_name(model: str, part: str, capabilities: cpu.CpuCapabilities | None = None) -> str:
    """The ONNX model of part (model, part) (INT8_PARTS) that this CPU (or `capabilities`) runs."""
    names = part_names(model, part)
    return names[0] if len(names) == 1 else _for_cpu(*names, capabilities)


def initializer_bytes(model_path: Path) -> int:
    """Bytes of an ONNX model's stored constants: weights, biases, scales and zero points."""
    import onnx
    from onnx import numpy_helper

    graph = onnx.load(str(model_path)).graph
    return sum(numpy_helper.to_array(tensor).nbytes for tensor in graph.initializer)


@dataclass
class OnnxModel:
    """A shipped ONNX model as a numpy function: arrays in, in the graph's input order, its output (or a tuple
    of its outputs) out.
    The int8 UNet's step graph: (x_t [B, 3, H, W] float32, t [B] int64, *modulations) -> its prediction (noise or
    velocity); its condition graph: condition -> the modulations (OnnxUNet)."""

    session: object  # onnxruntime.InferenceSession
    path: Path
    card: dict  # its model card: source weights, and for the UNet its calibration, what stays in float, bytes

    @cached_property
    def input_names(self) -> list[str]:
        return [tensor.name for tensor in self.session.get_inputs()]

    def __call__(self, *arrays: np.ndarray) -> np.ndarray | tuple[np.ndarray, ...]:
        outputs = self.session.run(None, dict(zip(self.input_names, arrays, strict=True)))
        return outputs[0] if len(outputs) == 1 else tuple(outputs)  # several: a mean and a log-variance

    @property
    def weight_bytes(self) -> int:
        return initializer_bytes(self.path)


def session_for(path: Path, threads: int | None = None, device: str = "cpu"):
    import onnxruntime

    options = onnxruntime.SessionOptions()
    if threads:
        options.intra_op_num_threads = threads  # default: ORT's, one per physical core (as torch's)
    options.log_severity_level = 3  # errors only: ORT warns about optimizations it could not apply
    # No busy-waiting between runs: the sampler's numpy ops and the server's threads need the cores
    # in between (measured: 60 instead of 70 ms per decoded image on 2 cores).
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    # No memory pattern: ORT would plan and keep one buffer per input shape, and the receiver's batches
    # come in every size from 1 to --max-batch-size. Measured on the int8 UNet, batches 1..8 in turn:
    # peak RSS 278 instead of 495 MiB, at the same speed (10.5 ms per image).
    options.enable_mem_pattern = False
    return onnxruntime.InferenceSession(str(path), options, providers=devices.onnx_providers(device))


class OnnxUNet(Conditioned):
    """An int8 UNet (the diffusion decoder's artifact, or the photo codec's net) as its two ONNX graphs, a
    Conditioned predictor: the condition graph once per binding, the step graph at every step. Its card and
    path are the step graph's. Unlike the torch UNet it has no one-pass graph: uncached, a call still holds all
    the condition's maps while its step runs."""

    def __init__(self, condition: OnnxModel, step: OnnxModel):
        super().__init__(two_stage(condition, step).bind)
        self.condition, self.step = condition, step
        self.card, self.path = step.card, step.path

    @property
    def weight_bytes(self) -> int:
        return self.condition.weight_bytes + self.step.weight_bytes


def load_artifact(name: str, weights_dir: Path = WEIGHTS_DIR, device: str = "cpu") -> OnnxUNet:
    """Int8 UNet artifact `name` (one of ARTIFACTS), both graphs; checks their sha256 and that they were made
    from the shipped fp32 weights. Cached per version of the cards (store.card_stamp)."""
    return _load_unet(name, "diffusion", weights_dir, device)


def load_decoder(model: str, weights_dir: Path = WEIGHTS_DIR, device: str = "cpu") -> OnnxModel:
    """Model `model`'s decoder (one of DECODED_MODELS) in float ONNX, checked like `load_artifact`."""
    name = decoder_name(model)
    return _session(name, model, weights_dir, store.card_stamp((name, model), weights_dir), device=device)


def load_part(model: str, part: str, weights_dir: Path = WEIGHTS_DIR,
              capabilities: cpu.CpuCapabilities | None = None, device: str = "cpu") -> OnnxModel | OnnxUNet:
    """Part (model, part)'s ONNX model (INT8_PARTS) for this CPU (or `capabilities`), checked like
    `load_artifact`; a UNet (UNET_PARTS) as its two graphs."""
    name, fix = part_name(model, part, capabilities), QUANTIZE_FIXES[model]
    if (model, part) in UNET_PARTS:
        return _load_unet(name, model, weights_dir, device, fix)
    return _session(name, model, weights_dir, store.card_stamp((name, model), weights_dir), fix, device)


def load_int8(weights_dir: Path = WEIGHTS_DIR, capabilities: cpu.CpuCapabilities | None = None,
              device: str = "cpu") -> OnnxUNet:
    """Every ONNX model an int8 receiver needs on this CPU (or `capabilities`), checked now (a missing or
    stale one raises, naming the fix); returns the UNet. The photo codec's (PHOTO_PARTS) are not among them:
    without them that codec alone is unavailable (its load says why), as it is without its torch weights."""
    for model in DECODED_MODELS:
        load_decoder(model, weights_dir, device)
    return load_artifact(artifact_name(capabilities), weights_dir, device)


def _load_unet(name: str, source_model: str, weights_dir: Path, device: str, fix: str = "semcom quantize") -> OnnxUNet:
    """UNet `name`'s two graphs (its condition graph, then itself), each checked as _session checks."""
    return OnnxUNet(*(_session(graph, source_model, weights_dir, store.card_stamp((graph, source_model), weights_dir),
                               fix, device) for graph in (condition_name(name), name)))


@cache
def _session(name: str, source_model: str, weights_dir: Path, stamp: tuple, fix: str = "semcom quantize",
             device: str = "cpu") -> OnnxModel:
    description, path = store.checked_file(name, ".onnx", weights_dir, fix=fix)
    source = store.card(source_model, weights_dir)["sha256"]
    if description["source_sha256"] != source:
        raise ValueError(f"{path} was made from {source_model} weights {description['source_sha256'][:12]}, "
                         f"but the shipped ones are {source[:12]}: run `{fix}` again")
    return OnnxModel(session_for(path, device=device), path, description)
