"""`semcom models`: the shipped models' cards as one Markdown table
(also written to common/weights/README.md)."""

from __future__ import annotations

from semcom.common.models import store

MODELS = ("segmenter", "map_codec", "latent_codec", "deep_jscc", "diffusion")
HEADLINE_METRICS = {
    "segmenter": ("miou", "pixel_accuracy"),
    "map_codec": ("pixel_accuracy_awgn_10db", "miou_awgn_10db", "pixel_accuracy_rayleigh_10db"),
    "latent_codec": ("psnr_db_awgn_10db", "psnr_db_rayleigh_10db"),
    "deep_jscc": ("psnr_db_awgn_0db", "psnr_db_awgn_10db", "psnr_db_awgn_20db", "psnr_db_rayleigh_10db"),
    # Measured at training's end from pure noise, 10 steps; the receiver's default start
    # from the channel does far better (README, `semcom bench diffusion`).
    "diffusion": ("psnr_db_awgn_10db", "miou_awgn_10db"),
}


def render() -> str:
    lines = [
        "# Shipped models",
        "",
        "Trained by the project's own command on the embedded synthetic scenes; loaded with",
        "`torch.load(weights_only=True)` after checking the sha256 in each `<model>.card.json`.",
        "Retrain any of them with the command in its row (`--resume` continues a stopped run).",
        "",
        "| model | parameters | MFLOPs / image | steps | wall time | device | validation metrics | command | sha256 |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for name in MODELS:
        try:
            card = store.card(name)
        except store.WeightsMissing:
            lines.append(f"| {name} | not trained | | | | | | `semcom train {name}` | |")
            continue
        training, metrics = card["training"], card["evaluation"]["metrics"]
        params = sum(card["parameters"].values())
        flops = sum(card["flops_per_image"].values()) / 1e6
        shown = ", ".join(f"{key} {metrics[key]:.3f}" for key in HEADLINE_METRICS[name] if key in metrics)
        lines.append(f"| {name} | {params:,} | {flops:,.0f} | {training['steps']} | {training['wall_seconds'] / 60:.1f} min"
                     f" | {training['device']} | {shown} | `{training['command']}` | `{card['sha256'][:16]}…` |")
    lines += ["", "Data: " + _data_line(), "", "Channel in the loop for the codecs: awgn and rayleigh (block per frame, "
              "perfect CSI, MMSE equalization), SNR uniform in [-5, 20] dB, drawn by the channel emulator's own classes."]
    return "\n".join(lines) + "\n"


def _data_line() -> str:
    try:
        return store.card("segmenter")["training"]["data"] + "; validation on the val split (other seeds)."
    except store.WeightsMissing:
        return "the embedded synthetic scenes."
