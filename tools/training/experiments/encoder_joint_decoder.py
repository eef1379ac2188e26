"""Do the encoder student's SNR gates help when the receiver's map decoder learns beside the encoder (ADJSCC's
setting), rather than staying the shipped, frozen one (issue 20's study: no gain with the frozen decoder)?

Three runs of the encoder student's loss (β IB_BETA) from its teacher store, each with a copy of the shipped map
decoder trained with it: the adaptive student, the plain one trained over -5..20 dB, the plain one trained at
10 dB alone (the SNR-mismatch baseline). Each is evaluated with its own decoder on the card's 200 validation
scenes, all three on the same channel draws (seed 0: not the training loop's evaluation seed, so compare these
runs with each other, not with the cards). A measurement, not a model: nothing is shipped, and the receiver keeps
the shipped decoder.

    python -m semcom.tools.training.experiments.encoder_joint_decoder --steps 800 --out /tmp/joint
"""

from __future__ import annotations

import argparse
import copy
import json
import time
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from semcom.common.data.datasets import SyntheticScenes, materialize
from semcom.common.models import cpu, store
from semcom.common.models.presets import CPU

from ..channel_in_the_loop import ChannelInTheLoop
from ..data import as_tensors
from ..loop import TrainConfig, warmup_cosine
from ..specs import encoder_student
from ..specs.encoder_student import EVAL_SNRS_DB, SPEC, TEACHER
from ..teacher_store import DEFAULT_OUT, TeacherStore
from .encoder_student_study import PLAIN_TRAIN_SNR_DB, plain_spec

# The study's students (their architecture and loss): the shipped recipe, and the two plain ones.
RUNS = {"adaptive": SPEC, "plain": plain_spec(), "plain_at_10db": plain_spec(PLAIN_TRAIN_SNR_DB)}


def train_pair(spec, steps: int, teacher: TeacherStore) -> dict:
    """`spec`'s encoder and a copy of the shipped map decoder trained together by its loss, with the training
    loop's optimizer and schedule, batch 16, bf16 autocast where the CPU has native bf16."""
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    parts = {"encoder": store.build(spec.architecture)["encoder"],
             "decoder": copy.deepcopy(store.load("map_codec")["decoder"]).train().requires_grad_(True)}
    parameters = [p for part in parts.values() for p in part.parameters()]
    optimizer = torch.optim.AdamW(parameters, lr=TrainConfig(steps).learning_rate, weight_decay=1e-4)
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, warmup_cosine(steps))
    bf16 = cpu.detect().native_bf16
    channel = ChannelInTheLoop(seed=0)
    for _ in tqdm(range(steps), desc="train encoder + decoder", unit="step"):
        with torch.autocast("cpu", torch.bfloat16, enabled=bf16):
            loss = spec.loss(parts, *teacher.sample(rng, 16), channel)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        schedule.step()
    return {name: part.eval() for name, part in parts.items()}


@torch.no_grad()
def evaluate(parts: dict, images: torch.Tensor, labels: torch.Tensor) -> dict[str, float]:
    """mIoU at the receiver (its own decoder), the encoder told the channel's SNR."""
    metrics = {}
    for model in ("awgn", "rayleigh"):
        for snr in EVAL_SNRS_DB:
            told, _ = encoder_student.student_features(parts["encoder"], images, snr)
            metrics[f"miou_{model}_{snr:g}db"] = encoder_student.receiver_miou(told, labels, model, snr, 0,
                                                                               parts["decoder"])
    return metrics


def report(results: dict[str, dict]) -> str:
    lines = ["| channel | SNR dB | adaptive | plain, -5..20 dB | plain, at 10 dB | gain over plain | "
             "gain over plain at 10 dB |", "|---" * 7 + "|"]
    for key in results["adaptive"]:
        model, snr = key.split("_")[1], key.split("_")[2][:-2]
        a, p, p10 = (results[run][key] for run in RUNS)
        lines.append(f"| {model} | {snr} | {a:.3f} | {p:.3f} | {p10:.3f} | {a - p:+.3f} | {a - p10:+.3f} |")
    return "\n".join(lines) + "\n"


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=800, help="optimizer steps of every run [%(default)s]")
    parser.add_argument("--teacher-store", type=Path, default=DEFAULT_OUT[TEACHER],
                        help="`semcom distill store --teacher segmenter_large` [%(default)s]")
    parser.add_argument("--out", type=Path, required=True, help="results.json and results.md")
    args = parser.parse_args(argv)
    if args.steps < 1:
        parser.error("--steps must be at least 1")
    teacher = TeacherStore(args.teacher_store, TEACHER)
    images, labels = as_tensors(*materialize(SyntheticScenes("val", 200, (CPU.height, CPU.width))))
    results, seconds = {}, {}
    for name, spec in RUNS.items():
        start = time.perf_counter()
        results[name] = evaluate(train_pair(spec, args.steps, teacher), images, labels)
        seconds[name] = round(time.perf_counter() - start, 1)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "results.json").write_text(json.dumps({"steps": args.steps, "seconds": seconds, "miou": results},
                                                      indent=1))
    text = report(results)
    (args.out / "results.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
