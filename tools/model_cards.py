"""`semcom models`: the shipped models' cards as one Markdown table
(also written to common/weights/README.md)."""

from __future__ import annotations

from semcom.common.models import store

MODELS = ("segmenter", "map_codec", "latent_codec", "deep_jscc", "diffusion", "diffusion_student", "photo_vae",
          "latent_diffusion")
HEADLINE_METRICS = {
    "segmenter": ("miou", "pixel_accuracy"),
    "map_codec": ("pixel_accuracy_awgn_10db", "miou_awgn_10db", "pixel_accuracy_rayleigh_10db"),
    "latent_codec": ("psnr_db_awgn_10db", "psnr_db_rayleigh_10db"),
    # On the held-out Kodak photos at their own size, per bandwidth ratio k/n.
    "deep_jscc": ("psnr_db_ratio_1_6_awgn_10db", "psnr_db_ratio_1_12_awgn_0db", "psnr_db_ratio_1_12_awgn_10db",
                  "psnr_db_ratio_1_48_awgn_10db"),
    # At training's end: `semantic` as served (5 DDIM steps from the channel), and the map-only modes
    # from pure noise (10 steps): the map codec's map, and gesco's pooled one-hot map.
    "diffusion": ("psnr_db_semantic_awgn_10db", "miou_semantic_awgn_10db", "miou_map_awgn_10db",
                  "psnr_db_gesco_awgn_10db", "miou_gesco_awgn_10db"),
    # The same evaluation in one step (receiver --decoder student), and the teacher calls made in its training.
    "diffusion_student": ("psnr_db_semantic_awgn_10db", "miou_semantic_awgn_10db", "miou_map_awgn_10db",
                          "psnr_db_gesco_awgn_10db", "miou_gesco_awgn_10db", "teacher_network_calls_in_training"),
    # The class-free photo codec (Kodak, own size): its VAE alone, then the codec at k/n 1/48 (the head's
    # mean decoded, and 5 DDIM steps from the matched timestep).
    "photo_vae": ("psnr_db_mean_latent", "latent_std"),
    "latent_diffusion": ("psnr_db_ratio_1_48_awgn_0db_ddim5", "psnr_db_ratio_1_48_awgn_10db_mean",
                         "psnr_db_ratio_1_48_awgn_10db_ddim5"),
}


def render() -> str:
    lines = [
        "# Shipped models",
        "",
        "Trained by the project's own command: the semantic models on the embedded synthetic scenes, deep_jscc",
        "on real photos (`semcom data photos`) and scenes, at the photos' own size; loaded with",
        "`torch.load(weights_only=True)` after checking the sha256 in each `<model>.card.json`.",
        "Retrain any of them with the command in its row (`--resume` continues a stopped run).",
        "",
        "| model | parameters | MFLOPs / image (64x128; deep_jscc, photo_vae, latent_diffusion: 512x768) | steps | wall time | device | validation metrics | command | sha256 |",
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
        shown = ", ".join(f"{key} {metrics[key]}" if isinstance(metrics[key], int) else f"{key} {metrics[key]:.3f}"
                          for key in HEADLINE_METRICS[name] if key in metrics)
        steps, minutes = f"{training['steps']}", f"{training['wall_seconds'] / 60:.1f} min"
        earlier = training.get("initialized_from")
        if earlier and earlier.get("steps"):  # a warm start: the earlier run's steps and time come first
            steps = f"{earlier['steps']} + {training['steps']}"
            minutes = f"{(earlier['wall_seconds'] + training['wall_seconds']) / 60:.1f} min in all"
        lines.append(f"| {name} | {params:,} | {flops:,.0f} | {steps} | {minutes}"
                     f" | {training['device']} | {shown} | `{training['command']}` | `{card['sha256'][:16]}…` |")
    lines += ["", *_adapter_lines(), "", *_quantized_lines(), "", "Data: " + _data_line(), "", _student_line(), "",
              "deep_jscc, photo_vae, latent_diffusion: " + _photo_data_line(), "",
              "Channel in the loop for the codecs: awgn and rayleigh (block per frame, "
              "perfect CSI, MMSE equalization), SNR uniform in [-5, 20] dB, drawn by the channel emulator's own classes."]
    return "\n".join(lines) + "\n"


def _adapter_lines() -> list[str]:
    """The condition-aware adapters (transmitter --adapters), one line per adapted codec model."""
    from semcom.common.models import adapters

    lines = ["Condition-aware adapters (CALA: LoRA experts on every convolution of the encoder and decoder, mixed by "
             "a soft gate on the frame's SNR and k/n; transmitter `--adapters`), made by `semcom train adapters`:"]
    for model in adapters.ADAPTED_MODELS:
        try:
            card = adapters.card(model)
        except store.WeightsMissing:
            lines.append(f"- {model}: not trained (`{adapters.fix(model)}`)")
            continue
        settings, parameters = card["adapter"], card["parameters"]
        metrics = card["evaluation"]["metrics"]
        lowest = next(key for key in metrics if key.endswith("_matched_-2.5db"))  # the lowest SNR band's figure
        lines.append(f"- `{card['model']}.pt`: {card['bytes']:,} bytes, gate {settings['gate']}, {settings['experts']} "
                     f"experts of rank {settings['rank']}, {parameters['fraction_of_codec']:.1%} of the codec's "
                     f"parameters ({parameters['fraction_per_expert']:.1%} per expert); {card['training']['steps']} "
                     f"steps in {card['training']['wall_seconds'] / 60:.1f} min; {lowest} {metrics[lowest]:.3f}; "
                     f"over {model} `{card['base_sha256'][:16]}…`; `{card['training']['command']}`; sha256 "
                     f"`{card['sha256'][:16]}…`")
    return lines


def _student_line() -> str:
    """What the distilled student learned from: its card's data, the teacher store."""
    try:
        return "diffusion_student: " + store.card("diffusion_student")["training"]["data"]
    except store.WeightsMissing:
        return "diffusion_student: not trained (`semcom distill store`, then `semcom train diffusion_student`)."


def _quantized_lines() -> list[str]:
    """The int8 diffusion decoders (receiver --precision int8), one per ISA family, made by `semcom quantize`."""
    from semcom.common.models import runtime

    return [line for name in runtime.ARTIFACTS for line in (_artifact_line(name), "")] + [
            "The JSCC decoders an int8 receiver runs on ONNX Runtime instead of torch, exported in float32 by the same "
            "command: " + "; ".join(_decoder_line(model) for model in runtime.DECODED_MODELS) + ".", "",
            "The photo codec's (latent_diffusion) ONNX models, by the same command (`tools/quantize_photo.py`): "
            + "; ".join(_part_line(name, "photo crops") for model, part in runtime.PHOTO_PARTS
                        for name in runtime.part_names(model, part)) + ".", "",
            "The distilled student's (diffusion_student) int8 graphs, by the same command "
            "(`tools/quantize_student.py`): "
            + "; ".join(_part_line(name, "scenes") for model, part in runtime.STUDENT_PARTS
                        for name in runtime.part_names(model, part)) + "."]


def _part_line(name: str, frames: str) -> str:
    """An INT8_PARTS model's line; frames: what its calibration's frames were."""
    try:
        card = store.card(name)
    except store.WeightsMissing:
        return f"`{name}.onnx` not made"
    made = _made_from(card)
    if "calibration" not in card:
        return f"`{name}.onnx` in float32 {made}"
    graphs = (f" with its condition graph `{card['condition_graph']['model']}.onnx` (condition caching; its step "
              f"graph's {', '.join(card['quantization']['int8_ops'])} ops alone in int8)"
              if "condition_graph" in card else "")
    return (f"`{name}.onnx`{graphs} W8A8 for {card['for'].split(':')[0]}, {card['weight_bytes']['ratio']:.1%} of "
            f"fp32's weight bytes, calibrated on {card['calibration']['samples']} inputs from "
            f"{card['calibration']['frames']} {frames}, {made}")


def _artifact_line(name: str) -> str:
    try:
        card = store.card(name)
    except store.WeightsMissing:
        return f"{name}: not made; `semcom quantize` makes it from the diffusion weights."
    q, calibration, size = card["quantization"], card["calibration"], card["weight_bytes"]
    condition = store.card(card["condition_graph"]["model"])
    kept = ", ".join(f"{op} ops" for op in condition["quantization"]["float_ops"]) or "nothing"
    return (
        f"`{name}.onnx` (receiver `--precision int8` on {card['for']}): the diffusion UNet post-training quantized, "
        f"as two graphs (condition caching): `{condition['model']}.onnx`, the condition to every SPADE's scale and "
        f"shift, once per frame, and `{name}.onnx`, each step given them. "
        f"Weights: {q['weights']}. Activations: {q['activations']}. In float: {kept} in the condition graph; "
        f"the step graph quantizes only its {', '.join(q['int8_ops'])} ops"
        + (f" (and keeps `{'`, `'.join(q['float_modules'])}` in float). " if q["float_modules"] else ". ")
        + f"Calibrated on {calibration['samples']} sampler inputs from {calibration['scenes']} scenes "
        f"({calibration['ddim_steps']}-step trajectories, timesteps {calibration['timesteps']}, "
        f"{', '.join(calibration['channels'])}, SNR "
        f"{calibration['snr_db_uniform'][0]:g}..{calibration['snr_db_uniform'][1]:g} dB, codecs {calibration['codecs']}). "
        f"Weights {size['int8']:,} bytes, {size['ratio']:.1%} of fp32's {size['fp32']:,}. "
        f"Made by `{calibration['command']}` in {card['wall_seconds']:.0f} s from diffusion "
        f"`{card['source_sha256'][:16]}…`; sha256 `{card['sha256'][:16]}…` (condition graph "
        f"`{condition['sha256'][:16]}…`).")


def this_cpu() -> str:
    """What this machine's receiver runs (machine-specific: printed, not written into the weights README)."""
    from semcom.common.models import cpu, precision

    capabilities = cpu.detect()
    runnable = precision.runnable(capabilities)
    return (f"This CPU: {capabilities.describe()}. It runs {', '.join(runnable)} natively; a receiver's "
            "--precision auto picks int8 when the artifacts above are there, else fp32"
            + ("" if "bf16" in runnable else "; --precision bf16 is refused here (it would be emulated)") + ".")


def _decoder_line(model: str) -> str:
    from semcom.common.models import runtime

    name = runtime.decoder_name(model)
    try:
        card = store.card(name)
    except store.WeightsMissing:
        return f"`{name}.onnx` not made"
    return f"`{name}.onnx` {_made_from(card, model)}"


def _made_from(card: dict, model: str = "") -> str:
    """Which weights an ONNX model was made from, and its own sha256, as the README lines give them."""
    return f"from {model + ' ' if model else ''}`{card['source_sha256'][:16]}…` (sha256 `{card['sha256'][:16]}…`)"


def _photo_data_line() -> str:
    try:
        card = store.card("deep_jscc")
    except store.WeightsMissing:
        return "not trained."
    return f"{card['training']['data']}; validation: {card['evaluation']['data']}."


def _data_line() -> str:
    try:
        return store.card("segmenter")["training"]["data"] + "; validation on the val split (other seeds)."
    except store.WeightsMissing:
        return "the embedded synthetic scenes."
