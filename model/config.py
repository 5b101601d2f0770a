"""TrainConfig: every hyperparameter of one training run, the names the tuner searches.

Each field's docstring is its `--help` text (common/cli.py).
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Literal

from common.errors import FieldError
from model.mlp import MLPConfig


@dataclass
class TrainConfig:
    """Every hyperparameter of one training run; the tuner searches over these names."""

    lr: float = 0.05
    """Learning rate (peak rate when a schedule is used)."""
    batch_size: int = 128
    """Images per optimiser step."""
    epochs: int = 12
    """Passes over the training split."""
    optimizer: Literal["sgd", "adamw"] = "sgd"
    """SGD (the notebook's choice) or AdamW."""
    momentum: float = 0.9
    """SGD momentum (the notebook used none; 0.9 trains faster)."""
    nesterov: bool = True
    """Nesterov momentum for SGD (ignored when momentum is 0)."""
    weight_decay: float = 0.0
    """L2 penalty (decoupled for AdamW)."""
    schedule: Literal["none", "cosine", "step"] = "cosine"
    """Learning-rate schedule: constant, cosine to zero over all steps, or step decay."""
    step_size: int = 5
    """Epochs between decays of the step schedule."""
    gamma: float = 0.1
    """Multiplier applied by each step decay."""
    hidden_sizes: list[int] = field(default_factory=lambda: [512, 256])
    """Widths of the hidden layers (their number is the depth)."""
    dropout: float = 0.2
    """Dropout probability after each hidden block (0 = off)."""
    layer_norm: bool = True
    """LayerNorm after each hidden Linear, as in the notebook."""
    augment_shift: int = 0
    """Random shifts of up to +/-k pixels applied to training batches (0 = off)."""
    distort_rotate: float = 0.0
    """Distortion: each training image turned by its own angle in [-r, r] degrees, new every epoch (0 = off;
    Ciresan et al. 2010 used up to 15)."""
    distort_scale: float = 0.0
    """Distortion: width and height each scaled by a factor in [1 - s, 1 + s] (0 = off; Ciresan: 0.15-0.2)."""
    distort_shear: float = 0.0
    """Distortion: sheared by an angle in [-a, a] degrees (0 = off)."""
    distort_translate: float = 0.0
    """Distortion: moved by up to +/- this many pixels each way, in fractions of a pixel (0 = off)."""
    elastic_alpha: float = 0.0
    """Elastic distortion (Simard et al. 2003): a random field smoothed by a Gaussian of elastic_sigma px,
    scaled by alpha px (0 = off; Simard: 34 with sigma 4 on 28x28 digits, Ciresan: 36-38 with sigma 5-6)."""
    elastic_sigma: float = 4.0
    """Width in pixels of the Gaussian that smooths the elastic field (larger: smoother, gentler warps)."""
    seed: int = 0
    """Seeds weights, batch order, dropout and augmentation: same seed, same metrics on CPU."""
    threads: int = 0
    """torch CPU threads; 0 = every CPU this process may use."""
    device: str = "auto"
    """'auto' (CUDA when available), 'cpu' or 'cuda[:N]'."""
    cuda_graphs: bool = True
    """On a GPU, capture each training step once as a CUDA graph and replay it (a step at small batch
    sizes is otherwise all kernel launches); falls back to eager steps, with a log line, where capture
    fails. No effect on CPU."""
    precision: Literal["auto", "fp32", "bf16"] = "fp32"
    """Forward pass in bf16 autocast (weights, optimiser and evaluation stay fp32). 'auto' = bf16 only
    where the hardware has bf16 units and a timed probe at this shape finds it faster than fp32."""

    def validate(self) -> "TrainConfig":
        """Raise a FieldError for the first bad field, so CLIs fail in one line."""
        checks = [
            ("lr", self.lr > 0 and math.isfinite(self.lr), "must be > 0"),
            ("batch_size", self.batch_size >= 1, "must be >= 1"),
            ("epochs", self.epochs >= 1, "must be >= 1"),
            ("momentum", 0 <= self.momentum < 1, "must be in [0, 1)"),
            ("weight_decay", self.weight_decay >= 0, "must be >= 0"),
            ("step_size", self.step_size >= 1, "must be >= 1"),
            ("gamma", 0 < self.gamma <= 1, "must be in (0, 1]"),
            ("hidden_sizes", len(self.hidden_sizes) >= 1 and min(self.hidden_sizes) >= 1, "need widths >= 1"),
            ("dropout", 0 <= self.dropout < 1, "must be in [0, 1)"),
            ("augment_shift", 0 <= self.augment_shift <= 8, "must be in 0..8"),
            ("distort_rotate", 0 <= self.distort_rotate <= 180, "must be in [0, 180] degrees"),
            ("distort_scale", 0 <= self.distort_scale < 1, "must be in [0, 1)"),
            ("distort_shear", 0 <= self.distort_shear < 90, "must be in [0, 90) degrees"),
            ("distort_translate", 0 <= self.distort_translate <= 64, "must be in [0, 64] pixels"),
            ("elastic_alpha", 0 <= self.elastic_alpha <= 1000, "must be in [0, 1000] pixels"),
            ("elastic_sigma", 0.5 <= self.elastic_sigma <= 32, "must be in [0.5, 32] pixels"),
            ("threads", self.threads >= 0, "must be >= 0"),
            ("optimizer", self.optimizer in ("sgd", "adamw"), "must be sgd or adamw"),
            ("schedule", self.schedule in ("none", "cosine", "step"), "must be none, cosine or step"),
            ("precision", self.precision in ("auto", "fp32", "bf16"), "must be auto, fp32 or bf16"),
        ]
        for name, ok, why in checks:
            if not ok:
                raise FieldError(name, getattr(self, name), why)
        return self

    def mlp(self, in_features: int, num_classes: int) -> MLPConfig:
        """The network for inputs of `in_features` pixels and `num_classes` classes (both from the data)."""
        return MLPConfig(in_features=in_features, hidden_sizes=list(self.hidden_sizes), num_classes=num_classes,
                         dropout=self.dropout, layer_norm=self.layer_norm)

    def to_dict(self) -> dict:
        return asdict(self)
