"""A committee: K trained MLPs whose class probabilities are averaged.

Averaging probabilities (not logits) is what makes a committee better calibrated and more
accurate than its members. `forward` returns the log of that mean, so everything that takes an
MLP's logits (softmax in model.inference, argmax, the RawPixels export wrapper, ONNX and
TorchScript) works on a committee unchanged: softmax(forward(x)) is the mean probability.
"""
from __future__ import annotations

import math
from collections.abc import Iterable

import torch
from torch import nn

from model.mlp import MLP, MLPConfig


class Committee(nn.Module):
    """MLPs of one input size and one class count, voting by their mean softmax."""

    def __init__(self, members: Iterable[MLP]):
        super().__init__()
        self.members = nn.ModuleList(members)
        if not len(self.members):
            raise ValueError("a committee needs at least one member")
        first = self.members[0].cfg
        for i, m in enumerate(self.members):
            if (m.cfg.in_features, m.cfg.num_classes) != (first.in_features, first.num_classes):
                raise ValueError(f"member {i} takes {m.cfg.in_features} pixels to {m.cfg.num_classes} classes, "
                                 f"member 0 {first.in_features} to {first.num_classes}")

    @classmethod
    def from_configs(cls, configs: Iterable[MLPConfig]) -> "Committee":
        """Freshly initialised members of these configs (weights come from a state dict next)."""
        return cls(MLP(c) for c in configs)

    @property
    def configs(self) -> list[MLPConfig]:
        return [m.cfg for m in self.members]

    @property
    def cfg(self) -> MLPConfig:
        """The first member's config: code written for one MLP reads in_features and num_classes
        (every member's) from here; `configs` has each member's hidden sizes."""
        return self.members[0].cfg

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """log(mean of the members' softmax), as logsumexp of log-softmaxes minus log K (no underflow)."""
        logp = torch.stack([torch.log_softmax(m(x), dim=1) for m in self.members])
        return torch.logsumexp(logp, dim=0) - math.log(len(self.members))

    @torch.inference_mode()
    def predict_proba(self, x: torch.Tensor) -> torch.Tensor:
        """The mean of the members' softmax (exactly a lone member's own)."""
        return torch.stack([torch.softmax(m(x), dim=1) for m in self.members]).mean(0)
