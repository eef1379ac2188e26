"""`semcom train MODEL`: trains one of the project's models on the embedded
synthetic scenes, with the channel in the loop where the model is a codec.

Progress bar, checkpoints every --checkpoint-every steps (model, optimizer,
schedule and random state) and --resume from the last one, bf16 autocast on
a CPU with native bf16 (fp32 on one without: emulated bf16 is ~100x slower), CUDA when available or asked for, fixed seeds. At the end the model is
evaluated on the validation split and shipped: <weights-dir>/<model>.pt and a
model card <model>.card.json (command, data, steps, wall time, metrics, sha256).
"""

from __future__ import annotations

import json
import math
import shlex
import sys
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F
from tqdm import tqdm

from semcom.common import cpu
from semcom.common.data.datasets import SyntheticScenes, materialize
from semcom.common.models import store
from semcom.common.models.jscc import from_symbols, to_symbols
from semcom.common.models.layers import count_flops, count_parameters
from semcom.common.presets import CPU, Preset
from semcom.common.quality import confusion_matrix, mean_iou, pixel_accuracy, psnr_db

from .channel_in_the_loop import ChannelInTheLoop

EVAL_SNRS_DB = (0.0, 10.0, 20.0)


@dataclass
class Spec:
    """What differs between models: parts, the loss of a batch, the evaluation."""

    architecture: dict[str, dict]
    loss: Callable  # (parts, images, labels, channel) -> loss tensor
    evaluate: Callable  # (parts, images, labels, seed) -> {metric: value}
    default_steps: int
    uses_channel: bool = True
    ema_decay: float | None = None  # ship an exponential moving average of the weights
    batch_size: int = 16


def _one_hot(labels: torch.Tensor, num_classes: int) -> torch.Tensor:
    """long [B, H, W] (255 = ignore) -> float [B, C, H, W]; ignored pixels are all zero."""
    valid = labels < num_classes
    hot = F.one_hot(torch.where(valid, labels, 0), num_classes).permute(0, 3, 1, 2).float()
    return hot * valid.unsqueeze(1)


def _through_channel(encoder_output: torch.Tensor, channel: ChannelInTheLoop, snr_db=None) -> torch.Tensor:
    estimate, variance = channel(to_symbols(encoder_output), snr_db)
    return from_symbols(estimate, variance, tuple(encoder_output.shape[1:]))


# --- segmenter --------------------------------------------------------------------------------------------------


def _segmenter_loss(parts, images, labels, channel):
    return F.cross_entropy(parts["net"](images), labels, ignore_index=255)


def _segmenter_eval(parts, images, labels, seed):
    predictions = torch.cat([parts["net"](batch).argmax(1) for batch in images.split(32)])
    confusion = confusion_matrix(labels.numpy(), predictions.numpy(), CPU.num_classes)
    return {"miou": mean_iou(confusion), "pixel_accuracy": pixel_accuracy(confusion)}


# --- semantic-map codec -----------------------------------------------------------------------------------------


def _map_loss(parts, images, labels, channel):
    features = parts["encoder"](_one_hot(labels, CPU.num_classes))
    return F.cross_entropy(parts["decoder"](_through_channel(features, channel)), labels, ignore_index=255)


def _map_eval(parts, images, labels, seed):
    metrics = {}
    for model in ("awgn", "rayleigh"):
        for snr in EVAL_SNRS_DB:
            channel = ChannelInTheLoop((model,), seed=seed)
            predictions = torch.cat([
                parts["decoder"](_through_channel(parts["encoder"](_one_hot(batch, CPU.num_classes)), channel, snr)).argmax(1)
                for batch in labels.split(32)
            ])
            confusion = confusion_matrix(labels.numpy(), predictions.numpy(), CPU.num_classes)
            metrics[f"pixel_accuracy_{model}_{snr:g}db"] = pixel_accuracy(confusion)
            metrics[f"miou_{model}_{snr:g}db"] = mean_iou(confusion)
    return metrics


# --- image codecs: latent (VAE) and Deep JSCC ----------------------------------------------------------------------

KL_WEIGHT = 1e-3


def _latent_loss(parts, images, labels, channel):
    mean, log_variance = parts["encoder"](images)
    reconstruction = parts["decoder"](_through_channel(mean, channel))
    kl = 0.5 * (mean.float() ** 2 + log_variance.float().exp() - 1 - log_variance.float()).mean()
    return F.mse_loss(reconstruction.float(), images) + KL_WEIGHT * kl


def _deep_jscc_loss(parts, images, labels, channel):
    reconstruction = parts["decoder"](_through_channel(parts["encoder"](images), channel))
    return F.mse_loss(reconstruction.float(), images)


def _image_eval(encode: Callable):
    def evaluate(parts, images, labels, seed):
        metrics = {}
        for model in ("awgn", "rayleigh"):
            for snr in EVAL_SNRS_DB:
                channel = ChannelInTheLoop((model,), seed=seed)
                outputs = torch.cat([parts["decoder"](_through_channel(encode(parts, batch), channel, snr))
                                     for batch in images.split(32)])
                psnrs = [psnr_db(_to_uint8(a), _to_uint8(b)) for a, b in zip(images, outputs)]
                metrics[f"psnr_db_{model}_{snr:g}db"] = float(np.mean(psnrs))
        return metrics

    return evaluate


def _to_uint8(image: torch.Tensor) -> np.ndarray:
    return (image.float().clamp(0, 1) * 255).round().byte().permute(1, 2, 0).numpy()


# --- the semantic diffusion decoder -------------------------------------------------------------------------------

DIFFUSION_TIMESTEPS = 1000
UNCONDITIONAL_RATE, MAP_ONLY_RATE = 0.1, 0.2  # condition dropout: CFG's null condition and the map-only mode


def received_condition(images, labels, channel, snr_db=None, map_only=False):
    """What the receiver would condition on: the map and latent after their codecs and the channel."""
    from semcom.common.models.conditioning import make_condition

    map_parts, latent_parts = store.load("map_codec"), store.load("latent_codec")
    with torch.no_grad():
        map_features = map_parts["encoder"](_one_hot(labels, CPU.num_classes))
        soft_map = map_parts["decoder"](_through_channel(map_features, channel, snr_db)).float().softmax(1)
        guide = None
        if not map_only:
            mean, _ = latent_parts["encoder"](images)
            guide = latent_parts["decoder"](_through_channel(mean, channel, snr_db)).float().cpu().numpy()
        return torch.from_numpy(make_condition(soft_map.cpu().numpy(), guide)).to(images.device)


def _diffusion_loss(parts, images, labels, channel):
    from semcom.common.models.sampling import CosineSchedule

    condition = received_condition(images, labels, channel)
    draw = torch.rand(len(images), device=images.device)
    condition = torch.where((draw < UNCONDITIONAL_RATE).view(-1, 1, 1, 1), torch.zeros_like(condition), condition)
    map_only = ((draw >= UNCONDITIONAL_RATE) & (draw < UNCONDITIONAL_RATE + MAP_ONLY_RATE)).view(-1, 1, 1, 1)
    condition[:, -3:] = torch.where(map_only, torch.zeros_like(condition[:, -3:]), condition[:, -3:])
    x0 = images * 2 - 1
    t = torch.randint(0, DIFFUSION_TIMESTEPS, (len(images),), device=images.device)
    noise = torch.randn_like(x0)
    alpha_bar = torch.from_numpy(CosineSchedule(DIFFUSION_TIMESTEPS).alpha_bar).to(images.device)[t].view(-1, 1, 1, 1)
    x_t = alpha_bar.sqrt() * x0 + (1 - alpha_bar).sqrt() * noise  # q(x_t | x0), as CosineSchedule.add_noise
    return F.mse_loss(parts["net"](x_t, t, condition).float(), noise)


def _diffusion_eval(parts, images, labels, seed, count: int = 16, steps: int = 10):
    from semcom.common.models.runtime import torch_function
    from semcom.common.models.sampling import CosineSchedule, DDIMSampler

    segmenter = store.load("segmenter")["net"]
    count = min(count, len(images))
    metrics = {}
    for snr in (0.0, 10.0):
        channel = ChannelInTheLoop(("awgn",), seed=seed)
        condition = received_condition(images[:count], labels[:count], channel, snr)
        sampler = DDIMSampler(CosineSchedule(DIFFUSION_TIMESTEPS), steps=steps)
        generated = (sampler.sample(torch_function(parts["net"]), condition.cpu().numpy(),
                                    (count, 3, *images.shape[-2:]), rng=np.random.default_rng(seed)) + 1) / 2
        generated = torch.from_numpy(generated)
        confusion = confusion_matrix(labels[:count].numpy(), segmenter(generated).argmax(1).numpy(), CPU.num_classes)
        metrics[f"psnr_db_awgn_{snr:g}db"] = float(np.mean([psnr_db(_to_uint8(a), _to_uint8(b))
                                                            for a, b in zip(images[:count], generated)]))
        metrics[f"miou_awgn_{snr:g}db"] = mean_iou(confusion)
    return metrics


SPECS = {
    "segmenter": Spec({"net": {"class": "AttentionUNet", "kwargs": {"num_classes": 19, "base_channels": 16,
                                                                     "levels": 3}}},
                      _segmenter_loss, _segmenter_eval, default_steps=3000, uses_channel=False),
    "map_codec": Spec({"encoder": {"class": "MapEncoder", "kwargs": {"num_classes": 19, "channels": 4}},
                       "decoder": {"class": "MapDecoder", "kwargs": {"num_classes": 19, "channels": 4}}},
                      _map_loss, _map_eval, default_steps=2500),
    "latent_codec": Spec({"encoder": {"class": "LatentEncoder", "kwargs": {"channels": 4}},
                          "decoder": {"class": "LatentDecoder", "kwargs": {"channels": 4}}},
                         _latent_loss, _image_eval(lambda parts, x: parts["encoder"](x)[0]), default_steps=3000),
    "deep_jscc": Spec({"encoder": {"class": "ImageEncoder", "kwargs": {"channels": 5}},
                       "decoder": {"class": "ImageDecoder", "kwargs": {"channels": 5}}},
                      _deep_jscc_loss, _image_eval(lambda parts, x: parts["encoder"](x)), default_steps=4000),
    "diffusion": Spec({"net": {"class": "SemanticDiffusionUNet", "kwargs": {"num_classes": 19,
                                                                           "widths": [32, 64, 96]}}},
                      _diffusion_loss, _diffusion_eval, default_steps=4000, ema_decay=0.999, batch_size=8),
}


@dataclass
class TrainConfig:
    steps: int
    channels: int | None = None  # codecs: feature channels sent, i.e. the bandwidth (default: the spec's)
    batch_size: int = 16
    learning_rate: float = 2e-3
    seed: int = 0
    train_count: int = 4000
    val_count: int = 200
    checkpoint_every: int = 250
    checkpoint_dir: Path = Path("checkpoints")
    weights_dir: Path = store.WEIGHTS_DIR
    resume: bool = False
    device: str = "auto"
    bf16: bool = True
    preset: Preset = CPU


def train(name: str, config: TrainConfig, command: str | None = None) -> dict:
    spec = SPECS[name]
    device = torch.device("cuda" if config.device == "auto" and torch.cuda.is_available() else
                          ("cpu" if config.device == "auto" else config.device))
    bf16 = config.bf16 and (device.type != "cpu" or cpu.detect().native_bf16)
    if config.bf16 and not bf16:  # emulated bf16 is ~100x slower than fp32 (common/cpu.py)
        print(f"training in fp32: this CPU has no native bf16 ({cpu.detect().describe()})", file=sys.stderr)
    architecture = _with_channels(spec.architecture, config.channels)  # fails fast on a bad --channels
    torch.manual_seed(config.seed)
    size = (config.preset.height, config.preset.width)
    print(f"generating {config.train_count} training and {config.val_count} validation scenes at "
          f"{size[0]}x{size[1]} ...", file=sys.stderr)
    train_images, train_labels = _as_tensors(*materialize(SyntheticScenes("train", config.train_count, size)))
    val_images, val_labels = _as_tensors(*materialize(SyntheticScenes("val", config.val_count, size)))

    parts = store.build(architecture)
    modules = nn.ModuleDict(parts).to(device)
    optimizer = torch.optim.AdamW(modules.parameters(), lr=config.learning_rate, weight_decay=1e-4)
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, _warmup_cosine(config.steps))
    rng = np.random.default_rng(config.seed)
    channel = ChannelInTheLoop(seed=config.seed) if spec.uses_channel else None
    checkpoint_path = config.checkpoint_dir / f"{name}.ckpt"
    step, elapsed = 0, 0.0
    if config.resume and checkpoint_path.is_file():
        state = torch.load(checkpoint_path, map_location=device, weights_only=False)
        modules.load_state_dict(state["modules"])
        optimizer.load_state_dict(state["optimizer"])
        schedule.load_state_dict(state["schedule"])
        rng.bit_generator.state = state["numpy_rng"]
        torch.set_rng_state(state["torch_rng"])
        step, elapsed = state["step"], state["elapsed_seconds"]
        print(f"resumed {name} from {checkpoint_path} at step {step}", file=sys.stderr)

    ema = _ema_copy(modules) if spec.ema_decay else None
    if ema is not None and config.resume and checkpoint_path.is_file():
        ema.load_state_dict(state["ema"])
    modules.train()
    started = time.monotonic() - elapsed
    losses = []
    with tqdm(total=config.steps, initial=step, desc=f"train {name}", unit="step") as progress:
        while step < config.steps:
            index = rng.integers(0, len(train_images), config.batch_size)
            images, labels = train_images[index].to(device), train_labels[index].to(device)
            if rng.random() < 0.5:  # horizontal flip
                images, labels = images.flip(-1), labels.flip(-1)
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
                loss = spec.loss(parts, images, labels, channel)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            schedule.step()
            if ema is not None:
                _ema_update(ema, modules, spec.ema_decay)
            step += 1
            losses.append(loss.item())
            progress.update()
            progress.set_postfix(loss=f"{np.mean(losses[-50:]):.4f}")
            if step % config.checkpoint_every == 0 or step == config.steps:
                _save_checkpoint(checkpoint_path, modules, optimizer, schedule, rng, step,
                                 time.monotonic() - started, ema)
    wall_seconds = time.monotonic() - started

    if ema is not None:  # evaluate and ship the averaged weights
        modules.load_state_dict(ema.state_dict())
    modules.eval().cpu()
    with torch.no_grad():
        metrics = spec.evaluate(parts, val_images, val_labels, seed=12345)
    shipped = replace(config, bf16=bf16)  # the card records what ran
    return _ship(name, architecture, spec.uses_channel, parts, shipped, metrics, losses, wall_seconds, device, command)


def _with_channels(architecture: dict[str, dict], channels: int | None) -> dict[str, dict]:
    """The architecture with every part's `channels` (the codec's bandwidth) replaced."""
    if channels is None:
        return architecture
    if not all("channels" in spec["kwargs"] for spec in architecture.values()):
        raise ValueError("--channels applies to the codecs (map_codec, latent_codec, deep_jscc), not the segmenter")
    return {part: {**spec, "kwargs": {**spec["kwargs"], "channels": channels}} for part, spec in architecture.items()}


def _warmup_cosine(steps: int) -> Callable[[int], float]:
    """Learning-rate factor: linear warm-up over 5% of the steps, then cosine decay to 0."""
    warmup = max(1, steps // 20)

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        return 0.5 * (1 + math.cos(math.pi * (step - warmup) / max(1, steps - warmup)))

    return factor


def _as_tensors(images: np.ndarray, labels: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
    return torch.from_numpy(images).permute(0, 3, 1, 2).float() / 255.0, torch.from_numpy(labels).long()


def _ema_copy(modules: nn.Module) -> nn.Module:
    import copy

    ema = copy.deepcopy(modules)
    for parameter in ema.parameters():
        parameter.requires_grad_(False)
    return ema


@torch.no_grad()
def _ema_update(ema: nn.Module, modules: nn.Module, decay: float) -> None:
    for average, current in zip(ema.state_dict().values(), modules.state_dict().values()):
        if average.dtype.is_floating_point:
            average.mul_(decay).add_(current, alpha=1 - decay)
        else:
            average.copy_(current)


def _save_checkpoint(path: Path, modules, optimizer, schedule, rng, step: int, elapsed: float, ema=None) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_suffix(".tmp")
    torch.save({"modules": modules.state_dict(), "optimizer": optimizer.state_dict(),
                "schedule": schedule.state_dict(), "numpy_rng": rng.bit_generator.state,
                "torch_rng": torch.get_rng_state(), "step": step, "elapsed_seconds": elapsed,
                "ema": ema.state_dict() if ema is not None else None}, temporary)
    temporary.replace(path)  # a stopped run never leaves half a checkpoint


def _ship(name, architecture, uses_channel, parts, config, metrics, losses, wall_seconds, device, command) -> dict:
    config.weights_dir.mkdir(parents=True, exist_ok=True)
    weights = config.weights_dir / f"{name}.pt"
    torch.save({part: module.state_dict() for part, module in parts.items()}, weights)
    example = torch.rand(1, 3, config.preset.height, config.preset.width)
    card = {
        "model": name,
        "architecture": architecture,
        "preset": {"name": config.preset.name, "height": config.preset.height, "width": config.preset.width,
                   "num_classes": config.preset.num_classes},
        "parameters": {part: count_parameters(module) for part, module in parts.items()},
        "flops_per_image": _flops(name, parts, example),
        "training": {
            "command": command or f"semcom train {name}",
            "data": f"embedded synthetic scenes (semcom.common.data.scenes), train split items 0..{config.train_count - 1}",
            "steps": config.steps, "batch_size": config.batch_size, "learning_rate": config.learning_rate,
            "seed": config.seed, "bf16_autocast": config.bf16, "device": str(device),
            "wall_seconds": round(wall_seconds, 1),
            "channel": "awgn and rayleigh (block per frame, perfect CSI, MMSE), SNR uniform in [-5, 20] dB"
            if uses_channel else "none",
            "initial_loss": float(np.mean(losses[:10])) if losses else math.nan,
            "final_loss": float(np.mean(losses[-10:])) if losses else math.nan,
        },
        "evaluation": {"data": f"synthetic val split items 0..{config.val_count - 1}", "metrics": metrics},
        "torch_version": torch.__version__,
        "sha256": store.sha256_of(weights),
    }
    (config.weights_dir / f"{name}.card.json").write_text(json.dumps(card, indent=2) + "\n")
    return card


def _flops(name: str, parts: dict, image: torch.Tensor) -> dict[str, int]:
    if name == "diffusion":  # one denoising step
        condition = torch.zeros(1, parts["net"].num_classes + 3, *image.shape[-2:])
        return {"net_per_step": count_flops(parts["net"], image, torch.zeros(1, dtype=torch.long), condition)}
    if name == "segmenter":
        return {"net": count_flops(parts["net"], image)}
    if name == "map_codec":
        one_hot = torch.zeros(1, parts["encoder"].net[0][0].in_channels, *image.shape[-2:])
        features = parts["encoder"](one_hot)
    elif name == "latent_codec":
        features = parts["encoder"](image)[0]
        one_hot = image
    else:
        features = parts["encoder"](image)
        one_hot = image
    decoder_input = torch.zeros(1, 2 * features.shape[1], *features.shape[-2:])
    return {"encoder": count_flops(parts["encoder"], one_hot), "decoder": count_flops(parts["decoder"], decoder_input)}


def main_command(argv: list[str]) -> str:
    return "semcom " + " ".join(shlex.quote(a) for a in argv)
