"""Runs under `qemu-x86_64 -cpu Haswell-noTSX` (an AVX2 CPU without VNNI, AVX-512 or native bf16), started by
test_every_cpu.py: ONNX Runtime reads the emulated CPUID and takes its AVX2 integer kernels.

    python emulated_cpu_probe.py INPUTS.npz OUTPUTS.npz MODEL.onnx [MODEL.onnx ...]

Writes to OUTPUTS.npz:
* "pairs_full", "pairs_7bit": a 1x1 int8 convolution whose exact output is 64, with 8-bit (127) and 7-bit
  (64, ORT's reduce_range maximum) weights on inputs of 255: u8 x s8 kernels without VNNI sum each byte
  pair into a saturating int16, which 255 * 127 * 2 overflows and 255 * 64 * 2 does not;
* "model<i>": each model's outputs, flattened into one array, on the arrays in INPUTS.npz (its graph inputs by name).
"""

from __future__ import annotations

import sys

import numpy as np
import onnxruntime
from onnx import TensorProto, helper, numpy_helper

CHANNELS = 64


def pair_sum_probe(weight: int) -> float:
    """Output of a QDQ 1x1 convolution of 64 input channels at 1.0 (u8 255) with all weights at 1.0 (s8 `weight`)."""
    scalar = lambda name, value, dtype: numpy_helper.from_array(np.array(value, dtype=dtype), name)  # noqa: E731
    initializers = [
        scalar("x_scale", 1 / 255, np.float32), scalar("x_zero", 0, np.uint8),
        numpy_helper.from_array(np.full((1, CHANNELS, 1, 1), weight, np.int8), "w_q"),
        scalar("w_scale", 1 / weight, np.float32),
        scalar("y_scale", 0.5, np.float32), scalar("y_zero", 0, np.uint8),
    ]
    nodes = [
        helper.make_node("QuantizeLinear", ["x", "x_scale", "x_zero"], ["x_q"]),
        helper.make_node("DequantizeLinear", ["x_q", "x_scale", "x_zero"], ["x_dq"]),
        helper.make_node("DequantizeLinear", ["w_q", "w_scale"], ["w_dq"]),
        helper.make_node("Conv", ["x_dq", "w_dq"], ["y_f"]),
        helper.make_node("QuantizeLinear", ["y_f", "y_scale", "y_zero"], ["y_q"]),
        helper.make_node("DequantizeLinear", ["y_q", "y_scale", "y_zero"], ["y"]),
    ]
    graph = helper.make_graph(nodes, "pair_sum_probe",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, CHANNELS, 4, 4])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 1, 4, 4])], initializers)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    session = onnxruntime.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return float(session.run(None, {"x": np.ones((1, CHANNELS, 4, 4), np.float32)})[0].mean())


def main(inputs_path: str, outputs_path: str, *models: str) -> None:
    inputs = dict(np.load(inputs_path))
    outputs = {"pairs_full": pair_sum_probe(127), "pairs_7bit": pair_sum_probe(64)}
    for index, path in enumerate(models):
        session = onnxruntime.InferenceSession(path, providers=["CPUExecutionProvider"])
        results = session.run(None, {i.name: inputs[i.name] for i in session.get_inputs()})
        outputs[f"model{index}"] = np.concatenate([result.ravel() for result in results])
    np.savez(outputs_path, **outputs)


if __name__ == "__main__":
    main(*sys.argv[1:])
