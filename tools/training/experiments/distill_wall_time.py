"""Distilling from the teacher store against online distillation (issue 20: "less than half the wall time
for the same student and steps"). Both train the same student (diffusion_student's spec, same seed, steps,
batch and schedule) toward the same teacher (10 DDIM steps, guidance 1.5) on the same kind of items:

* store: `semcom distill store` once (--store-count items, timed), then the student's steps from it;
* online: every step's batch made by running the teacher on fresh scenes and channel draws.

Wall times are the builds' and the training loops' own (evaluation excluded), with the teacher network calls
each path made; both students are evaluated alike.

    python -m semcom.tools.training.experiments.distill_wall_time --steps 40 --batch-size 8 --store-count 64 \\
        --out /tmp/distill_wall_time
"""

import argparse
import dataclasses
import json
import sys
from pathlib import Path

import numpy as np

from semcom.common.data.datasets import SyntheticScenes, materialize
from semcom.common.models.presets import CPU
from semcom.common.models.runtime import DecoderRuntime

from .. import loop, teacher_store
from ..data import TrainData, as_tensors
from ..specs import diffusion_student


def online_data(config) -> TrainData:
    """The student's data made as it trains: each batch the teacher's decodes of fresh draws."""
    stored = diffusion_student.data(config)  # the same validation (and the teacher-call counter)
    print(f"generating {config.train_count} training scenes ...", file=sys.stderr)
    images, labels = as_tensors(*materialize(SyntheticScenes("train", config.train_count, (CPU.height, CPU.width))))
    settings = teacher_store.TEACHER_SAMPLER
    predict = DecoderRuntime(sampler=settings).noise_predictor()

    def sample(rng: np.random.Generator, batch_size: int):
        return teacher_store.as_batch(teacher_store.teacher_items(images, labels, settings, predict, batch_size, rng))

    return TrainData(sample, stored.validation, "online: the teacher run on each batch", stored.validation_description)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=40, help="student optimizer steps, each path [%(default)s]")
    parser.add_argument("--batch-size", type=int, default=8, help="[%(default)s]")
    parser.add_argument("--store-count", type=int, default=64, help="items the store path builds [%(default)s]")
    parser.add_argument("--out", type=Path, required=True, help="stores, weights, checkpoints, results.json")
    args = parser.parse_args(argv)
    store_dir = args.out / "store"
    store_card = teacher_store.build(teacher_store.StoreConfig(count=args.store_count, out=store_dir, resume=True))
    results = {"store_build": {"wall_seconds": store_card["wall_seconds"],
                               "teacher_network_calls": store_card["teacher_network_calls"],
                               "items": store_card["count"]}}
    for name, spec in (("from_store", diffusion_student.SPEC),
                       ("online", dataclasses.replace(diffusion_student.SPEC, data=online_data))):
        calls = teacher_store.teacher_calls()
        loop.spec_of = lambda model, spec=spec: spec  # the loop looks its spec up by name
        config = loop.TrainConfig(steps=args.steps, batch_size=args.batch_size, teacher_store=store_dir,
                                  checkpoint_dir=args.out / name, weights_dir=args.out / name, val_count=16)
        card = loop.train("diffusion_student", config, command=f"distill_wall_time {name}")
        calls.close()
        results[name] = {"training_wall_seconds": card["training"]["wall_seconds"],
                         "teacher_network_calls": calls.count, **card["evaluation"]["metrics"]}
    store_total = results["store_build"]["wall_seconds"] + results["from_store"]["training_wall_seconds"]
    results["ratio_store_total_to_online"] = store_total / results["online"]["training_wall_seconds"]
    (args.out / "results.json").write_text(json.dumps(results, indent=1))
    print(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
