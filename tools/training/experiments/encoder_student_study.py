"""The encoder student's two studies (issue 20): the information bottleneck's beta swept (the rate of what is
sent against the receiver's mIoU), and the channel-adaptive module against the same student without it.

Every run is `semcom train encoder_student`'s recipe (same store, data, seed, steps and schedule) with one thing
changed: the rate term's weight beta, or no SNR attention gates (`snr_adaptive: false`, the SNR ignored). The
adaptive runs are told the channel's SNR while they train (their design SNR) and are evaluated told it
(perfect feedback) and told 10 dB whatever the channel (stale feedback); the plain ones need no telling. Two
plain ones: trained across -5..20 dB like the adaptive student, and trained at 10 dB alone (the classic
single-SNR codec, ADJSCC's baseline, evaluated under SNR mismatch).
Resumable: each run keeps its checkpoint and weights under --out/<run>/ and a finished run is read back.
The runs train with bf16 autocast where the CPU has native bf16 (the loop's default), fp32 elsewhere; the runs'
cards say which. Their cards' data line reads "SNR uniform in [-5, 20] dB" for every run: the run trained at
one SNR is named by its folder and the report.

    python -m semcom.tools.training.experiments.encoder_student_study --steps 800 --out /tmp/encoder_study
"""

from __future__ import annotations

import argparse
import dataclasses
import json
from pathlib import Path

from .. import loop
from ..specs import encoder_student
from ..specs.encoder_student import EVAL_SNRS_DB, IB_BETA, SPEC, STALE_DESIGN_SNR_DB

DEFAULT_BETAS = (0.0, 0.01, 0.1, 1.0)
PLAIN_TRAIN_SNR_DB = 10.0


def run(name: str, spec, steps: int, out: Path) -> dict:
    """The card of one run, trained here unless a finished one is there."""
    directory = out / name
    card_path = directory / "encoder_student.card.json"
    if card_path.is_file() and json.loads(card_path.read_text())["training"]["steps"] == steps:
        return json.loads(card_path.read_text())
    config = loop.TrainConfig(steps=steps, checkpoint_dir=directory, weights_dir=directory, resume=True)
    return loop.train("encoder_student", config, command=f"encoder_student_study {name}", spec=spec)


def beta_spec(beta: float):
    return dataclasses.replace(SPEC, loss=encoder_student.make_loss(beta))


def plain_spec(train_snr_db: float | None = None):
    """The student without SNR attention; with `train_snr_db`, trained at that SNR alone."""
    encoder = SPEC.architecture["encoder"]
    return dataclasses.replace(SPEC, loss=encoder_student.make_loss(IB_BETA, train_snr_db), architecture={
        "encoder": {**encoder, "kwargs": {**encoder["kwargs"], "snr_adaptive": False}}})


def report(sweep: dict[float, dict], adaptive: dict, plain: dict, plain_at: dict) -> str:
    """The two tables, Markdown."""
    lines = ["| beta | rate at 10 dB (bits/frame) | " + " | ".join(f"mIoU AWGN {s:g} dB" for s in EVAL_SNRS_DB) + " |",
             "|---" * (2 + len(EVAL_SNRS_DB)) + "|"]
    for beta, metrics in sorted(sweep.items()):
        lines.append(f"| {beta:g} | {metrics['rate_bits_per_frame_10db']:.0f} | "
                     + " | ".join(f"{metrics[f'miou_awgn_{s:g}db']:.3f}" for s in EVAL_SNRS_DB) + " |")
    lines += ["", "| channel | SNR dB | adaptive, told the SNR | adaptive, told "
              f"{STALE_DESIGN_SNR_DB:g} dB | plain, trained -5..20 dB | plain, trained at {PLAIN_TRAIN_SNR_DB:g} dB "
              f"| gain over plain -5..20 | gain over plain at {PLAIN_TRAIN_SNR_DB:g} | large model |", "|---" * 9 + "|"]
    for model in ("awgn", "rayleigh"):
        for snr in EVAL_SNRS_DB:
            key = f"miou_{model}_{snr:g}db"
            lines.append(f"| {model} | {snr:g} | {adaptive[key]:.3f} | "
                         f"{adaptive[f'{key}_told_{STALE_DESIGN_SNR_DB:g}db']:.3f} | {plain[key]:.3f} | "
                         f"{plain_at[key]:.3f} | {adaptive[key] - plain[key]:+.3f} | "
                         f"{adaptive[key] - plain_at[key]:+.3f} | "
                         f"{adaptive[f'large_{key}']:.3f} |")
    return "\n".join(lines) + "\n"


def plot(sweep: dict[float, dict], path: Path) -> None:
    """mIoU at 0 and 10 dB against the rate, one point per beta: the rate-task trade-off."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot

    figure, axes = pyplot.subplots(figsize=(6, 4))
    betas = sorted(sweep)
    for snr in (0.0, 10.0):
        rates = [sweep[beta]["rate_bits_per_frame_10db"] for beta in betas]
        mious = [sweep[beta][f"miou_awgn_{snr:g}db"] for beta in betas]
        axes.plot(rates, mious, "o-", label=f"AWGN {snr:g} dB")
        for beta, rate, miou in zip(betas, rates, mious):
            axes.annotate(f"β={beta:g}", (rate, miou), textcoords="offset points", xytext=(4, 4), fontsize=8)
    axes.set_xscale("symlog")
    axes.set(xlabel="rate: KL of the sent features, bits per 64x128 frame", ylabel="mIoU at the receiver",
             title="Encoder student: information bottleneck sweep")
    axes.grid(alpha=0.3)
    axes.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=120)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=800, help="optimizer steps of every run [%(default)s]")
    parser.add_argument("--betas", type=float, nargs="+", default=list(DEFAULT_BETAS),
                        help="the rate term's weights swept [%(default)s]")
    parser.add_argument("--out", type=Path, required=True, help="runs, results.json, results.md and the plot")
    args = parser.parse_args(argv)
    if args.steps < 1 or any(not beta >= 0 for beta in args.betas):
        parser.error("--steps must be at least 1 and every --betas value at least 0")

    sweep = {beta: run(f"beta_{beta:g}", beta_spec(beta), args.steps, args.out)["evaluation"]["metrics"]
             for beta in sorted(set(args.betas) | {IB_BETA})}
    plain = run(f"plain_beta_{IB_BETA:g}", plain_spec(), args.steps, args.out)["evaluation"]["metrics"]
    plain_at = run(f"plain_beta_{IB_BETA:g}_at_{PLAIN_TRAIN_SNR_DB:g}db", plain_spec(PLAIN_TRAIN_SNR_DB), args.steps,
                   args.out)["evaluation"]["metrics"]
    text = report(sweep, sweep[IB_BETA], plain, plain_at)
    args.out.mkdir(parents=True, exist_ok=True)
    results = {"steps": args.steps, "beta_sweep": sweep, "plain": plain, f"plain_at_{PLAIN_TRAIN_SNR_DB:g}db": plain_at}
    (args.out / "results.json").write_text(json.dumps(results, indent=1))
    (args.out / "results.md").write_text(text)
    plot(sweep, args.out / "rate_vs_miou.png")
    print(text)


if __name__ == "__main__":
    main()
