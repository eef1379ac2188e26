"""The receiver's networks as numpy functions, run at the current precision.

The decode paths of the codecs are numpy; they get each network from here:

* fp32 and bf16: the trained torch modules (bf16 under CPU autocast);
* int8: ONNX Runtime, the diffusion UNet quantized to int8 and the JSCC
  decoders exported in float, both made by `semcom quantize`. An int8
  receiver so never imports torch, which is most of a receiver process's
  memory (README, "Fast receiver").
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from . import precision, quantized, store

NumpyFunction = Callable[..., np.ndarray]


def decoder(model: str) -> NumpyFunction:
    """The decoder part of trained model `model` (one of quantized.DECODED_MODELS): received planes -> output."""
    if precision.current() == "int8":
        return quantized.load_decoder(model)
    return torch_function(store.load(model)["decoder"])


def noise_predictor() -> NumpyFunction:
    """The diffusion UNet: (x_t [B, 3, H, W] float32, t [B] int64, condition) -> predicted noise, float32."""
    if precision.current() == "int8":
        return quantized.load()
    return torch_function(store.load("diffusion")["net"])


def load(models: tuple[str, ...]) -> None:
    """Loads what decoder() and noise_predictor() will run at the current precision, ahead of the first frame."""
    for model in models:
        if precision.current() != "int8":
            store.load(model)
        elif model == "diffusion":
            quantized.load()
        else:
            quantized.load_decoder(model)


def torch_function(module) -> NumpyFunction:
    """A torch module as a numpy function: arrays in, float32 array out; no grad, autocast at the current precision."""
    import torch

    def run(*arrays: np.ndarray) -> np.ndarray:
        with torch.no_grad(), precision.autocast():
            return module(*(torch.from_numpy(array) for array in arrays)).float().numpy()

    return run
