"""CALA in DeKA-g's setting: a channel codec trained at one condition, then aligned to all of them.

The shipped codecs are trained over the whole SNR range already, which leaves the adapters little to do
(README, "Condition-aware adapters"). DeKA-g's codec is trained at one condition and adapted to others, so this
trains the map codec (the shipped recipe, same steps) through the channel at one SNR alone (--train-snr-db,
AWGN and Rayleigh), and then runs the adapter sweep over it: the codec unadapted, one LoRA for all conditions,
hard selection per band and the soft gate, each trained over -5..20 dB with the same steps, data and seed, and
evaluated per SNR band, matched and mismatched (training/adapters.py).

    python -m semcom.tools.training.experiments.cala_one_condition --out /tmp/cala_one_condition

writes OUT/map_codec.pt (the one-condition base) with its card, OUT/map_codec_adapters.pt (the soft gate's) and
OUT/results.md (the sweep's table).
"""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

from torch.nn import functional as F

from semcom.common.models.presets import CPU

from .. import loop
from ..adapters import AdapterConfig, compare, table
from ..spec import one_hot
from ..specs import map_codec


def one_condition_spec(snr_db: float):
    """The map codec's spec with every item sent at `snr_db`."""
    def loss(parts, images, labels, channel):
        features = parts["encoder"](one_hot(labels, CPU.num_classes))
        return F.cross_entropy(parts["decoder"](channel.features(features, snr_db)), labels, ignore_index=255)

    return dataclasses.replace(map_codec.SPEC, loss=loss)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--train-snr-db", type=float, default=10.0, help="the base's one SNR [%(default)s]")
    parser.add_argument("--base-steps", type=int, default=map_codec.SPEC.default_steps)
    parser.add_argument("--adapter-steps", type=int, default=1000)
    parser.add_argument("--learning-rate", type=float, default=5e-3, help="the adapters' [%(default)s]")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    checkpoints = args.out / "checkpoints"
    if not (args.out / "map_codec.card.json").is_file():
        loop.train("map_codec", loop.TrainConfig(steps=args.base_steps, checkpoint_dir=checkpoints,
                                                 weights_dir=args.out, resume=True),
                   command=f"cala_one_condition --train-snr-db {args.train_snr_db:g}",
                   spec=one_condition_spec(args.train_snr_db))
    config = AdapterConfig("map_codec", steps=args.adapter_steps, train=loop.TrainConfig(
        steps=args.adapter_steps, learning_rate=args.learning_rate, checkpoint_dir=checkpoints, weights_dir=args.out,
        resume=True))
    results = table(compare(config, "cala_one_condition"))
    (args.out / "results.md").write_text(f"Map codec trained at {args.train_snr_db:g} dB alone, then adapted over "
                                         f"-5..20 dB ({args.adapter_steps} steps each):\n\n{results}\n")
    print(results)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
