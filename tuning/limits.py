"""Checks of a search space against what its trials can run, made before anything is created.

Two spaces used to fail only once the search ran: one searching `epochs` (ASHA's max_t is the
`--epochs` of every trial, so a searched value up to 100,000 ran 1,418 epochs despite
`--epochs 1`), and one with a width of 10^7 (every trial died of an out-of-memory traceback).

The memory estimate of one trial, in bytes, for hidden widths h_1..h_n and batch size B:

    4 x (4 x P + (6 x B + 2 x 8192) x S) + N x D x 4

  D = H x W pixels per image and K classes, from the data (784 and 10 for MNIST), N its images
  P = sum over the Linear layers (D -> h_1 -> ... -> h_n -> K) of (inputs + 1) x outputs,
      plus 2 x sum(h) of LayerNorm (counted whether LayerNorm is on or not)
  4 x P: float32 weights, gradients and two optimiser buffers (AdamW's moments; SGD has one)
  S = D + sum(h) + K values per image; a training step keeps about 6 of each per image
      (Linear, LayerNorm and dropout outputs, the dropout mask, and gradients during backward);
      model.loop.predict's evaluation batches of 8192 images keep about 2
  N x D x 4: the normalised images held on the trial's device

B is the largest batch size of the space, at most N (an epoch never batches more images than
the training split has). The bound is compared, simply, with the whole memory of one device: the
machine's physical memory, or the GPU's when `base.device` resolves to CUDA here. Trials running
side by side share it, so passing this check does not promise they all fit at once.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Sequence

from model.config import TrainConfig
from model.loop import resolve_device
from tuning.space import DEPTH, WIDTH, Param, SearchSpace, SpaceError

if TYPE_CHECKING:
    from data.splits import Splits

BYTES = 4  # float32
STATE_COPIES = 4  # weights, gradients, two optimiser buffers
TRAIN_COPIES, EVAL_COPIES = 6, 2  # values kept per unit and image in a training step / an evaluation batch
EVAL_BATCH = 8192  # model.loop.predict's batch


@dataclass(frozen=True)
class DataShape:
    """What the estimate needs to know of the data: pixels per image, classes, training images."""

    in_features: int = 784  # MNIST's 28 x 28
    classes: int = 10
    images: int = 60_000


def n_params(hidden: Sequence[int], data: DataShape = DataShape()) -> int:
    """Parameters of model.mlp.MLP with these hidden widths, LayerNorm included."""
    widths = [data.in_features, *hidden, data.classes]
    return sum((a + 1) * b for a, b in zip(widths, widths[1:])) + 2 * sum(hidden)


def trial_bytes(hidden: Sequence[int], batch_size: int, data: DataShape = DataShape()) -> int:
    """The estimate of one trial's peak memory (see the module docstring)."""
    batch = min(batch_size, data.images)
    per_image = data.in_features + sum(hidden) + data.classes
    return BYTES * (STATE_COPIES * n_params(hidden, data) + (TRAIN_COPIES * batch + EVAL_COPIES * EVAL_BATCH) * per_image) \
        + data.images * data.in_features * BYTES


def device_memory(device: str) -> tuple[int, str]:
    """(bytes, what they are) of the device trials of `device` ('auto', 'cpu', 'cuda:N') train on."""
    dev = resolve_device(device)
    if dev.type == "cuda":
        import torch

        props = torch.cuda.get_device_properties(dev)
        return int(props.total_memory), f"the GPU ({props.name}) has"
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"), "this machine has"


def _candidates(p: Param) -> list[Any]:
    """Every value a parameter can take at its extremes: grid values, choices, the upper bound."""
    return [*(p.values or []), *(p.choices or []), *([p.high] if p.high is not None else [])]


def widest(space: SearchSpace, base: TrainConfig) -> list[tuple[str, list[int]]]:
    """(label, hidden widths) of the largest networks the space can build, for the message."""
    if "hidden_sizes" in space.params:
        return [(f"params.hidden_sizes {list(h)}", list(h)) for h in _candidates(space.params["hidden_sizes"])]
    if WIDTH in space.params:
        width = int(max(_candidates(space.params[WIDTH])))
        depth = int(max(_candidates(space.params[DEPTH])))
        return [(f"width {width}" + (f" (at n_layers {depth})" if depth > 1 else ""), [width] * depth)]
    where = "fixed.hidden_sizes" if "hidden_sizes" in space.fixed else "hidden_sizes"
    return [(f"{where} {list(base.hidden_sizes)}", list(base.hidden_sizes))]


def check_limits(space: SearchSpace, base: TrainConfig, max_epochs: int, memory: int | None = None,
                 data: DataShape = DataShape()) -> None:
    """Refuse, in one line, a space no trial of which can run as asked.

    `base` is the space's fixed settings with the flags on top, `max_epochs` every trial's maximum
    (ASHA's max_t); `memory` replaces the memory of the device found here (tests); `data` is the shape of
    the data set (MNIST's until it has been read).
    """
    if "epochs" in space.params:
        raise SpaceError(f"{space.path}: params: epochs cannot be searched (it is every trial's maximum, ASHA's "
                         f"max_t, {max_epochs} here); set fixed.epochs or --epochs")
    batch = base.batch_size
    if "batch_size" in space.params:
        batch = int(max(_candidates(space.params["batch_size"])))
    batch = min(batch, data.images)
    need, label = max((trial_bytes(hidden, batch, data), label) for label, hidden in widest(space, base))
    limit, has = (memory, "this machine has") if memory is not None else device_memory(base.device)
    if need > limit:
        raise SpaceError(f"{space.path}: {label} needs about {need / 1e9:.1f} GB per trial (parameters, gradients, "
                         f"optimiser state and activations at batch {batch}); {has} {limit / 1e9:.1f} GB")


def fitting(splits: "Splits", space: SearchSpace, base: TrainConfig) -> "Splits":
    """`splits`, once check_limits agrees that trials on data of its shape fit this machine."""
    shape = DataShape(splits.in_features, len(splits.classes), len(splits.train_y))
    check_limits(space, base, base.epochs, data=shape)
    return splits
