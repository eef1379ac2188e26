"""`semcom quantize`, the photo codec's part: the ONNX models an int8 receiver runs for
`latent_diffusion` (runtime.PHOTO_PARTS), made from the shipped fp32 weights.

The same W8A8 post-training quantization as the diffusion decoder's (tools/quantize.py: weights
int8 per output channel, activations uint8 per tensor, min/max ranges, the elementwise products
in float, one artifact per ISA family), calibrated the same way on the fp32 receiver's own inputs:
crops of the training photos (never the held-out Kodak ones) go through the transmitter, the
channel emulator (AWGN or Rayleigh, SNR uniform in [-5, 20] dB) and the fp32 decode at a k/n drawn
from those the codec sends; every input it feeds the head, the UNet (at each sampler step) and the
VAE decoder is a calibration sample of that network.

What is quantized, by measurement (`semcom bench receiver --codec latent_diffusion` prints it per
part; README, "The class-free photo codec"), on a 2-core AMD EPYC (AVX2 only, 7-bit weights), one
384x512 Kodak frame: the head in float ONNX took 62 ms, at int8 73 (its convolutions are small and
the quantize / dequantize around them cost more than they save), so it stays in float. The UNet
step runs 1.26x faster at int8 there; the VAE decoder no faster (0.98x: its full-size activations
are quantized and dequantized around the float products), but it is quantized for its weights (a
quarter) and for the CPUs with int8 dot products, which were not measured.

The calibration photos are 256x256 crops (ranges are per tensor, so a crop covers a photo's
statistics), so that a calibration pass through ORT's recorder, which keeps every intermediate
tensor of a sample, stays small.
"""

from __future__ import annotations

import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from semcom.channel_emulator.emulator import ChannelConfig
from semcom.common import codecs
from semcom.common.data.photos import load_photos
from semcom.common.models import runtime, store
from semcom.common.models.runtime import DecoderRuntime, NumpyFunction
from semcom.common.models.sampling import SamplerSettings

from . import quantize
from .chain import Chain

CODEC = "latent_diffusion"
CROP = 256
PHOTO_DATA = f"{CROP}x{CROP} crops of the training photos (`semcom data photos`), drawn by the seed"
# Each part's ONNX input and output names.
INPUTS = {("latent_diffusion", "head"): ("received",), ("latent_diffusion", "net"): runtime.INPUTS,
          ("photo_vae", "decoder"): ("latent",)}
OUTPUTS = {("latent_diffusion", "head"): ("mean", "log_variance")}
Samples = dict[tuple[str, str], list[tuple[np.ndarray, ...]]]


@dataclass(frozen=True)
class RecordingRuntime(DecoderRuntime):
    """The fp32 receiver's runtime, keeping every input it feeds each network (a calibration sample)."""

    inputs: Samples = field(default_factory=dict)

    def network(self, model: str, part: str) -> NumpyFunction:
        run = super().network(model, part)

        def recorded(*arrays: np.ndarray):
            self.inputs.setdefault((model, part), []).append(tuple(array.copy() for array in arrays))
            return run(*arrays)

        return recorded


def calibration_samples(frames: int, seed: int, ddim_steps: int = SamplerSettings.steps,
                        sampler: str = SamplerSettings.method, weights_dir: Path = store.WEIGHTS_DIR) -> Samples:
    """Each photo part's inputs from the fp32 decode (with the weights in `weights_dir`) of `frames` received
    crops of the training photos."""
    if frames < 1:
        raise ValueError(f"--photo-frames: {frames}, need at least 1")
    rng = np.random.default_rng(seed)
    photos = load_photos("train")
    codec = codecs.get(CODEC)
    ratios = [ratio for ratio in (1 / 48, 1 / 64, 1 / 96, 1 / 192) if codec.accepts_ratio(ratio)]
    recording = RecordingRuntime("fp32", SamplerSettings(steps=ddim_steps, method=sampler), weights_dir)
    for index in tqdm(range(frames), desc="calibration photos", unit="frame"):
        photo = photos[int(rng.integers(len(photos)))]
        height, width = min(photo.shape[0], CROP), min(photo.shape[1], CROP)
        top, left = rng.integers(photo.shape[0] - height + 1), rng.integers(photo.shape[1] - width + 1)
        chain = Chain(ChannelConfig(model=str(rng.choice(quantize.CALIBRATION_CHANNELS)),
                                    snr_db=float(rng.uniform(*quantize.CALIBRATION_SNR_DB)),
                                    seed=int(rng.integers(2**31)), csi="perfect", equalizer="mmse"), recording)
        chain.send(photo[top:top + height, left:left + width], CODEC, float(rng.choice(ratios)),
                   frame_id=f"calibration-{seed}-{index}")
    return recording.inputs


def quantize_photo_codec(config: quantize.QuantizeConfig, frames: int, command: str = "semcom quantize") -> dict:
    """Writes every ONNX model of runtime.PHOTO_PARTS and its card into config.weights_dir from one
    calibration of `frames` photos; returns the cards by name."""
    started = time.perf_counter()
    samples = calibration_samples(frames, config.seed, config.ddim_steps, config.sampler, config.weights_dir)
    cards = {}
    with tempfile.TemporaryDirectory() as temporary:
        folder = Path(temporary)
        for (model, part), quantized in runtime.PHOTO_PARTS.items():
            net = store.load(model, config.weights_dir)[part]
            names, recorded = INPUTS[model, part], samples[model, part]
            if (model, part) in runtime.UNET_PARTS:  # two graphs, as the diffusion decoder's (condition caching)
                cards.update(unet_cards(model, part, net, [dict(zip(names, s)) for s in recorded], folder, config,
                                        frames, command, PHOTO_DATA))
                continue
            float_path = folder / f"{model}_{part}.onnx"
            quantize.export_onnx(net, tuple(torch.from_numpy(array) for array in recorded[0]), names, float_path,
                                 any_size=True, output_names=OUTPUTS.get((model, part), ("output",)))
            for name, family in zip(runtime.part_names(model, part), runtime.ARTIFACTS):
                out_path = config.weights_dir / f"{name}.onnx"
                if quantized:  # part_names, as ARTIFACTS: the full-range model, then the 7-bit one
                    quantize.quantize(float_path, out_path, [dict(zip(names, s)) for s in recorded], config.float_ops,
                                      _float_modules(part, config), seven_bit=family == runtime.NAME_7BIT)
                else:
                    out_path.write_bytes(float_path.read_bytes())
                cards[name] = _card(name, model, part, out_path, float_path, family if quantized else None, config,
                                    len(recorded), frames, command, PHOTO_DATA)
    for card in cards.values():
        card["wall_seconds"] = round(time.perf_counter() - started, 1)  # of the whole calibration and all parts
        quantize.write_card(config.weights_dir, card)
    return cards


def unet_cards(model: str, part: str, net, recorded: list[dict[str, np.ndarray]], folder: Path,
               config: quantize.QuantizeConfig, frames: int, command: str, data: str) -> dict[str, dict]:
    """A UNet's two graphs per ISA family (quantize.quantize_unet), written into config.weights_dir, and their
    cards; recorded: its inputs in `frames` decodes of calibration data `data` (its description)."""
    names = runtime.part_names(model, part)
    quantized = quantize.quantize_unet(net, recorded, names, folder, config)
    cards = {}
    for name, family in zip(names, runtime.ARTIFACTS):
        condition_name = runtime.condition_name(name)
        condition_path, step_path = quantized.paths(name)
        condition = cards[condition_name] = _card(condition_name, model, part, condition_path, None, family, config,
                                                  len(recorded), frames, command, data)
        condition["quantization"]["float_modules"] = quantized.condition_modules
        step = cards[name] = _card(name, model, part, step_path, None, family, config, len(recorded), frames, command,
                                   data)
        shared = quantized.step_card(name)
        step.update({**shared, "quantization": {**step["quantization"], "float_ops": [], **shared["quantization"]}})
    return cards


def _card(name: str, model: str, part: str, path: Path, float_path: Path | None, family: str | None,
          config: quantize.QuantizeConfig, samples: int, frames: int, command: str, data: str) -> dict:
    """family: the ISA family (runtime.ARTIFACTS) whose quantization the model has; None: in float. float_path: the
    float model its weight bytes are compared with (None: the caller's to fill in)."""
    source, quantized = store.card(model, config.weights_dir), family is not None
    card = {
        "model": name,
        "architecture": f"{source['architecture'][part]['class']} ({model}.card.json), "
                        + ("W8A8 post-training quantized" if quantized else "float32 (int8 was slower: module doc)"),
        "format": "ONNX" + (" QDQ" if quantized else "") + ", run by onnxruntime (CPUExecutionProvider) in "
                  "receivers with --precision int8",
        "sha256": store.sha256_of(path),
        "source_sha256": source["sha256"],
        "command": command,
        "versions": quantize.versions(),
    }
    if quantized:
        card["for"] = quantize.CPUS[family]
        card["quantization"] = {
            "weights": quantize.WEIGHTS[family],
            "activations": quantize.ACTIVATIONS,
            "float_ops": list(config.float_ops),
            "float_modules": list(_float_modules(part, config)),
        }
        card["calibration"] = {
            "seed": config.seed, "frames": frames, "samples": samples,
            "data": data,
            "channels": list(quantize.CALIBRATION_CHANNELS), "snr_db_uniform": list(quantize.CALIBRATION_SNR_DB),
            "ddim_steps": config.ddim_steps, "sampler": config.sampler,
        }
        if float_path is not None:
            card["weight_bytes"] = quantize.weight_bytes(runtime.initializer_bytes(float_path), path)
    if (model, part) == ("latent_diffusion", "head"):
        # The receiver's latent scale, which an int8 receiver (without torch) cannot read from the .pt.
        card["latent_scale"] = float(store.load(model, config.weights_dir)[part].latent_scale)
    return card


def _float_modules(part: str, config: quantize.QuantizeConfig) -> tuple[str, ...]:
    """The UNet keeps the diffusion decoder's float modules (the same class: its stem sees x_t directly); the
    VAE decoder and the head have none of those modules."""
    return tuple(config.float_modules) if part == "net" else ()
