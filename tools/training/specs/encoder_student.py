"""The lightweight channel-adaptive encoder student (seed arXiv 2506.13243): from the image straight to what the
semantic-map codec sends, in place of segmenter + map encoder, distilled from the large transmitter model
(segmenter_large and the map codec's encoder) on the task the receiver needs: the map its frozen map decoder
reads after the channel.

Its data is the teacher store alone (`semcom distill store --teacher segmenter_large`: each training scene, the
large model's map and the features it sends), computed once: the training loop makes no teacher call (counted,
the card's `teacher_network_calls_in_training`). Each item goes through its own channel draw (AWGN or Rayleigh,
SNR uniform in -5..20 dB), which the encoder is told (its design SNR: at the transmitter, the channel's
feedback). The loss, an information bottleneck:

    cross-entropy(map decoder(channel(mean + sigma * noise)), teacher's map)      the task at the receiver
    + HINT_WEIGHT * MSE(mean, teacher's features), each at unit power               the large model's features
    + beta * KL(N(mean, sigma^2) || N(0, 1)) per sent value                         the rate

The mean is what is sent; the KL, in bits per frame, is the rate the card reports (an upper bound on the
information the sent features carry about the image).

    semcom distill store --teacher segmenter_large --count 4000     # once
    semcom train encoder_student --steps 1500
"""

import copy
import math
from functools import lru_cache

import torch
from torch.nn import functional as F

from semcom.common.models import store
from semcom.common.models.layers import count_flops
from semcom.common.models.presets import CPU
from semcom.common.quality import confusion_matrix, mean_iou

from ..channel_in_the_loop import ChannelInTheLoop
from ..data import TrainData, validation_description, validation_scenes
from ..spec import Spec, one_hot
from ..teacher_store import DEFAULT_OUT, ENCODER_FROZEN_MODELS, TeacherStore, calls_since_counting, count_calls

TEACHER = "segmenter_large"
IB_BETA = 0.01  # the shipped student's (experiments/encoder_student_study.py sweeps it)
HINT_WEIGHT = 1.0
EVAL_SNRS_DB = (-5.0, 0.0, 5.0, 10.0, 20.0)
STALE_DESIGN_SNR_DB = 10.0  # evaluation: the encoder told 10 dB whatever the channel (feedback gone stale)


def data(config) -> TrainData:
    directory = config.teacher_store or DEFAULT_OUT[TEACHER]
    teacher = TeacherStore(directory, TEACHER)
    validation = validation_scenes(config)
    count_calls(TEACHER)
    card = teacher.card
    return TrainData(teacher.sample, validation,
                     f"teacher store {directory}: {card['count']} training scenes with {TEACHER}'s maps and the "
                     f"features it sends ({card['bytes'] / 2**20:.0f} MiB, built in {card['wall_seconds']:.0f} s with "
                     f"{card['teacher_network_calls']} teacher network calls); channel drawn per item: awgn or "
                     "rayleigh, SNR uniform in [-5, 20] dB, told to the encoder", validation_description(config))


@lru_cache(maxsize=1)
def map_decoder():
    """The shipped map codec's decoder, frozen (its own copy: the receiver's cached module is left alone)."""
    decoder = copy.deepcopy(store.load("map_codec")["decoder"]).eval()
    return decoder.requires_grad_(False)


def unit_power(features: torch.Tensor) -> torch.Tensor:
    """Each item scaled to mean square 1, as models.jscc.to_symbols sends it."""
    return features / features.float().pow(2).mean((1, 2, 3), keepdim=True).clamp_min(1e-12).sqrt()


def rate_nats(mean: torch.Tensor, log_variance: torch.Tensor) -> torch.Tensor:
    """KL(N(mean, sigma^2) || N(0, 1)) per item, summed over the sent values, in nats [B]."""
    return 0.5 * (mean.pow(2) + log_variance.exp() - 1 - log_variance).flatten(1).sum(1)


def make_loss(beta: float = IB_BETA, train_snr_db: float | None = None):
    """The loss with the rate's weight `beta`; with `train_snr_db`, every item's channel at that one SNR (a
    codec trained for one SNR, ADJSCC's baseline) instead of drawn in -5..20 dB."""
    def loss(parts, images, teacher_map, teacher_features, channel):
        snrs = channel.draw_snrs(len(images)) if train_snr_db is None else [train_snr_db] * len(images)
        mean, log_variance = parts["encoder"](images, torch.tensor(snrs, dtype=torch.float32))
        sample = mean + (0.5 * log_variance).exp() * torch.randn_like(mean)
        decoder = parts["decoder"] if "decoder" in parts else map_decoder()  # one trained beside it (a study)
        task = F.cross_entropy(decoder(channel.features(sample, snrs)).float(), teacher_map)
        hint = F.mse_loss(unit_power(mean.float()), unit_power(teacher_features))
        rate = rate_nats(mean.float(), log_variance.float()).mean() / mean[0].numel()
        return task + HINT_WEIGHT * hint + beta * rate

    return loss


def receiver_miou(features, labels: torch.Tensor, model: str, snr_db: float, seed: int, decoder=None) -> float:
    """mIoU of the map the receiver decodes from `features` [N, C, h, w] sent over `model` at `snr_db` (with the
    shipped map decoder, or `decoder`)."""
    channel = ChannelInTheLoop((model,), seed=seed)
    decoder = map_decoder() if decoder is None else decoder
    predictions = torch.cat([decoder(channel.features(batch, snr_db)).argmax(1) for batch in features.split(32)])
    return mean_iou(confusion_matrix(labels.numpy(), predictions.numpy(), CPU.num_classes))


def student_features(encoder, images: torch.Tensor, design_snr_db: float) -> tuple[torch.Tensor, torch.Tensor]:
    """(means, rate in nats per item) of the student told `design_snr_db`, in batches of 32."""
    means, rates = [], []
    for batch in images.split(32):
        mean, log_variance = encoder(batch, torch.full((len(batch),), design_snr_db))
        means.append(mean)
        rates.append(rate_nats(mean, log_variance))
    return torch.cat(means), torch.cat(rates)


def large_features(images: torch.Tensor) -> torch.Tensor:
    """What the large transmitter model sends: the map codec's features of segmenter_large's map."""
    net, encoder = store.load(TEACHER)["net"], store.load("map_codec")["encoder"]
    return torch.cat([encoder(one_hot(net(batch).argmax(1), CPU.num_classes)) for batch in images.split(32)])


def evaluate(parts, images, labels, seed):
    """The receiver's mIoU (ground truth) with the student told the channel's SNR, and told 10 dB whatever it is;
    the large model's on the same channel draws; the rate; and the teacher calls made while it trained."""
    calls = calls_since_counting(TEACHER)  # before the large model runs below
    metrics = {} if calls is None else {"teacher_network_calls_in_training": calls}
    stale, _ = student_features(parts["encoder"], images, STALE_DESIGN_SNR_DB)
    large = large_features(images)
    for model in ("awgn", "rayleigh"):
        for snr in EVAL_SNRS_DB:
            told, rates = student_features(parts["encoder"], images, snr)
            metrics[f"miou_{model}_{snr:g}db"] = receiver_miou(told, labels, model, snr, seed)
            metrics[f"large_miou_{model}_{snr:g}db"] = receiver_miou(large, labels, model, snr, seed)
            if parts["encoder"].snr_adaptive:
                metrics[f"miou_{model}_{snr:g}db_told_{STALE_DESIGN_SNR_DB:g}db"] = receiver_miou(
                    stale, labels, model, snr, seed)
            if model == "awgn":
                metrics[f"rate_bits_per_frame_{snr:g}db"] = float(rates.mean()) / math.log(2)
    return metrics


def flops(parts, image):
    return {"encoder": count_flops(parts["encoder"], image, torch.zeros(1))}


SPEC = Spec({"encoder": {"class": "ChannelAdaptiveEncoder",
                         "kwargs": {"channels": 4, "widths": [16, 32, 48, 64], "snr_adaptive": True}}},
            make_loss(), evaluate, flops, default_steps=1500, batch_size=16, data=data,
            trained_on=ENCODER_FROZEN_MODELS)
