"""The receiver's ONNX Runtime models: the diffusion decoder in int8, executed
with real integer kernels, and the small JSCC decoders in float, so that an
int8 receiver runs without torch (models/runtime.py).

Post-training quantization in the Q-Diffusion / Q-GESCO way, W8A8: weights
int8 symmetric per output channel, activations uint8 per tensor with ranges
calibrated (min/max) on the full-precision sampler's own inputs, collected
across timesteps, channel models, SNRs and both generative codecs
(`semcom quantize`, tools/quantize.py). The runtime is ONNX Runtime's QDQ
format: its graph optimizer fuses DequantizeLinear -> op -> QuantizeLinear
into QLinearConv / QLinearAdd / QLinearMul ..., which run on the CPU's
integer kernels. It was chosen by measurement over PyTorch's x86 (FX) quantized
backend, which is deprecated and was slower here (README, "Fast receiver").

One artifact per ISA family, chosen at start by the CPU (`artifact_name`):
CPUs with int8 dot products (AVX-512 VNNI, AVX-VNNI, AMX) accumulate u8 x s8
products in int32 and run the full-range weights (diffusion_int8.onnx); CPUs
without them (AVX2, AVX-512 without VNNI) multiply with vpmaddubsw, which sums
each byte pair into a saturating int16: 255 * 127 * 2 overflows it (measured:
a dB lost), so they run 7-bit weights (-64..64, ORT's reduce_range; 255 * 64 * 2
fits), diffusion_int8_7bit.onnx. The 7-bit weights would cost the VNNI
machines 0.2 dB (README, "Every x86 CPU"), hence two artifacts, not one.

The artifacts (common/weights/diffusion_int8*.onnx, <model>_decoder.onnx and
their cards) are made once, by `semcom quantize`, and loaded at start; each
card names the torch weights it was made from, and a stale artifact is refused
rather than silently used. torch is imported only to export.
"""

from __future__ import annotations

import json
import logging
import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import cache, cached_property
from pathlib import Path

import numpy as np

from .. import cpu
from .store import WEIGHTS_DIR, card, card_stamp, checked_file

NAME = "diffusion_int8"  # for CPUs with int8 dot products (VNNI, AMX): full-range 8-bit weights
NAME_7BIT = "diffusion_int8_7bit"  # for CPUs without: 7-bit weights, which their 16-bit pair sums cannot overflow
ARTIFACTS = (NAME, NAME_7BIT)
INPUTS = ("x", "t", "condition")
DECODED_MODELS = ("map_codec", "latent_codec", "deep_jscc")  # whose decoders the receiver runs


def decoder_name(model: str) -> str:
    return f"{model}_decoder"


def export_onnx(net, example: tuple, input_names: Sequence[str], path: Path) -> None:
    """A torch module as an ONNX graph, its inputs and output ("output") batch-dynamic (the receiver batches)."""
    import torch

    batch = {0: "batch"}
    with warnings.catch_warnings():
        # The TorchScript exporter (the dynamo one would need onnxscript too) warns that it is
        # deprecated, and that the image size becomes a constant: it is, by design.
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.simplefilter("ignore", torch.jit.TracerWarning)
        torch.onnx.export(net, example, str(path), input_names=list(input_names), output_names=["output"],
                          opset_version=17, dynamic_axes={name: batch for name in (*input_names, "output")},
                          dynamo=False)


def export_unet(net, height: int, width: int, condition_channels: int, path: Path) -> None:
    """The fp32 UNet as ONNX, (x, t, condition) -> noise."""
    import torch

    example = (torch.zeros(1, 3, height, width), torch.zeros(1, dtype=torch.long),
               torch.zeros(1, condition_channels, height, width))
    export_onnx(net, example, INPUTS, path)


def nodes_of(model_path: Path, op_types: Sequence[str] = (), modules: Sequence[str] = ()) -> list[str]:
    """ONNX node names of the given op types ("Mul", ...) or in the given torch modules ("out", "time_mlp", ...)."""
    import onnx

    graph = onnx.load(str(model_path)).graph
    return [node.name for node in graph.node
            if node.op_type in op_types or any(node.name.startswith(f"/{prefix}/") for prefix in modules)]


def artifact_name(capabilities: cpu.CpuCapabilities | None = None) -> str:
    """The int8 UNet artifact made for this CPU (or `capabilities`)."""
    return NAME if (capabilities or cpu.detect()).int8_dot_product else NAME_7BIT


def quantize(float_path: Path, out_path: Path, samples: Iterable[dict[str, np.ndarray]],
             float_ops: Sequence[str] = (), float_modules: Sequence[str] = (), seven_bit: bool = False) -> None:
    """W8 per channel / A8 per tensor QDQ model from `float_path`, activation ranges from `samples`.

    float_ops, float_modules: ONNX op types and torch modules that stay in float
    (a measured choice, see tools/quantize.py). seven_bit: weights in -64..64, for CPUs without VNNI.
    """
    from onnxruntime.quantization import (CalibrationDataReader, CalibrationMethod, QuantFormat, QuantType,
                                          quantize_static)
    from onnxruntime.quantization.shape_inference import quant_pre_process

    class Reader(CalibrationDataReader):
        def __init__(self):
            self._samples = iter(samples)

        def get_next(self):
            return next(self._samples, None)

    prepared = out_path.with_suffix(".pre.onnx")
    quant_pre_process(str(float_path), str(prepared))  # shape inference and folding, as ORT recommends
    # ORT's quantizer logs a warning per calibration pass for each 1-D GroupNorm constant it cannot
    # quantize per channel (it leaves them in float, which is right): hundreds of identical lines.
    logging.disable(logging.WARNING)
    try:
        quantize_static(
            str(prepared), str(out_path), Reader(), quant_format=QuantFormat.QDQ, per_channel=True,
            activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8, calibrate_method=CalibrationMethod.MinMax,
            reduce_range=seven_bit,
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


def initializer_bytes(model_path: Path) -> int:
    """Bytes of the model's stored constants: weights, biases, scales and zero points."""
    import onnx
    from onnx import numpy_helper

    graph = onnx.load(str(model_path)).graph
    return sum(numpy_helper.to_array(tensor).nbytes for tensor in graph.initializer)


@dataclass
class OnnxModel:
    """A shipped ONNX model as a numpy function: arrays in, in the graph's input order, its output out.
    The int8 UNet: (x_t [B, 3, H, W] float32, t [B] int64, condition) -> predicted noise."""

    session: object  # onnxruntime.InferenceSession
    path: Path
    card: dict  # its model card: source weights, and for the UNet its calibration, what stays in float, bytes

    @cached_property
    def input_names(self) -> list[str]:
        return [tensor.name for tensor in self.session.get_inputs()]

    def __call__(self, *arrays: np.ndarray) -> np.ndarray:
        return self.session.run(None, dict(zip(self.input_names, arrays, strict=True)))[0]

    @property
    def weight_bytes(self) -> int:
        return initializer_bytes(self.path)


def session_for(path: Path, threads: int | None = None):
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
    return onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def load(weights_dir: Path = WEIGHTS_DIR) -> OnnxModel:
    """The shipped int8 UNet made for this CPU (artifact_name), checked like load_artifact."""
    return load_artifact(artifact_name(), weights_dir)


def load_artifact(name: str, weights_dir: Path = WEIGHTS_DIR) -> OnnxModel:
    """Int8 UNet artifact `name` (one of ARTIFACTS); checks its sha256 and that it was made from the shipped
    fp32 weights. Cached per version of both cards (store.card_stamp)."""
    return _session(name, "diffusion", weights_dir, card_stamp((name, "diffusion"), weights_dir))


def load_decoder(model: str, weights_dir: Path = WEIGHTS_DIR) -> OnnxModel:
    """Model `model`'s decoder (one of DECODED_MODELS) in float ONNX, checked like `load`."""
    name = decoder_name(model)
    return _session(name, model, weights_dir, card_stamp((name, model), weights_dir))


def load_all(weights_dir: Path = WEIGHTS_DIR, capabilities: cpu.CpuCapabilities | None = None) -> OnnxModel:
    """Every ONNX model an int8 receiver runs on this CPU (or `capabilities`), checked now (a missing or
    stale one raises, naming the fix); returns the UNet."""
    for model in DECODED_MODELS:
        load_decoder(model, weights_dir)
    return load_artifact(artifact_name(capabilities), weights_dir)


@cache
def _session(name: str, source_model: str, weights_dir: Path, stamp: tuple) -> OnnxModel:
    description, path = checked_file(name, ".onnx", weights_dir, fix="semcom quantize")
    source = card(source_model, weights_dir)["sha256"]
    if description["source_sha256"] != source:
        raise ValueError(f"{path} was made from {source_model} weights {description['source_sha256'][:12]}, "
                         f"but the shipped ones are {source[:12]}: run `semcom quantize` again")
    return OnnxModel(session_for(path), path, description)


def write_card(weights_dir: Path, description: dict) -> Path:
    path = weights_dir / f"{description['model']}.card.json"
    path.write_text(json.dumps(description, indent=2) + "\n")
    return path
