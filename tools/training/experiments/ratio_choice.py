"""One rate-adaptive Deep JSCC against one model per bandwidth ratio, measured on the same budget
(issue 15: "choose by measurement"). Trains, from scratch and with the same seed, data, steps and
schedule, the shipped rate-adaptive recipe (C uniform in 2..64 maps per batch) and a model trained
only at one ratio (C fixed), then prints both models' held-out Kodak PSNR at every evaluated ratio.

    python -m semcom.tools.training.experiments.ratio_choice --steps 3000 --out /tmp/ratio_choice
"""

import argparse
import dataclasses
import json
from fractions import Fraction
from pathlib import Path

from torch.nn import functional as F

from semcom.common.codecs.learned import DeepJSCCCodec

from .. import loop
from ..specs import deep_jscc


def fixed_ratio_spec(ratio: float):
    """deep_jscc's spec with every batch sent at `ratio` alone: a one-ratio model."""
    channels = DeepJSCCCodec.channels_for(ratio)

    def loss(parts, images, labels, channel):
        reconstruction = deep_jscc.decode(parts, parts["encoder"](images), channels, channel)
        return F.mse_loss(reconstruction.float(), images)

    return dataclasses.replace(deep_jscc.SPEC, loss=loss)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=3000, help="optimizer steps per model [%(default)s]")
    parser.add_argument("--ratio", type=Fraction, default=Fraction(1, 12), help="the one-ratio model's k/n [%(default)s]")
    parser.add_argument("--out", type=Path, required=True, help="weights, checkpoints and results.json go here")
    args = parser.parse_args(argv)
    results = {}
    for name, spec in (("rate_adaptive", deep_jscc.SPEC), (f"ratio_1_{round(1 / args.ratio)}", fixed_ratio_spec(float(args.ratio)))):
        loop.spec_of = lambda model, spec=spec: spec  # the loop looks its spec up by name
        config = loop.TrainConfig(steps=args.steps, checkpoint_dir=args.out / name, weights_dir=args.out / name,
                                  resume=True)
        card = loop.train("deep_jscc", config, command=f"ratio_choice {name}")
        results[name] = {**card["evaluation"]["metrics"], "wall_seconds": card["training"]["wall_seconds"]}
        (args.out / "results.json").write_text(json.dumps(results, indent=1))
    print(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
