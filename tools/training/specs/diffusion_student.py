"""The few-step decoder student (seed arXiv 2506.13243): a lighter SPADE UNet that regenerates in one network
evaluation what the diffusion teacher (10 DDIM steps, classifier-free guidance: teacher_store.py) makes from
the same received condition and the same starting sample.

Knowledge distillation of an iterative sampler into one step, as Luhman & Luhman (2021): the student
predicts the velocity at the start timestep; its clean image sqrt(ab) x_t - sqrt(1 - ab) v is the receiver's
one DDIM step from there (`semcom serve receiver --decoder student`), and is trained by MSE to the teacher's.
Its data is the teacher store alone, computed once: the training loop makes no teacher call (counted: the
card's `teacher_network_calls_in_training`). Lighter than the teacher (widths 16/32/48, SPADE hidden 8;
the teacher's 32/64/96 and 32): about a fifth of a step's FLOPs.

    semcom distill store --count 1024              # once
    semcom train diffusion_student --steps 3000
"""

import torch

from semcom.common.models.layers import count_flops
from semcom.common.models.runtime import STUDENT_SAMPLER
from semcom.common.models.sampling import CosineSchedule

from ..data import TrainData, validation_description, validation_scenes
from ..spec import Spec
from ..teacher_store import DEFAULT_OUT, FROZEN_MODELS, TeacherStore, calls_since_counting, count_calls
from . import diffusion


def data(config) -> TrainData:
    directory = config.teacher_store or DEFAULT_OUT["diffusion"]
    teacher = TeacherStore(directory)
    validation = validation_scenes(config)
    count_calls("diffusion")
    card = teacher.card
    return TrainData(teacher.sample, validation,
                     f"teacher store {directory}: {card['count']} items ({card['bytes'] / 2**20:.0f} MiB, "
                     f"built in {card['wall_seconds']:.0f} s with {card['teacher_network_calls']} teacher network "
                     f"calls); teacher sampler {card['recipe']['teacher_sampler']}; modes {card['modes']}; "
                     f"{card['channel']}", validation_description(config))


_ALPHA_BAR = torch.from_numpy(CosineSchedule().alpha_bar)


def student_output(net, x_start: torch.Tensor, t_start: torch.Tensor, condition: torch.Tensor) -> torch.Tensor:
    """The student's clean image from the start sample (unclipped; the receiver clips to [-1, 1])."""
    alpha_bar = _ALPHA_BAR.to(x_start.device)[t_start].view(-1, 1, 1, 1)
    velocity = net(x_start, t_start, condition).float()
    return alpha_bar.sqrt() * x_start - (1 - alpha_bar).sqrt() * velocity


def loss(parts, x_start, t_start, condition, teacher, channel):
    return (student_output(parts["net"], x_start, t_start, condition) - teacher).pow(2).mean()


def evaluate(parts, images, labels, seed):
    """The teacher's evaluation (diffusion.evaluate: the same modes, channel and seeds) with the student's one
    step; and the count of teacher calls made while it trained in this run (0 is the point of the store)."""
    calls = calls_since_counting("diffusion")
    metrics = diffusion.evaluate(parts, images, labels, seed, sampler=STUDENT_SAMPLER)
    return metrics if calls is None else {**metrics, "teacher_network_calls_in_training": calls}


def flops(parts, image):
    """Its one network evaluation per frame."""
    condition = torch.zeros(1, parts["net"].num_classes + 3, *image.shape[-2:])
    return {"net_per_frame": count_flops(parts["net"], image, torch.zeros(1, dtype=torch.long), condition)}


SPEC = Spec({"net": {"class": "SemanticDiffusionUNet",
                     "kwargs": {"num_classes": 19, "widths": [16, 32, 48], "prediction": "v", "spade_hidden": 8}}},
            loss, evaluate, flops, default_steps=3000, uses_channel=False, ema_decay=0.999, batch_size=16,
            data=data, trained_on=FROZEN_MODELS)
