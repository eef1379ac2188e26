"""The teacher store (the pre-stored compression mechanism of arXiv 2506.13243): a teacher run once over
training scenes, and what a student needs kept, so that distillation never runs the teacher again. Float16,
in shards of `shard_size` items (`shard_00000.npz`, ...), with `card.json`: the teacher and the frozen
models' sha256, counts, bytes, wall time and teacher network calls. Built shards are kept: `--resume`
continues. Two teachers (TEACHERS):

* `diffusion`, for the decoder student: the diffusion decoder (many DDIM steps, classifier-free guidance)
  across channel draws. Each item is one received frame as a receiver decodes it: the mode ("semantic", map
  and latent; "map", the semantic codec with its latent lost; "gesco", Q-GESCO's pooled noisy one-hot map),
  the channel (AWGN or Rayleigh, SNR uniform in -5..20 dB), the condition the receiver computes, the exact
  sample the teacher started from and its timestep (the receiver's start from the channel for "semantic",
  pure noise at T-1 otherwise), and the teacher's clean output.
* `segmenter_large`, for the encoder student: the large transmitter model (the wide segmenter, and the map
  codec's encoder on its map) on every training scene once: the scene, the teacher's map and the features
  the large transmitter sends. These do not depend on the channel (it comes after them), so the student
  draws its channels while it trains, through the receiver's frozen map decoder: no teacher involved.

    semcom distill store --count 1024 --out checkpoints/teacher_store
    semcom distill store --teacher segmenter_large --count 4000 --out checkpoints/encoder_teacher_store
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from semcom.common.data.datasets import SyntheticScenes, materialize
from semcom.common.models import store
from semcom.common.models.presets import CPU
from semcom.common.models.runtime import DecoderRuntime
from semcom.common.models.sampling import CosineSchedule, SamplerSettings

from .channel_in_the_loop import ChannelInTheLoop
from .data import as_tensors
from .spec import one_hot
from .specs.diffusion import received_condition

MODES = ("semantic", "map", "gesco")
MODE_SHARES = (0.5, 0.25, 0.25)  # what receivers decode most: the semantic codec with its latent
# The teacher's sampler, measured on 16 validation scenes (AWGN; PSNR dB / re-segmented mIoU), against the
# served 5 steps: semantic 10 dB 23.77 / 0.943 (5 steps), 23.43 / 0.950 (20 steps, CFG 1.5); gesco 10 dB
# 21.19 / 0.797 and 20.92 / 0.857. More steps trade a little PSNR for the map's semantics; guidance adds them.
# 10 steps, not 20: half the store's time (`semcom bench student` measures this teacher).
TEACHER_SAMPLER = SamplerSettings(steps=10, guidance_scale=1.5)
FROZEN_MODELS = ("diffusion", "map_codec", "latent_codec")  # the teacher and the codecs its conditions come from
ENCODER_FROZEN_MODELS = ("segmenter_large", "map_codec")  # the large transmitter model
SNR_RANGE_DB = (-5.0, 20.0)
DEFAULT_OUT = {"diffusion": Path("checkpoints/teacher_store"),
               "segmenter_large": Path("checkpoints/encoder_teacher_store")}


@dataclass
class StoreConfig:
    count: int = 1024
    out: Path | None = None  # None: DEFAULT_OUT[teacher]
    seed: int = 0
    steps: int = TEACHER_SAMPLER.steps  # the diffusion teacher's sampler
    guidance_scale: float = TEACHER_SAMPLER.guidance_scale
    shard_size: int = 256
    train_count: int = 4000  # the training scenes the items are drawn from (the students' teachers' own)
    resume: bool = False
    teacher: str = "diffusion"  # one of TEACHERS

    def __post_init__(self):
        if self.teacher not in DEFAULT_OUT:
            raise ValueError(f"--teacher: {self.teacher!r}, expected one of {', '.join(DEFAULT_OUT)}")
        self.out = DEFAULT_OUT[self.teacher] if self.out is None else self.out
        for name in ("count", "steps", "shard_size", "train_count"):
            if getattr(self, name) < 1:
                raise ValueError(f"--{name.replace('_', '-')} must be at least 1, got {getattr(self, name)}")
        if self.seed < 0:
            raise ValueError(f"--seed must be at least 0, got {self.seed}")
        if not self.guidance_scale >= 1:  # nan too
            raise ValueError(f"--guidance-scale must be at least 1 (1: no guidance), got {self.guidance_scale}")
        if self.teacher == "segmenter_large" and self.count > self.train_count:
            raise ValueError(f"--count {self.count}: the segmenter_large store holds each of the --train-count "
                             f"{self.train_count} training scenes once, so at most that many")


class NetworkCalls:
    """Counts a teacher's network evaluations by a hook on its stem, on the shared, cached module (a diffusion
    UNet's guided step runs both halves batched: one call): the store's figure, and the proof that a student's
    training runs no teacher."""

    def __init__(self, net: torch.nn.Module):
        self.count = 0
        self._handle = net.stem.register_forward_pre_hook(self._seen)

    def _seen(self, module, inputs) -> None:
        self.count += 1

    def close(self) -> None:
        self._handle.remove()


def as_batch(items: dict[str, np.ndarray]) -> tuple[torch.Tensor, ...]:
    """Stored items as a student's training batch: (x_start, t_start long, condition, teacher output), float32."""
    return (torch.from_numpy(items["x_start"]).float(), torch.from_numpy(items["t_start"].astype(np.int64)),
            torch.from_numpy(items["condition"]).float(), torch.from_numpy(items["teacher"]).float())


def teacher_calls(teacher: str = "diffusion") -> NetworkCalls:
    """A counter of the shipped teacher's network calls from now on."""
    return NetworkCalls(store.load(teacher)["net"])


_counting: dict[str, NetworkCalls] = {}  # a student's teacher, counted from its data's loading to its evaluation


def count_calls(teacher: str) -> None:
    """Counts the teacher's network calls from now on (a student's training loop: it should make none)."""
    if teacher in _counting:  # an earlier run in this process that stopped before its evaluation
        _counting.pop(teacher).close()
    _counting[teacher] = teacher_calls(teacher)


def calls_since_counting(teacher: str) -> int | None:
    """The teacher's network calls since count_calls, and the counting stopped; None where none was started."""
    counter = _counting.pop(teacher, None)
    if counter is None:
        return None
    counter.close()
    return counter.count


@dataclass(frozen=True)
class Teacher:
    """What differs between the teachers a store runs."""

    frozen_models: tuple[str, ...]  # the teacher and the models its items come through
    settings: Callable[[StoreConfig], dict]  # of the teacher: a resumed build must have the same
    # (config, training scenes uint8 [N, H, W, 3], their labels) -> make(shard, count, rng, progress) -> items
    shards: Callable
    batch: Callable[[dict[str, np.ndarray]], tuple]  # stored items -> a student's training batch
    card: dict  # what the card says of the items


def build(config: StoreConfig) -> dict:
    """Writes the store's shards and card under config.out; returns the card. With config.resume, the shards a
    stopped build (of the same recipe) finished are kept, and only the missing or short ones are made."""
    teacher = TEACHERS[config.teacher]
    config.out.mkdir(parents=True, exist_ok=True)
    card_path = config.out / "card.json"
    previous = json.loads(card_path.read_text()) if config.resume and card_path.is_file() else None
    frozen = {model: store.card(model)["sha256"] for model in teacher.frozen_models}
    recipe = {"teacher": config.teacher, "seed": config.seed, "shard_size": config.shard_size,
              "train_count": config.train_count, **teacher.settings(config), "frozen_models": frozen}
    if previous is not None and previous["recipe"] != recipe:
        raise ValueError(f"--resume: {card_path} was built with {previous['recipe']}, not {recipe}: "
                         "resume with the same flags and weights, or use another --out")
    counts = [min(config.shard_size, config.count - first) for first in range(0, config.count, config.shard_size)]
    wanted = [_shard_path(config.out, shard) for shard in range(len(counts))]
    for stale in config.out.glob(f"{SHARD_PREFIX}*.npz"):  # a fresh build's, or past a resumed build's count
        if previous is None or stale not in wanted:
            stale.unlink()
    if previous is None:
        card_path.unlink(missing_ok=True)  # nor another build's times and calls
    size = (CPU.height, CPU.width)
    print(f"generating {config.train_count} training scenes at {size[0]}x{size[1]} ...", file=sys.stderr)
    make = teacher.shards(config, *materialize(SyntheticScenes("train", config.train_count, size)))
    calls = teacher_calls(config.teacher)
    wall_seconds = previous["wall_seconds"] if previous else 0.0
    teacher_network_calls = previous["teacher_network_calls"] if previous else 0
    try:
        with tqdm(total=config.count, desc=f"teacher store ({config.teacher})", unit="item") as progress:
            for shard, (path, count) in enumerate(zip(wanted, counts)):
                if _items_in(path) == count:  # built by the run this one resumes
                    progress.update(count)
                    continue
                started, calls.count = time.monotonic(), 0
                items = make(shard, count, np.random.default_rng([config.seed, shard]), progress)
                temporary = path.with_name("." + path.name)  # outside the shards' glob until it is whole
                np.savez(temporary, **items)
                temporary.replace(path)  # a stopped build never leaves half a shard
                wall_seconds += time.monotonic() - started
                teacher_network_calls += calls.count
                _write_card(card_path, config, recipe, teacher, wanted[:shard + 1], wall_seconds,
                            teacher_network_calls)
    finally:
        calls.close()
    return _write_card(card_path, config, recipe, teacher, wanted, wall_seconds, teacher_network_calls)


SHARD_PREFIX = "shard_"


def _shard_path(directory: Path, shard: int) -> Path:
    return directory / f"{SHARD_PREFIX}{shard:05d}.npz"


def _items_in(path: Path) -> int | None:
    """Items in a shard file (None: no readable shard there)."""
    try:
        with np.load(path) as shard:
            return len(shard[shard.files[0]])
    except (OSError, ValueError, KeyError, IndexError):
        return None


def _diffusion_settings(config: StoreConfig) -> dict:
    return {"teacher_sampler": asdict(SamplerSettings(steps=config.steps, guidance_scale=config.guidance_scale))}


def _diffusion_shards(config: StoreConfig, images: np.ndarray, labels: np.ndarray) -> Callable:
    settings = SamplerSettings(steps=config.steps, guidance_scale=config.guidance_scale)
    images, labels = as_tensors(images, labels)
    predict = DecoderRuntime(sampler=settings).noise_predictor()
    return lambda shard, count, rng, progress: teacher_items(images, labels, settings, predict, count, rng, progress)


def teacher_items(images, labels, settings: SamplerSettings, predict, count: int, rng: np.random.Generator,
                  progress=None) -> dict[str, np.ndarray]:
    """`count` items, each a scene drawn at random (flipped half the time) through a channel draw, decoded by
    the teacher alone (batch 1: each its own start timestep; measured faster per item than batches of 16)."""
    schedule = CosineSchedule()
    sampler = settings.sampler(schedule)
    channel = ChannelInTheLoop(seed=int(rng.integers(2**31)))
    columns: dict[str, list] = {name: [] for name in ("x_start", "t_start", "condition", "teacher", "mode", "snr_db")}
    for _ in range(count):
        index = int(rng.integers(len(images)))
        image, label = images[index:index + 1], labels[index:index + 1]
        if rng.random() < 0.5:
            image, label = image.flip(-1), label.flip(-1)
        mode = int(rng.choice(len(MODES), p=MODE_SHARES))
        snr = float(rng.uniform(*SNR_RANGE_DB))
        condition = received_condition(image, label, channel, snr, MODES[mode]).numpy()
        initial = start = None
        if MODES[mode] == "semantic":  # the receiver's start from the channel (GenerativeCodec.prepare)
            initial, start = condition[:, -3:], settings.channel_start(schedule, snr)
        x_start = sampler.start_point((1, 3, *condition.shape[-2:]), rng, initial, start)
        teacher = sampler.sample_from(predict, condition, x_start, start)
        for name, value in (("x_start", x_start[0]), ("t_start", sampler.timesteps(start)[0]),
                            ("condition", condition[0]), ("teacher", teacher[0]), ("mode", mode), ("snr_db", snr)):
            columns[name].append(value)
        if progress is not None:
            progress.update()
    return {"x_start": np.stack(columns["x_start"]).astype(np.float16),
            "t_start": np.array(columns["t_start"], np.int16),
            "condition": np.stack(columns["condition"]).astype(np.float16),
            "teacher": np.stack(columns["teacher"]).astype(np.float16),
            "mode": np.array(columns["mode"], np.uint8), "snr_db": np.array(columns["snr_db"], np.float32)}




def _segmenter_shards(config: StoreConfig, images: np.ndarray, labels: np.ndarray) -> Callable:
    net, encoder = store.load("segmenter_large")["net"], store.load("map_codec")["encoder"]

    def make(shard: int, count: int, rng, progress) -> dict[str, np.ndarray]:
        """Scenes shard * shard_size .. + count, in batches of 32 (no randomness: every scene once)."""
        first = shard * config.shard_size
        maps, features = [], []
        for start in range(first, first + count, 32):
            batch = as_tensors(images[start:min(start + 32, first + count)], labels[:0])[0]
            with torch.no_grad():
                predicted = net(batch).argmax(1)
                features.append(encoder(one_hot(predicted, CPU.num_classes)).numpy().astype(np.float16))
            maps.append(predicted.byte().numpy())
            progress.update(len(batch))
        return {"index": np.arange(first, first + count, dtype=np.int32), "image": images[first:first + count],
                "teacher_map": np.concatenate(maps), "teacher_features": np.concatenate(features)}

    return make


def encoder_batch(items: dict[str, np.ndarray]) -> tuple[torch.Tensor, ...]:
    """Stored items as the encoder student's batch: (images float [B, 3, H, W] in [0, 1], the teacher's map long
    [B, H, W], the features the large transmitter sends float [B, C, H/4, W/4])."""
    images, teacher_map = as_tensors(items["image"], items["teacher_map"])
    return images, teacher_map, torch.from_numpy(items["teacher_features"]).float()


TEACHERS = {
    "diffusion": Teacher(FROZEN_MODELS, _diffusion_settings, _diffusion_shards, as_batch, {
        "modes": dict(zip(MODES, MODE_SHARES)),
        "channel": f"awgn or rayleigh (block per frame, perfect CSI, MMSE), SNR uniform in {list(SNR_RANGE_DB)} dB",
        "precision": "float16 (inputs, conditions, outputs); the teacher ran in fp32"}),
    "segmenter_large": Teacher(ENCODER_FROZEN_MODELS, lambda config: {}, _segmenter_shards, encoder_batch, {
        "items": "every training scene once, in order: the scene, the large segmenter's map and the map codec's "
                 "features of it (what the large transmitter sends)",
        "channel": "none: the teacher's outputs come before the channel; students draw theirs while they train",
        "precision": "uint8 (scenes, maps), float16 (features); the teacher ran in fp32"}),
}


def _write_card(path: Path, config: StoreConfig, recipe: dict, teacher: Teacher, shards: list[Path],
                wall_seconds: float, teacher_network_calls: int) -> dict:
    card = {"what": f"teacher store: {config.teacher} teacher outputs for distillation "
                    "(tools/training/teacher_store.py)",
            "recipe": recipe, "count": sum(_items_in(shard) for shard in shards), "requested_count": config.count,
            "shard_files": [shard.name for shard in shards], "bytes": sum(shard.stat().st_size for shard in shards),
            "wall_seconds": round(wall_seconds, 1), "teacher_network_calls": teacher_network_calls, **teacher.card}
    path.write_text(json.dumps(card, indent=2) + "\n")
    return card


class TeacherStore:
    """A built store, loaded whole (in memory: a diffusion item is 0.46 MB at 64x128, a segmenter_large one
    36 kB), checked against the shipped weights: a store of another teacher or other models would teach a
    student the wrong thing."""

    def __init__(self, directory: Path, teacher: str = "diffusion"):
        card_path = directory / "card.json"
        fix = "semcom distill store" + ("" if teacher == "diffusion" else f" --teacher {teacher}")
        if not card_path.is_file():
            raise FileNotFoundError(f"no teacher store at {directory}: run `{fix} --out {directory}`")
        self.card = json.loads(card_path.read_text())
        built = self.card["recipe"].get("teacher", "diffusion")  # stores built before there were two teachers
        if built != teacher:
            raise ValueError(f"the teacher store at {directory} holds the {built} teacher's outputs, not "
                             f"{teacher}'s: run `{fix}` with another --out")
        store.check_versions(f"the teacher store at {directory}", self.card["recipe"]["frozen_models"], fix)
        if self.card["count"] != self.card["requested_count"]:
            raise ValueError(f"the teacher store at {directory} holds {self.card['count']} of its "
                             f"{self.card['requested_count']} items: finish it (`{fix} --resume`)")
        shards = [np.load(directory / name) for name in self.card["shard_files"]]  # a missing one raises, named
        self.arrays = {name: np.concatenate([shard[name] for shard in shards]) for name in shards[0].files}
        self._batch = TEACHERS[teacher].batch

    def __len__(self) -> int:
        return len(next(iter(self.arrays.values())))

    def sample(self, rng: np.random.Generator, batch_size: int) -> tuple[torch.Tensor, ...]:
        """A batch drawn with replacement, as the teacher's batch function makes it: as_batch (the diffusion
        teacher) or encoder_batch."""
        index = np.sort(rng.integers(0, len(self), batch_size))
        return self._batch({name: array[index] for name, array in self.arrays.items()})
