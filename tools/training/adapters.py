"""`semcom train adapters --base MODEL`: condition-aware LoRA (CALA) of a shipped channel codec, and the
sweep that compares it with the codec unadapted, one LoRA for all conditions and hard selection per band.

The base codec (its encoder and decoder, common/weights/MODEL.pt) stays frozen; only the low-rank updates and
the gate train (common/models/lora.py), through the channel in the loop, each item at its own SNR (uniform in
-5..20 dB, AWGN or Rayleigh) and, for deep_jscc, each batch at its own bandwidth ratio (C/384, C even in
2..64). The encoder is told the condition the transmitter has (its design SNR, here the channel's own: a
matched channel), the decoder the receiver's. Resumable (--resume), progress bar, bf16 autocast where the CPU
has native bf16. The shipped artifact is MODEL_adapters.pt with its card (models/adapters.py).
"""

from __future__ import annotations

import json
import math
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from semcom.common.codecs.learned import DeepJSCCCodec
from semcom.common.models import adapters, cpu, store
from semcom.common.models.jscc import erase_unsent
from semcom.common.models.lora import GATES
from semcom.common.models.presets import CPU
from semcom.common.quality import confusion_matrix, mean_iou, psnr_db

from .channel_in_the_loop import ChannelInTheLoop
from .data import TrainData, photos_and_scenes, scenes
from .loop import Steps, TrainConfig, _save_checkpoint, optimize, warmup_cosine
from .spec import one_hot, to_uint8
from .specs.deep_jscc import MAX_CHANNELS, pad_to_stride
from .specs.latent_codec import KL_WEIGHT

GATE_KINDS = ("none", *GATES)  # what the sweep compares; "none" is the base codec unadapted
DEFAULT_RANK, DEFAULT_EXPERTS = 1, 4
EVAL_SNRS_DB = (-2.5, 2.5, 7.5, 12.5, 17.5)  # the centre of each 5-dB band of the range trained
MISMATCH_DESIGN_SNR_DB = 7.5  # the transmitter's design SNR in the mismatch rows; the channel's varies


@dataclass(frozen=True)
class Task:
    """What differs between the adapted codecs."""

    model: str
    data: Callable[[TrainConfig], TrainData]
    encoder_input: Callable  # (images, labels) -> the encoder's input
    bands: tuple[tuple[float, ...], tuple[float, ...]]  # hard selection's SNR and k/n band edges
    eval_ratios: tuple[float, ...]  # k/n evaluated (one for the fixed-bandwidth codecs)
    metric: str  # the evaluation's figure: "psnr_db" or "miou"
    channels: Callable[[torch.Generator | None], int | None] = lambda generator: None  # feature maps sent

    def ratio(self, channels: int | None) -> float:
        """k/n of a block of `channels` maps (None: the fixed codec's own)."""
        if self.model == "deep_jscc":
            return channels / 384
        downsampling = 4 if self.model == "map_codec" else 8
        return store.card(self.model)["architecture"]["encoder"]["kwargs"]["channels"] / downsampling**2 / 6


def _random_channels(generator) -> int:
    return 2 * int(torch.randint(1, MAX_CHANNELS // 2 + 1, (), generator=generator))


TASKS = {
    "deep_jscc": Task("deep_jscc", photos_and_scenes, lambda images, labels: images, ((7.5,), (1 / 24 + 1e-6,)),
                      (1 / 6, 1 / 12, 1 / 24, 1 / 48), "psnr_db", _random_channels),
    "map_codec": Task("map_codec", scenes, lambda images, labels: one_hot(labels, CPU.num_classes),
                      ((0.0, 7.5, 15.0), ()), (1 / 24,), "miou"),
    "latent_codec": Task("latent_codec", scenes, lambda images, labels: images, ((0.0, 7.5, 15.0), ()), (1 / 96,),
                         "psnr_db"),
}


class Unadapted(nn.Module):
    """The base part, taking (and ignoring) the condition the adapted parts take: the sweep's "none"."""

    def __init__(self, base: nn.Module):
        super().__init__()
        self.base = base

    def forward(self, *inputs, condition):
        return self.base(*inputs)


def adapted_parts(task: Task, gate: str, rank: int, experts: int,
                  weights_dir: Path = store.WEIGHTS_DIR) -> dict[str, nn.Module]:
    """The base codec's encoder and decoder (from weights_dir) with fresh adapters of `gate`, or plain ("none")."""
    base = store.load(task.model, weights_dir)
    if gate == "none":
        return {part: Unadapted(module) for part, module in base.items()}
    return adapters.build(task.model, base, {"adapter": settings(task, gate, rank, experts)})


def settings(task: Task, gate: str, rank: int, experts: int) -> dict:
    """The card's `adapter` entry: what build() needs, and what it adapts. A single LoRA gets the rank of all
    the experts together, and hard selection one expert per band: every gate updates as many parameters."""
    if gate == "single":
        rank, experts = rank * experts, 1
    if gate == "hard":
        experts = (len(task.bands[0]) + 1) * (len(task.bands[1]) + 1)
    return {"gate": gate, "rank": rank, "experts": experts, "bands": [list(edges) for edges in task.bands],
            "parts": ["encoder", "decoder"]}


def forward(task: Task, parts, images, labels, channel: ChannelInTheLoop, channels: int | None,
            snr_tx: list[float], snr_rx: list[float]) -> torch.Tensor:
    """The codec's output for a batch: the encoder told snr_tx (one per item), the channel at snr_rx, the
    decoder told snr_rx."""
    ratio = task.ratio(channels)

    def condition(snrs):
        return torch.tensor([[snr, ratio] for snr in snrs], dtype=torch.float32)

    features = parts["encoder"](task.encoder_input(images, labels), condition=condition(snr_tx))
    if task.model == "latent_codec":
        features = features[0]  # the mean is sent
    if channels is not None:
        features = features[:, :channels]
    received = channel.features(features, snr_rx)
    if task.model == "deep_jscc":
        received = erase_unsent(received, MAX_CHANNELS)
    return parts["decoder"](received, condition=condition(snr_rx))


def loss(task: Task, parts, images, labels, channel: ChannelInTheLoop, generator) -> torch.Tensor:
    channels = task.channels(generator)
    snrs = channel.draw_snrs(images.shape[0])
    output = forward(task, parts, images, labels, channel, channels, snrs, snrs)
    if task.model == "map_codec":
        return F.cross_entropy(output.float(), labels, ignore_index=255)
    reconstruction = F.mse_loss(output.float(), images)
    if task.model == "latent_codec":  # the adapted encoder's latent kept Gaussian, as the base's training does
        mean, log_variance = (x.float() for x in parts["encoder"](images, condition=torch.tensor(
            [[snr, task.ratio(None)] for snr in snrs])))
        reconstruction = reconstruction + KL_WEIGHT * 0.5 * (mean**2 + log_variance.exp() - 1 - log_variance).mean()
    return reconstruction


def evaluate(task: Task, parts, validation: tuple, seed: int = 12345) -> dict[str, float]:
    """The figure per k/n and SNR band (matched: encoder and decoder told the channel's SNR), and under
    mismatch (the encoder told MISMATCH_DESIGN_SNR_DB whatever the channel's), over AWGN."""
    images, labels = validation
    metrics = {}
    for ratio in task.eval_ratios:
        channels = task_channels(task, ratio)
        for snr in EVAL_SNRS_DB:
            for mode, design in (("matched", snr), ("mismatch", MISMATCH_DESIGN_SNR_DB)):
                if mode == "mismatch" and snr == design:
                    continue
                channel = ChannelInTheLoop(("awgn",), seed=seed)
                value = _figure(task, parts, images, labels, channel, channels, design, snr)
                metrics[f"{task.metric}_ratio_1_{round(1 / ratio)}_{mode}_{snr:g}db"] = value
    return metrics


def task_channels(task: Task, ratio: float) -> int | None:
    if task.model != "deep_jscc":
        return None
    return DeepJSCCCodec.channels_for(ratio)


def _figure(task, parts, images, labels, channel, channels, design: float, snr: float) -> float:
    with torch.no_grad():
        if task.metric == "miou":
            predictions = torch.cat([forward(task, parts, None, batch, channel, channels, [design] * len(batch),
                                             [snr] * len(batch)).argmax(1) for batch in labels.split(32)])
            return mean_iou(confusion_matrix(labels.numpy(), predictions.numpy(), CPU.num_classes))
        values = []
        batches = images if isinstance(images, list) else images.split(32)
        for batch in batches:  # deep_jscc's held-out photos come one by one at their own size
            height, width = batch.shape[-2:]
            output = forward(task, parts, pad_to_stride(batch), None, channel, channels, [design] * len(batch),
                             [snr] * len(batch))
            values += [psnr_db(to_uint8(a), to_uint8(b[:, :height, :width])) for a, b in zip(batch, output)]
        return float(np.mean(values))


@dataclass
class AdapterConfig:
    base: str
    gate: str = "cala"
    rank: int = DEFAULT_RANK
    experts: int = DEFAULT_EXPERTS
    steps: int = 600
    train: TrainConfig = None  # batch size, learning rate, seed, data counts, checkpoints, weights dir, bf16

    def __post_init__(self):
        if self.base not in TASKS:
            raise ValueError(f"--base {self.base!r}: adapted codecs are {', '.join(TASKS)}")
        if self.gate not in GATES:
            raise ValueError(f"--gate {self.gate!r}: expected one of {', '.join(GATES)}")
        if self.rank < 1 or self.experts < 1 or self.steps < 1:
            raise ValueError("--rank, --experts and --steps must be at least 1")


def train_adapters(config: AdapterConfig, command: str | None = None, ship: bool = True,
                   data: TrainData | None = None) -> tuple[dict, dict]:
    """Trains the adapters of config.base; returns their card and parts (and, with ship, writes both). data: the
    task's (made here when not given; the sweep makes it once for every variant)."""
    task, train_config = TASKS[config.base], config.train
    bf16 = train_config.bf16 and cpu.detect().native_bf16
    if train_config.bf16 and not bf16:
        print(f"training in fp32: this CPU has no native bf16 ({cpu.detect().describe()})", file=sys.stderr)
    torch.manual_seed(train_config.seed)
    data = data or task.data(replace(train_config, steps=config.steps))
    parts = adapted_parts(task, config.gate, config.rank, config.experts, train_config.weights_dir)
    modules = nn.ModuleDict(parts)
    trainable = [parameter for parameter in modules.parameters() if parameter.requires_grad]
    optimizer = torch.optim.AdamW(trainable, lr=train_config.learning_rate, weight_decay=0.0)
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, warmup_cosine(config.steps))
    rng = np.random.default_rng(train_config.seed)
    generator = torch.Generator().manual_seed(train_config.seed)
    channel = ChannelInTheLoop(seed=train_config.seed)
    described = settings(task, config.gate, config.rank, config.experts)
    base_sha256 = store.card(config.base, train_config.weights_dir)["sha256"]
    identity = {"base": config.base, "base_sha256": base_sha256, **described}
    checkpoint = train_config.checkpoint_dir / f"{adapters.adapter_name(config.base)}_{config.gate}.ckpt"
    step, elapsed, losses = _resume(checkpoint, train_config.resume, identity, modules, optimizer, schedule, rng)
    started = time.monotonic() - elapsed

    def batch_loss() -> torch.Tensor:
        images, labels = data.sample(rng, train_config.batch_size)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            return loss(task, parts, images, labels, channel, generator)

    def save(step: int) -> None:
        _save_checkpoint(checkpoint, modules, optimizer, schedule, rng, step, time.monotonic() - started, identity)

    modules.train()
    optimize(batch_loss, optimizer, schedule, Steps(step, config.steps, train_config.checkpoint_every), save,
             checkpoint, f"adapters {config.base} ({config.gate})", losses)
    wall = time.monotonic() - started
    modules.eval()
    metrics = evaluate(task, parts, data.validation)
    card = _card(config, task, parts, described, data, metrics, losses, wall, bf16, command)
    if ship:
        _ship(config, parts, card)
    return card, parts


def compare(config: AdapterConfig, command: str | None = None) -> dict[str, dict]:
    """The sweep: the base codec unadapted, and adapters of each gate trained with config's settings and steps
    (same data, seed, channel draws); the figures per variant. Ships config.gate's adapters."""
    task = TASKS[config.base]
    data = task.data(config.train)
    results = {"none": evaluate(task, adapted_parts(task, "none", 1, 1, config.train.weights_dir), data.validation)}
    for gate in GATES:
        card, _ = train_adapters(replace(config, gate=gate), command, ship=gate == config.gate, data=data)
        results[gate] = {**card["evaluation"]["metrics"], "fraction_of_codec": card["parameters"]["fraction_of_codec"]}
    return results


def table(results: dict[str, dict]) -> str:
    """The sweep as a markdown table: one row per figure, one column per variant, and the gains over none."""
    variants = list(results)
    rows = ["| figure | " + " | ".join(variants) + " | cala - none | cala - single |",
            "|---|" + "---|" * (len(variants) + 2)]
    for key in results["none"]:
        values = [results[variant][key] for variant in variants]
        rows.append(f"| {key} | " + " | ".join(f"{value:.3f}" for value in values)
                    + f" | {results['cala'][key] - results['none'][key]:+.3f}"
                    f" | {results['cala'][key] - results['single'][key]:+.3f} |")
    fractions = " | ".join(f"{results[v].get('fraction_of_codec', 0.0):.4f}" for v in variants)
    rows.append(f"| parameters updated (fraction of the codec) | {fractions} | | |")
    return "\n".join(rows)


def _resume(path: Path, resume: bool, identity: dict, modules, optimizer, schedule, rng) -> tuple[int, float, list]:
    if not (resume and path.is_file()):
        return 0, 0.0, []
    state = torch.load(path, map_location="cpu", weights_only=False)
    if state["architecture"] != identity:
        raise ValueError(f"--resume: {path} trained {state['architecture']}, this run is {identity}: resume with the "
                         "same flags and base weights, or use another --checkpoint-dir")
    modules.load_state_dict(state["modules"])
    optimizer.load_state_dict(state["optimizer"])
    schedule.load_state_dict(state["schedule"])
    rng.bit_generator.state = state["numpy_rng"]
    torch.set_rng_state(state["torch_rng"])
    print(f"resumed from {path} at step {state['step']}", file=sys.stderr)
    return state["step"], state["elapsed_seconds"], []


def _card(config, task, parts, described, data, metrics, losses, wall, bf16, command) -> dict:
    base_parameters = {part: sum(p.numel() for p in module.parameters() if not p.requires_grad)
                       for part, module in parts.items()}
    adapter_parameters = {part: module.adapter_parameters() for part, module in parts.items()}
    total_base = sum(base_parameters.values())
    return {
        "model": adapters.adapter_name(config.base),
        "base": config.base,
        "base_sha256": store.card(config.base, config.train.weights_dir)["sha256"],
        "adapter": described,
        "conditions": {"snr_db": list(adapters.SNR_RANGE_DB), "bandwidth_ratio": list(task.eval_ratios)
                       if task.model != "deep_jscc" else [2 / 384, MAX_CHANNELS / 384],
                       "serving_band_db": adapters.SNR_STEP_DB},
        "parameters": {"base": base_parameters, "adapter": adapter_parameters,
                       "fraction_of_codec": sum(adapter_parameters.values()) / total_base,
                       "fraction_per_expert": sum(adapter_parameters.values()) / total_base / described["experts"]},
        "training": {"command": command or adapters.fix(config.base), "data": data.description,
                     "steps": config.steps, "batch_size": config.train.batch_size,
                     "learning_rate": config.train.learning_rate, "seed": config.train.seed, "bf16_autocast": bf16,
                     "wall_seconds": round(wall, 1),
                     "channel": "awgn and rayleigh (block per frame, perfect CSI, MMSE), SNR uniform in [-5, 20] dB "
                                "per item, the encoder and decoder told it",
                     "initial_loss": float(np.mean(losses[:10])) if losses else math.nan,
                     "final_loss": float(np.mean(losses[-10:])) if losses else math.nan},
        "evaluation": {"data": data.validation_description, "metrics": metrics},
        "torch_version": torch.__version__,
    }


def _ship(config: AdapterConfig, parts, card: dict) -> None:
    weights_dir = config.train.weights_dir
    weights_dir.mkdir(parents=True, exist_ok=True)
    path = weights_dir / f"{adapters.adapter_name(config.base)}.pt"
    torch.save({part: module.adapter_state() for part, module in parts.items()}, path)
    card["bytes"] = path.stat().st_size
    card["sha256"] = store.sha256_of(path)
    (weights_dir / f"{adapters.adapter_name(config.base)}.card.json").write_text(json.dumps(card, indent=2) + "\n")
