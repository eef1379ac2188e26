"""`semcom quantize`, the distilled student's part: its UNet (runtime.STUDENT_PARTS) as the diffusion decoder's
is quantized (tools/quantize.py: two graphs, W8A8, one artifact per ISA family, the stem and the Mul ops in
float), calibrated on the fp32 student's own inputs: its one step of `--scenes` received scenes (semantic and
gesco frames through AWGN or Rayleigh, -5..20 dB), as the diffusion decoder's calibration draws them.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

from semcom.common.models import store

from . import quantize
from .quantize_photo import unet_cards

MODEL, PART = "diffusion_student", "net"


def quantize_student(config: quantize.QuantizeConfig, command: str = "semcom quantize") -> dict:
    """Writes the student's int8 graphs and their cards into config.weights_dir; returns the cards by name."""
    started = time.perf_counter()
    net = store.load(MODEL, config.weights_dir)[PART]
    samples = quantize.calibration_samples(config.scenes, config.seed, diffusion_decoder="student",
                                           weights_dir=config.weights_dir)
    data = (f"synthetic train split scenes drawn by the seed, as semantic and gesco ({quantize.GESCO_SHARE:.0%}) "
            "frames: the fp32 student's one step each")
    with tempfile.TemporaryDirectory() as folder:
        cards = unet_cards(MODEL, PART, net, samples, Path(folder), config, config.scenes, command, data)
    for card in cards.values():
        card["calibration"]["ddim_steps"], card["calibration"]["sampler"] = 1, "ddim"  # the student's own
        card["wall_seconds"] = round(time.perf_counter() - started, 1)
        quantize.write_card(config.weights_dir, card)
    return cards
