"""Condition-aware low-rank adaptation (CALA, seed DeKA-g 2506.19893) of a frozen network.

Every Conv2d of the base network gains K low-rank updates (experts) of rank r,
mixed per item by a soft gate on the frame's condition (SNR, bandwidth ratio):

    W(c) = W + scale * sum_k g_k(c) B_k A_k

A_k has the base convolution's geometry with r output channels, B_k is a 1x1
convolution from r channels back (zero at the start, so training starts at the
base network). Run unmerged (training, and any condition): the A's of all experts
as one convolution, each expert's r maps scaled by its gate weight, the B's as one
1x1 convolution. Run merged (serving, one condition band): a plain copy of the
network with W(c) in place of W, so the adapters cost nothing per frame.

The variants the sweep compares (Gate.kind): "cala", a small MLP's softmax over K
experts; "single", one LoRA for every condition (K = 1, gate 1); "hard", one
expert per condition band, the gate the band's one-hot.
"""

from __future__ import annotations

import copy
import math

import torch
from torch import nn

from .adapters import GATES


def condition_features(condition: torch.Tensor) -> torch.Tensor:
    """[B, 2] (SNR dB, k/n) -> the gate's inputs, both about unit scale over the ranges served
    (SNR -5..20 dB, k/n 1/192..1/6)."""
    snr, rate = condition.float().unbind(1)
    return torch.stack([(snr - 7.5) / 7.5, (torch.log2(rate.clamp_min(1e-4)) + 5.0) / 2.5], 1)


class Gate(nn.Module):
    """condition [B, 2] -> expert weights [B, K] (rows sum to 1).

    bands: for "hard", the SNR band edges and the k/n band edges (dB, ratio); an item's expert is its
    band's index, SNR band major."""

    def __init__(self, kind: str, experts: int, hidden: int = 16,
                 bands: tuple[tuple[float, ...], tuple[float, ...]] = ((), ())):
        super().__init__()
        if kind not in GATES:
            raise ValueError(f"gate {kind!r}: expected one of {', '.join(GATES)}")
        snr_edges, rate_edges = bands
        if kind == "single" and experts != 1:
            raise ValueError(f"a single LoRA has one expert, not {experts}")
        if kind == "hard" and experts != (len(snr_edges) + 1) * (len(rate_edges) + 1):
            raise ValueError(f"hard selection: {experts} experts for {len(snr_edges) + 1} SNR x "
                             f"{len(rate_edges) + 1} rate bands")
        self.kind, self.experts = kind, experts
        self.register_buffer("snr_edges", torch.tensor(snr_edges, dtype=torch.float32))
        self.register_buffer("rate_edges", torch.tensor(rate_edges, dtype=torch.float32))
        self.net = (nn.Sequential(nn.Linear(2, hidden), nn.GELU(), nn.Linear(hidden, experts)) if kind == "cala"
                    else None)

    def forward(self, condition: torch.Tensor) -> torch.Tensor:
        if self.kind == "single":
            return condition.new_ones(condition.shape[0], 1, dtype=torch.float32)
        if self.kind == "hard":  # the band's index: how many edges the SNR and the rate are at or above
            snr, rate = condition.float().unbind(1)
            snr_band = (snr[:, None] >= self.snr_edges).sum(1)
            rate_band = (rate[:, None] >= self.rate_edges).sum(1)
            return nn.functional.one_hot(snr_band * (len(self.rate_edges) + 1) + rate_band, self.experts).float()
        return self.net(condition_features(condition)).float().softmax(1)


class LoRAConv2d(nn.Module):
    """A frozen Conv2d plus K gated rank-r updates; `gate` [B, K] is set before each forward (Adapted does)."""

    def __init__(self, base: nn.Conv2d, rank: int, experts: int):
        super().__init__()
        if base.groups != 1:
            raise ValueError("LoRA here adapts ungrouped convolutions")
        self.base, self.rank, self.experts = base, rank, experts
        self.scale = 1.0 / rank
        self.down = nn.Conv2d(base.in_channels, experts * rank, base.kernel_size, base.stride, base.padding,
                              base.dilation, bias=False, padding_mode=base.padding_mode)
        self.up = nn.Conv2d(experts * rank, base.out_channels, 1, bias=False)
        nn.init.kaiming_uniform_(self.down.weight, a=math.sqrt(5))
        nn.init.zeros_(self.up.weight)  # the update starts at zero: training starts at the base network
        self.gate: torch.Tensor | None = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.gate is None:
            raise RuntimeError("LoRAConv2d called without a gate: call it through Adapted")
        weights = self.gate.to(x.dtype).repeat_interleave(self.rank, 1)[:, :, None, None]
        return self.base(x) + self.scale * self.up(self.down(x) * weights)

    def delta(self, gate: torch.Tensor) -> torch.Tensor:
        """The weight update for one condition, gate [K]: scale * sum_k g_k B_k A_k, the base weight's shape."""
        down = self.down.weight.float().view(self.experts, self.rank, -1)  # [K, r, in * kh * kw]
        up = self.up.weight.float().view(-1, self.experts, self.rank).transpose(0, 1)  # [K, out, r]
        update = torch.einsum("k,kor,kri->oi", gate.float(), up, down)
        return (self.scale * update).view_as(self.base.weight)

    def merged(self, gate: torch.Tensor) -> nn.Conv2d:
        conv = copy.deepcopy(self.base)
        with torch.no_grad():
            conv.weight += self.delta(gate).to(conv.weight.dtype)
        return conv


class Adapted(nn.Module):
    """A frozen base network with LoRAConv2d in place of each of its Conv2d, and the gate over them:
    forward(*inputs, condition [B, 2]). Only the updates and the gate train."""

    def __init__(self, base: nn.Module, gate: Gate, rank: int):
        super().__init__()
        self.base, self.gate, self.rank = copy.deepcopy(base), gate, rank
        for parameter in self.base.parameters():
            parameter.requires_grad_(False)
        _replace_convs(self.base, lambda conv: LoRAConv2d(conv, rank, gate.experts))

    def train(self, mode: bool = True) -> Adapted:
        super().train(mode)
        # The frozen base stays in eval mode: its BatchNorm statistics must not move, since an adapter file ships
        # without them and is loaded over the shipped base.
        self.base.eval()
        return self

    def lora_layers(self) -> list[LoRAConv2d]:
        return [module for module in self.base.modules() if isinstance(module, LoRAConv2d)]

    def forward(self, *inputs: torch.Tensor, condition: torch.Tensor):
        weights = self.gate(condition)
        for layer in self.lora_layers():
            layer.gate = weights
        try:
            return self.base(*inputs)
        finally:
            for layer in self.lora_layers():
                layer.gate = None

    def merged(self, condition: torch.Tensor) -> nn.Module:
        """A plain copy of the base network with the updates of one condition [2] merged into its weights."""
        gate = self.gate(condition[None])[0].detach()
        network = copy.deepcopy(self.base)
        _replace_convs(network, lambda layer: layer.merged(gate), LoRAConv2d)
        return network.eval()

    def adapter_state(self) -> dict[str, torch.Tensor]:
        """What an adapter file holds: the updates and the gate, not the frozen base."""
        return {name: value for name, value in self.state_dict().items() if _is_adapter_key(name)}

    def load_adapter_state(self, state: dict[str, torch.Tensor]) -> None:
        expected = set(self.adapter_state())
        if set(state) != expected:
            raise ValueError(f"adapter state: keys {sorted(set(state) ^ expected)[:4]} differ from this model's")
        self.load_state_dict(state, strict=False)

    def adapter_parameters(self) -> int:
        return sum(value.numel() for value in self.adapter_state().values())


def _is_adapter_key(name: str) -> bool:
    return name.startswith("gate.") or ".down." in name or ".up." in name


def _replace_convs(module: nn.Module, make, kind: type = nn.Conv2d) -> None:
    """Replaces every child of type `kind` (recursively; not inside a replacement) by make(child)."""
    for name, child in module.named_children():
        if isinstance(child, kind):
            setattr(module, name, make(child))
        else:
            _replace_convs(child, make, kind)
