"""The MLP: Linear -> LayerNorm -> ReLU -> Dropout blocks, He initialisation, logits out.

The notebook put a softmax in front of CrossEntropyLoss (a double softmax: its loss stuck
near 1.50 at 97 % accuracy). Here the network returns logits; probabilities come from
`predict_proba` at prediction time only.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn


@dataclass(kw_only=True)
class MLPConfig:
    """The network's shape. Inputs and classes come from the data, never a default: keyword-only, so
    they stay required while the fields keep their order (a card's "mlp" is written in it)."""

    in_features: int  # H x W pixels, flattened
    hidden_sizes: list[int] = field(default_factory=lambda: [512, 256])  # widths of the hidden layers
    num_classes: int  # output logits, one per class
    dropout: float = 0.2  # drop probability after each hidden block; 0 disables it
    layer_norm: bool = True  # LayerNorm after each hidden Linear, as in the notebook


class FastDropout(nn.Module):
    """Inverted dropout whose CPU mask comes from numpy's PCG64 random bytes.

    torch's CPU dropout draws one Mersenne-Twister number per element and costs as much as
    the largest matmul of this network; raw PCG64 bytes compared with a threshold are far
    cheaper. p is quantised to 1/256 on CPU (0.2 -> 51/256). On CUDA, torch's own dropout.
    """

    def __init__(self, p: float, seed: int = 0):
        super().__init__()
        if not 0 <= p < 1:
            raise ValueError(f"dropout must be in [0, 1), got {p}")
        self.p = p
        self.threshold = round(p * 256)
        self.scale = 256.0 / (256 - self.threshold)
        self.rng = np.random.default_rng(seed)

    def reseed(self, seed: int) -> None:
        self.rng = np.random.default_rng(seed)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0:
            return x
        if x.is_cuda:
            return nn.functional.dropout(x, self.p, True)
        n = x.numel()
        raw = self.rng.bit_generator.random_raw((n + 7) // 8)  # uint64, writable, 8 random bytes each
        b = torch.from_numpy(raw).view(torch.uint8)[:n].view(x.shape)
        keep = torch.ge(b, self.threshold, out=torch.empty_like(x)).mul_(self.scale)  # mask in x's dtype, one pass
        return x * keep

    def extra_repr(self) -> str:
        return f"p={self.p}"


class MLP(nn.Module):
    def __init__(self, cfg: MLPConfig | None = None, **overrides):
        super().__init__()
        cfg = cfg or MLPConfig(**overrides)
        self.cfg = cfg
        layers: list[nn.Module] = []
        width = cfg.in_features
        for h in cfg.hidden_sizes:
            layers.append(nn.Linear(width, h))
            if cfg.layer_norm:
                layers.append(nn.LayerNorm(h))
            layers.append(nn.ReLU(inplace=True))
            if cfg.dropout > 0:
                layers.append(FastDropout(cfg.dropout))
            width = h
        layers.append(nn.Linear(width, cfg.num_classes))
        self.net = nn.Sequential(*layers)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """He (Kaiming) normal init for ReLU layers; biases zero, as the notebook did."""
        for m in self.modules():
            if isinstance(m, nn.Linear):
                nn.init.kaiming_normal_(m.weight, nonlinearity="relu")
                nn.init.zeros_(m.bias)

    def seed_dropout(self, seed: int) -> None:
        """Seed every dropout mask stream from one seed, so runs repeat exactly."""
        for i, m in enumerate(m for m in self.modules() if isinstance(m, FastDropout)):
            m.reseed(seed * 1009 + i)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x.flatten(1))  # not reshape(len(x), -1): len() would fix the batch size in an export

    @torch.inference_mode()
    def predict_proba(self, x: torch.Tensor) -> torch.Tensor:
        return torch.softmax(self(x), dim=1)


def count_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
