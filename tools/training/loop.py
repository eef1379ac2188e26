"""`semcom train MODEL`: the one training loop, for every model (specs/ says what differs), on the
embedded synthetic scenes, with the channel in the loop where the model is a codec.

Progress bar, checkpoints every --checkpoint-every steps (model, optimizer,
schedule, EMA and random state) and --resume from the last one (or --init-from a
shipped .pt, a warm start with a fresh optimizer where no checkpoint survives), bf16 autocast on
a CPU with native bf16 (fp32 on one without: emulated bf16 is ~100x slower), CUDA
when available or asked for, fixed seeds. Models whose spec asks for it ship an
exponential moving average of their weights (torch's AveragedModel). At the end the
model is evaluated on the validation split and shipped: <weights-dir>/<model>.pt and
a model card <model>.card.json (command, data, steps, wall time, metrics, sha256).
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
from torch.optim.swa_utils import AveragedModel
from tqdm import tqdm

from semcom.common.models import cpu, store
from semcom.common.models.layers import count_parameters
from semcom.common.models.presets import CPU, Preset

from .channel_in_the_loop import ChannelInTheLoop
from .specs import spec as spec_of


@dataclass
class TrainConfig:
    steps: int
    channels: int | None = None  # codecs: feature channels sent, i.e. the bandwidth (default: the spec's)
    objective: str | None = None  # diffusion: what the UNet predicts, "v" or "epsilon" (default: the spec's)
    batch_size: int = 16
    learning_rate: float = 2e-3
    seed: int = 0
    train_count: int = 4000
    val_count: int = 200
    checkpoint_every: int = 250
    checkpoint_dir: Path = Path("checkpoints")
    weights_dir: Path = store.WEIGHTS_DIR
    resume: bool = False
    init_from: Path | None = None  # a shipped <model>.pt to start from (a warm start: fresh optimizer, new schedule)
    teacher_store: Path | None = None  # a distilled student's data (teacher_store.py; None: its DEFAULT_OUT)
    device: str = "auto"
    bf16: bool = True
    preset: Preset = CPU


def train(name: str, config: TrainConfig, command: str | None = None, spec=None) -> dict:
    """Trains, evaluates and ships model `name` by its spec (or `spec`: an experiment's variant of it)."""
    spec = spec or spec_of(name)
    device = torch.device("cuda" if config.device == "auto" and torch.cuda.is_available() else
                          ("cpu" if config.device == "auto" else config.device))
    bf16 = config.bf16 and (device.type != "cpu" or cpu.detect().native_bf16)
    if config.bf16 and not bf16:  # emulated bf16 is ~100x slower than fp32 (common/models/cpu.py)
        print(f"training in fp32: this CPU has no native bf16 ({cpu.detect().describe()})", file=sys.stderr)
    architecture = _with_kwarg(spec.architecture, "channels", config.channels,  # fails fast on a bad flag
                               "--channels applies to the fixed-bandwidth codecs (map_codec, latent_codec); the "
                               "segmenter has none and deep_jscc chooses its bandwidth per frame")
    architecture = _with_kwarg(architecture, "prediction", config.objective, "--objective applies to diffusion")
    torch.manual_seed(config.seed)
    data = spec.data(config)

    parts = store.build(architecture)
    modules = nn.ModuleDict(parts).to(device)
    optimizer = torch.optim.AdamW(modules.parameters(), lr=config.learning_rate, weight_decay=1e-4)
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, warmup_cosine(config.steps))
    rng = np.random.default_rng(config.seed)
    channel = ChannelInTheLoop(seed=config.seed) if spec.uses_channel else None
    checkpoint_path = config.checkpoint_dir / f"{name}.ckpt"
    step, elapsed = 0, 0.0
    if config.resume and checkpoint_path.is_file():
        state = torch.load(checkpoint_path, map_location=device, weights_only=False)
        if state.get("architecture", architecture) != architecture:  # e.g. an epsilon run resumed with --objective v
            raise ValueError(f"--resume: {checkpoint_path} trained {state['architecture']}, this run asks for "
                             f"{architecture}: resume with the same flags, or use another --checkpoint-dir")
        modules.load_state_dict(state["modules"])
        optimizer.load_state_dict(state["optimizer"])
        schedule.load_state_dict(state["schedule"])
        rng.bit_generator.state = state["numpy_rng"]
        torch.set_rng_state(state["torch_rng"])
        step, elapsed = state["step"], state["elapsed_seconds"]
        print(f"resumed {name} from {checkpoint_path} at step {step}", file=sys.stderr)
    elif config.init_from is not None:
        _warm_start(parts, config.init_from, architecture)
        print(f"{name} starts from the weights in {config.init_from}", file=sys.stderr)

    ema = _averaged(modules, spec.ema_decay) if spec.ema_decay else None
    if ema is not None and config.resume and checkpoint_path.is_file():
        _load_ema(ema, state["ema"], state["step"])
    modules.train()
    started = time.monotonic() - elapsed
    losses = []

    def batch_loss() -> torch.Tensor:
        batch = [tensor.to(device) for tensor in data.sample(rng, config.batch_size)]
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
            return spec.loss(parts, *batch, channel)

    def save(step: int) -> None:
        _save_checkpoint(checkpoint_path, modules, optimizer, schedule, rng, step, time.monotonic() - started,
                         architecture, ema)

    optimize(batch_loss, optimizer, schedule, Steps(step, config.steps, config.checkpoint_every), save,
             checkpoint_path, f"train {name}", losses, after_step=None if ema is None else
             lambda: ema.update_parameters(modules))
    wall_seconds = time.monotonic() - started

    if ema is not None:  # evaluate and ship the averaged weights
        modules.load_state_dict(ema.module.state_dict())
    modules.eval().cpu()
    with torch.no_grad():
        metrics = spec.evaluate(parts, *data.validation, seed=12345)
    shipped = replace(config, bf16=bf16)  # the card records what ran
    return _ship(name, architecture, spec, data, parts, shipped, metrics, losses, wall_seconds, device,
                 command)


@dataclass(frozen=True)
class Steps:
    """Where a run starts, where it ends, and how often it checkpoints."""

    start: int
    end: int
    checkpoint_every: int


def optimize(batch_loss: Callable[[], torch.Tensor], optimizer, schedule, steps: Steps, save: Callable[[int], None],
             checkpoint_path: Path, description: str, losses: list[float],
             after_step: Callable[[], None] | None = None) -> int:
    """The optimizer loop every trainer shares (models, adapters): a progress bar, `save(step)` every
    checkpoint_every steps and at the end, and on Ctrl-C (or a time limit's SIGINT) the steps since the last
    checkpoint saved before it stops. Appends each step's loss to `losses`; returns the step reached."""
    step = saved = steps.start
    try:
        with tqdm(total=steps.end, initial=step, desc=description, unit="step") as progress:
            while step < steps.end:
                loss = batch_loss()
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                schedule.step()
                if after_step is not None:
                    after_step()
                step += 1
                losses.append(loss.item())
                progress.update()
                progress.set_postfix(loss=f"{np.mean(losses[-50:]):.4f}")
                if step % steps.checkpoint_every == 0 or step == steps.end:
                    save(step)
                    saved = step
    except KeyboardInterrupt:
        if step > saved:
            save(step)
        print(f"\nstopped at step {step}; {checkpoint_path} holds it: --resume continues", file=sys.stderr)
        raise
    return step


def _warm_start(parts: dict[str, nn.Module], path: Path, architecture: dict) -> None:
    """Loads a shipped weights file (a state dict per part) into the freshly built parts; they must match, and
    so must the architecture its card (where one lies beside it) declares: a UNet's objective too."""
    card_path = path.with_suffix(".card.json")
    declared = json.loads(card_path.read_text())["architecture"] if card_path.is_file() else architecture
    if declared != architecture:
        raise ValueError(f"--init-from {path}: its card's architecture {declared} is not this run's {architecture} "
                         "(another --objective or --channels?)")
    state = torch.load(path, map_location="cpu", weights_only=True)
    if set(state) != set(parts):
        raise ValueError(f"--init-from {path}: its parts {sorted(state)} are not this model's {sorted(parts)}")
    for part, module in parts.items():
        module.load_state_dict(state[part])


def _with_kwarg(architecture: dict[str, dict], key: str, value, refusal: str) -> dict[str, dict]:
    """The architecture with every part's `key` (a codec's `channels`, the UNet's `prediction`) set to
    `value` (None: unchanged); `refusal` where a part has no such argument."""
    if value is None:
        return architecture
    if not all(key in spec["kwargs"] for spec in architecture.values()):
        raise ValueError(refusal)
    return {part: {**spec, "kwargs": {**spec["kwargs"], key: value}} for part, spec in architecture.items()}


def warmup_cosine(steps: int) -> Callable[[int], float]:
    """Learning-rate factor: linear warm-up over 5% of the steps, then cosine decay to 0."""
    warmup = max(1, steps // 20)

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        return 0.5 * (1 + math.cos(math.pi * (step - warmup) / max(1, steps - warmup)))

    return factor


def _averaged(modules: nn.Module, decay: float) -> AveragedModel:
    """An exponential moving average of the weights (and float buffers), starting from the initial ones,
    with a warm-up: after n updates the decay is min(decay, (1 + n) / (10 + n)), so that a short run's
    average is not half its random initialization (0.999 ** 700 = 0.5: a 700-step run measured 7.6 dB
    with the plain average)."""
    if any(not buffer.dtype.is_floating_point for buffer in modules.buffers()):
        raise ValueError("EMA averages every buffer; a model with integer buffers (BatchNorm's batch count) "
                         "cannot ship an EMA: drop ema_decay from its spec or use GroupNorm")
    ema = AveragedModel(modules, multi_avg_fn=_warmed_up_ema(decay), use_buffers=True)
    ema.update_parameters(modules)  # the first update copies: the average starts at the initial weights
    return ema


def _warmed_up_ema(decay: float):
    @torch.no_grad()
    def update(averages: list[torch.Tensor], currents: list[torch.Tensor], updates: torch.Tensor) -> None:
        count = float(updates)
        torch._foreach_lerp_(averages, currents, 1 - min(decay, (1 + count) / (10 + count)))

    return update


def _load_ema(ema: AveragedModel, state: dict, step: int) -> None:
    """Restores the average from a checkpoint, also one written before the EMA was an AveragedModel
    (a plain copy of the modules' state)."""
    if "n_averaged" not in state:
        # an average of `step` updates: the warm-up is long over
        state = {**{f"module.{name}": value for name, value in state.items()}, "n_averaged": torch.tensor(step + 1)}
    ema.load_state_dict(state)


def _save_checkpoint(path: Path, modules, optimizer, schedule, rng, step: int, elapsed: float, architecture: dict,
                     ema=None) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_suffix(".tmp")
    torch.save({"modules": modules.state_dict(), "optimizer": optimizer.state_dict(),
                "schedule": schedule.state_dict(), "numpy_rng": rng.bit_generator.state,
                "torch_rng": torch.get_rng_state(), "step": step, "elapsed_seconds": elapsed,
                "architecture": architecture, "ema": ema.state_dict() if ema is not None else None}, temporary)
    temporary.replace(path)  # a stopped run never leaves half a checkpoint


def _ship(name, architecture, spec, data, parts, config, metrics, losses, wall_seconds, device, command) -> dict:
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
        "flops_per_image": spec.flops(parts, example),
        "training": {
            "command": command or f"semcom train {name}",
            "data": data.description,
            "steps": config.steps, "batch_size": config.batch_size, "learning_rate": config.learning_rate,
            "seed": config.seed, "initialized_from": _provenance(config.init_from) if config.init_from else None,
            "trained_on": {model: store.card(model)["sha256"] for model in spec.trained_on},
            "bf16_autocast": config.bf16, "device": str(device),
            "wall_seconds": round(wall_seconds, 1),
            "channel": "awgn and rayleigh (block per frame, perfect CSI, MMSE), SNR uniform in [-5, 20] dB"
            if spec.uses_channel else "none",
            "initial_loss": float(np.mean(losses[:10])) if losses else math.nan,
            "final_loss": float(np.mean(losses[-10:])) if losses else math.nan,
        },
        "evaluation": {"data": data.validation_description, "metrics": metrics},
        "torch_version": torch.__version__,
        "sha256": store.sha256_of(weights),
    }
    (config.weights_dir / f"{name}.card.json").write_text(json.dumps(card, indent=2) + "\n")
    return card


def _provenance(path: Path) -> dict:
    """What a warm start began from: the file's sha256 and, where its card lies beside it, its training."""
    card_path = path.with_suffix(".card.json")
    earlier = json.loads(card_path.read_text())["training"] if card_path.is_file() else {}
    return {"sha256": store.sha256_of(path), "steps": earlier.get("steps"),
            "wall_seconds": earlier.get("wall_seconds"), "command": earlier.get("command")}


def main_command(argv: list[str]) -> str:
    return "semcom " + " ".join(shlex.quote(a) for a in argv)
