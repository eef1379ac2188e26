"""The diffusion decoder in int8, executed with real integer kernels.

Post-training quantization in the Q-Diffusion / Q-GESCO way, W8A8: weights
int8 symmetric per output channel, activations uint8 per tensor with ranges
calibrated (min/max) on the full-precision sampler's own inputs, collected
across timesteps, channel models, SNRs and both generative codecs
(`semcom quantize`, tools/quantize.py). The runtime is ONNX Runtime's QDQ
format: its graph optimizer fuses DequantizeLinear -> op -> QuantizeLinear
into QLinearConv / QLinearAdd / QLinearMul ..., which run on this CPU's
AVX-512 VNNI. It was chosen by measurement over PyTorch's x86 (FX) quantized
backend, which is deprecated and was slower here (README, "Fast receiver").

The artifact (common/weights/diffusion_int8.onnx and its card) is made once
and loaded at start; its card names the fp32 weights it was made from, and a
stale artifact is refused rather than silently used.
"""

from __future__ import annotations

import json
import logging
import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import numpy as np
import torch
from torch import nn

from .store import WEIGHTS_DIR, card, checked_file

NAME = "diffusion_int8"
INPUTS = ("x", "t", "condition")


def export_onnx(net: nn.Module, height: int, width: int, condition_channels: int, path: Path) -> None:
    """The fp32 UNet as an ONNX graph with a dynamic batch dimension (for the receiver's batches)."""
    example = (torch.zeros(1, 3, height, width), torch.zeros(1, dtype=torch.long),
               torch.zeros(1, condition_channels, height, width))
    batch = {0: "batch"}
    with warnings.catch_warnings():
        # The TorchScript exporter (the dynamo one would need onnxscript too) warns that it is
        # deprecated, and that the image size becomes a constant: it is, by design.
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.simplefilter("ignore", torch.jit.TracerWarning)
        torch.onnx.export(net, example, str(path), input_names=list(INPUTS), output_names=["noise"],
                          opset_version=17, dynamic_axes={name: batch for name in (*INPUTS, "noise")}, dynamo=False)


def nodes_of(model_path: Path, op_types: Sequence[str] = (), modules: Sequence[str] = ()) -> list[str]:
    """ONNX node names of the given op types ("Mul", ...) or in the given torch modules ("out", "time_mlp", ...)."""
    import onnx

    graph = onnx.load(str(model_path)).graph
    return [node.name for node in graph.node
            if node.op_type in op_types or any(node.name.startswith(f"/{prefix}/") for prefix in modules)]


def quantize(float_path: Path, out_path: Path, samples: Iterable[dict[str, np.ndarray]],
             float_ops: Sequence[str] = (), float_modules: Sequence[str] = ()) -> None:
    """W8 per channel / A8 per tensor QDQ model from `float_path`, activation ranges from `samples`.

    float_ops, float_modules: ONNX op types and torch modules that stay in float
    (a measured choice, see tools/quantize.py).
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
class Int8NoisePredictor:
    """Callable like the torch UNet: (x_t [B, 3, H, W], t [B], condition) -> predicted noise, float32."""

    session: object  # onnxruntime.InferenceSession
    path: Path
    card: dict  # its model card: calibration, what stays in float, bytes

    def __call__(self, x: torch.Tensor, t: torch.Tensor, condition: torch.Tensor) -> torch.Tensor:
        feed = {"x": x.float().numpy(), "t": t.long().numpy(), "condition": condition.float().numpy()}
        return torch.from_numpy(self.session.run(None, feed)[0])

    @property
    def weight_bytes(self) -> int:
        return initializer_bytes(self.path)


def session_for(path: Path, threads: int | None = None):
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = threads or torch.get_num_threads()  # the same cores torch would use
    options.log_severity_level = 3  # errors only: ORT warns about optimizations it could not apply
    # No busy-waiting between runs: the sampler's torch ops and the server's threads need the cores
    # in between (measured: 60 instead of 70 ms per decoded image on 2 cores).
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


@cache
def load(weights_dir: Path = WEIGHTS_DIR) -> Int8NoisePredictor:
    """The shipped int8 decoder; checks its sha256 and that it was made from the shipped fp32 weights."""
    description, path = checked_file(NAME, ".onnx", weights_dir, fix="semcom quantize")
    source = card("diffusion", weights_dir)["sha256"]
    if description["source_sha256"] != source:
        raise ValueError(f"{path} was quantized from diffusion weights {description['source_sha256'][:12]}, "
                         f"but the shipped ones are {source[:12]}: run `semcom quantize` again")
    return Int8NoisePredictor(session_for(path), path, description)


def write_card(weights_dir: Path, description: dict) -> Path:
    path = weights_dir / f"{NAME}.card.json"
    path.write_text(json.dumps(description, indent=2) + "\n")
    return path
