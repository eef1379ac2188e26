"""`semcom quantize`: the int8 receiver's ONNX models, made once from the shipped fp32 weights:
the diffusion decoder post-training quantized to int8, and the JSCC decoders exported in float
(so that an int8 receiver runs on ONNX Runtime alone, without torch).

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
how much of the int8 model's noise-prediction error remains; that is how what
stays in float (FLOAT_OPS, FLOAT_MODULES) was chosen.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from semcom.channel_emulator.emulator import ChannelConfig, ChannelEmulator
from semcom.common import codecs
from semcom.common.codecs import generative
from semcom.common.data.datasets import SyntheticScenes
from semcom.common.models import precision, quantized, store
from semcom.receiver.pipeline import equalize_frame

from .bench import median_seconds

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
SENSITIVITY_OPS = ("Mul", "Add", "Sigmoid", "Gemm", "Concat", "Resize", "InstanceNormalization")
SENSITIVITY_MODULES = ("stem", "time_mlp", "down_blocks.0", "middle", "up_blocks.2", "out_norm", "out")


@dataclass
class QuantizeConfig:
    scenes: int = 64
    seed: int = 0
    ddim_steps: int = generative.SamplerSettings.steps
    float_ops: Sequence[str] = FLOAT_OPS
    float_modules: Sequence[str] = FLOAT_MODULES
    weights_dir: Path = field(default_factory=lambda: store.WEIGHTS_DIR)


def calibration_samples(scenes: int, seed: int,
                        ddim_steps: int = generative.SamplerSettings.steps) -> list[dict[str, np.ndarray]]:
    """The fp32 sampler's own UNet inputs on `scenes` received frames, one sample per model call."""
    if scenes < 1:
        raise ValueError(f"--scenes: {scenes}, need at least 1")
    rng = np.random.default_rng(seed)
    train = SyntheticScenes("train", 100_000)
    samples: list[dict[str, np.ndarray]] = []

    def record(x: np.ndarray, t: np.ndarray, condition: np.ndarray) -> None:
        samples.append({"x": x.copy(), "t": t.copy(), "condition": condition.copy()})

    with precision.using("fp32"):  # calibrate on the full-precision trajectories
        for index in tqdm(range(scenes), desc="calibration scenes", unit="scene"):
            image, _ = train[int(rng.integers(len(train)))]
            codec = codecs.get("gesco" if rng.random() < GESCO_SHARE else "semantic")
            config = ChannelConfig(model=str(rng.choice(CALIBRATION_CHANNELS)), snr_db=float(rng.uniform(*CALIBRATION_SNR_DB)),
                                   seed=int(rng.integers(2**31)), csi="perfect", equalizer="mmse")
            frame = codec.encode(image, codec.default_bandwidth_ratio, f"calibration-{seed}-{index}")
            received = equalize_frame(ChannelEmulator(config).apply(frame)[0])
            with generative.sampler_settings(replace(generative.current_sampler(), steps=ddim_steps)):
                codec.generate([codec.prepare(received)], observe=record)
    return samples


# What each artifact is for (models/quantized.py, README "Every x86 CPU").
WEIGHTS = {
    quantized.NAME: "int8, symmetric, per output channel, full range -127..127",
    quantized.NAME_7BIT: "int8, symmetric, per output channel, 7-bit range -64..64 (ORT reduce_range)",
}
CPUS = {
    quantized.NAME: "CPUs with int8 dot products (AVX-512 VNNI, AVX-VNNI, AMX): they accumulate u8 x s8 in int32",
    quantized.NAME_7BIT: "CPUs without VNNI (AVX2, AVX-512 without VNNI): their u8 x s8 kernels sum byte pairs "
                         "into a saturating int16, which full-range weights overflow",
}


def quantize_decoder(config: QuantizeConfig, command: str = "semcom quantize") -> dict[str, dict]:
    """Writes both int8 UNet artifacts (quantized.ARTIFACTS) and their cards into config.weights_dir, from one
    calibration; returns the cards by name."""
    started = time.perf_counter()
    net = store.load("diffusion", config.weights_dir)["net"]
    samples = calibration_samples(config.scenes, config.seed, config.ddim_steps)
    timesteps = sorted({int(s["t"][0]) for s in samples})
    cards = {}
    with tempfile.TemporaryDirectory() as folder:
        float_path = Path(folder) / "diffusion_fp32.onnx"
        export(net, float_path)
        fp32_bytes = quantized.initializer_bytes(float_path)
        for name in quantized.ARTIFACTS:
            out_path = config.weights_dir / f"{name}.onnx"
            quantized.quantize(float_path, out_path, samples, config.float_ops, config.float_modules,
                               seven_bit=name == quantized.NAME_7BIT)
            int8_bytes = quantized.initializer_bytes(out_path)
            cards[name] = {
                "model": name,
                "architecture": "SemanticDiffusionUNet (diffusion.card.json), W8A8 post-training quantized",
                "format": "ONNX QDQ, run by onnxruntime (CPUExecutionProvider)",
                "sha256": store.sha256_of(out_path),
                "source_sha256": store.card("diffusion", config.weights_dir)["sha256"],
                "for": CPUS[name],
                "quantization": {
                    "weights": WEIGHTS[name],
                    "activations": "uint8, asymmetric, per tensor, min/max over the calibration samples",
                    "float_ops": list(config.float_ops),
                    "float_modules": list(config.float_modules),
                    "why_float": "measured with `semcom quantize --sensitivity`: see the README's Fast receiver section",
                },
                "calibration": {
                    "command": command, "seed": config.seed, "scenes": config.scenes, "samples": len(samples),
                    "data": "synthetic train split scenes, drawn by the seed",
                    "channels": list(CALIBRATION_CHANNELS), "snr_db_uniform": list(CALIBRATION_SNR_DB),
                    "codecs": f"semantic, gesco ({GESCO_SHARE:.0%})",
                    "ddim_steps": config.ddim_steps,
                    "timesteps": f"{len(timesteps)} distinct, {timesteps[0]}..{timesteps[-1]}",
                },
                "weight_bytes": {"fp32": fp32_bytes, "int8": int8_bytes, "ratio": round(int8_bytes / fp32_bytes, 4)},
                "versions": _versions(),
            }
    for card in cards.values():
        card["wall_seconds"] = round(time.perf_counter() - started, 1)  # of the whole command, both artifacts
        quantized.write_card(config.weights_dir, card)
    return cards


def sensitivity(scenes: int = 16, seed: int = 0, weights_dir: Path | None = None) -> str:
    """The int8 noise-prediction error on held-out samples with each candidate op type or module left in
    float, alone and on top of the chosen FLOAT_OPS; and the step latency of each variant."""
    net = store.load("diffusion", weights_dir or store.WEIGHTS_DIR)["net"]
    calibration = calibration_samples(scenes, seed)
    held_out = calibration_samples(max(scenes // 2, 1), seed + 1)
    with torch.no_grad():
        references = [net(*(torch.from_numpy(s[name]) for name in quantized.INPUTS)).numpy() for s in held_out]
    power = float(np.mean([np.mean(r**2) for r in references]))
    variants = [((), ()), *(((op,), ()) for op in SENSITIVITY_OPS),
                *((FLOAT_OPS, (module,)) for module in SENSITIVITY_MODULES)]
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        float_path = Path(folder) / "fp32.onnx"
        export(net, float_path)
        for ops, modules in tqdm(variants, desc="sensitivity", unit="variant"):
            path = Path(folder) / "int8.onnx"
            quantized.quantize(float_path, path, calibration, ops, modules)
            session = quantized.session_for(path)
            error = float(np.mean([np.mean((session.run(None, s)[0] - r) ** 2) for s, r in zip(held_out, references)]))
            seconds = median_seconds(lambda: session.run(None, held_out[0]), 15, 1, "step")
            rows.append((" + ".join((*ops, *modules)) or "(all int8)", error / power, seconds,
                         quantized.initializer_bytes(path)))
    baseline = rows[0][1]
    lines = [f"int8 noise-prediction error, relative to the fp32 output's power, on {len(held_out)} held-out "
             f"sampler inputs (calibration: {len(calibration)} from {scenes} scenes); batch-1 step latency:",
             f"  {'kept in float':<22} {'rel. MSE':>9} {'of all-int8':>12} {'ms/step':>8} {'weight bytes':>13}"]
    lines += [f"  {name:<22} {error:9.5f} {error / baseline:11.0%} {1000 * seconds:8.1f} {size:13,d}"
              for name, error, seconds, size in rows]
    return "\n".join(lines)


def export(net: torch.nn.Module, path: Path) -> None:
    """The fp32 UNet as ONNX at the codecs' preset size."""
    condition_channels = net.num_classes + 3
    preset = codecs.get("semantic").preset
    quantized.export_unet(net, preset.height, preset.width, condition_channels, path)


def export_decoders(weights_dir: Path, command: str) -> None:
    """Each JSCC decoder the receiver runs as float32 ONNX (they are ~1 % of its compute: not quantized)."""
    semantic = codecs.get("semantic")
    # What each decoder receives, [C, h, w] symbol values (and as many reliabilities): the traced graph fixes it.
    features = {"map_codec": semantic.map_shape, "latent_codec": semantic.latent_shape,
                "deep_jscc": codecs.get("deep_jscc").feature_shape}
    for model in quantized.DECODED_MODELS:
        description = store.card(model, weights_dir)
        channels, height, width = features[model]
        example = (torch.zeros(1, 2 * channels, height, width),)
        decoder = store.load(model, weights_dir)["decoder"]
        path = weights_dir / f"{quantized.decoder_name(model)}.onnx"
        quantized.export_onnx(decoder, example, ("received",), path)
        quantized.write_card(weights_dir, {
            "model": quantized.decoder_name(model),
            "architecture": f"{description['architecture']['decoder']['class']} ({model}.card.json), float32",
            "format": "ONNX, run by onnxruntime (CPUExecutionProvider) in receivers with --precision int8",
            "sha256": store.sha256_of(path),
            "source_sha256": description["sha256"],
            "command": command,
            "versions": _versions(),
        })


def _versions() -> dict[str, str]:
    import onnx
    import onnxruntime

    return {"torch": torch.__version__, "onnx": onnx.__version__, "onnxruntime": onnxruntime.__version__}
