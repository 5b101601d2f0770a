"""The memory one training run needs, checked before it starts: a width of 10^7 otherwise dies
of an out-of-memory traceback after the data has loaded (model.train, and every trial of a search).

The memory estimate of one run, in bytes, for hidden widths h_1..h_n and batch size B:

    4 x (4 x P + (6 x B + 2 x 8192) x S) + N x D x 4

  D = H x W pixels per image and K classes, from the data (784 and 10 for MNIST), N its images
  P = sum over the Linear layers (D -> h_1 -> ... -> h_n -> K) of (inputs + 1) x outputs,
      plus 2 x sum(h) of LayerNorm (counted whether LayerNorm is on or not)
  4 x P: float32 weights, gradients and two optimiser buffers (AdamW's moments; SGD has one)
  S = D + sum(h) + K values per image; a training step keeps about 6 of each per image
      (Linear, LayerNorm and dropout outputs, the dropout mask, and gradients during backward);
      model.loop.predict's evaluation batches of 8192 images keep about 2
  N x D x 4: the normalised images held on the trial's device

B is the batch size (a search: the largest its space can pick), at most N (an epoch never batches
more images than the training split has). The bound is compared, simply, with the whole memory of
one device: the machine's physical memory, or the GPU's when the run's device resolves to CUDA
here. Trials running side by side share it, so passing this check does not promise they all fit
at once.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Sequence

from common.errors import FieldError
from model.loop import resolve_device

BYTES = 4  # float32
STATE_COPIES = 4  # weights, gradients, two optimiser buffers
TRAIN_COPIES, EVAL_COPIES = 6, 2  # values kept per unit and image in a training step / an evaluation batch
EVAL_BATCH = 8192  # model.loop.predict's batch


@dataclass(frozen=True)
class DataShape:
    """What the estimate needs to know of the data: pixels per image, classes, training images."""

    in_features: int  # pixels per image
    classes: int
    images: int  # training images (the largest batch a trial can take)


def n_params(hidden: Sequence[int], data: DataShape) -> int:
    """Parameters of model.mlp.MLP with these hidden widths, LayerNorm included."""
    widths = [data.in_features, *hidden, data.classes]
    return sum((a + 1) * b for a, b in zip(widths, widths[1:])) + 2 * sum(hidden)


def trial_bytes(hidden: Sequence[int], batch_size: int, data: DataShape) -> int:
    """The estimate of one run's peak memory (see the module docstring)."""
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


def check_memory(hidden: Sequence[int], batch_size: int, device: str, data: DataShape) -> None:
    """Refuse, in one line naming --hidden-sizes, a network that cannot train on this device."""
    need = trial_bytes(hidden, batch_size, data)
    limit, has = device_memory(device)
    if need > limit:
        raise FieldError("hidden_sizes", list(hidden), f"needs about {need / 1e9:.1f} GB (parameters, gradients, "
                         f"optimiser state and activations at batch {min(batch_size, data.images)}); "
                         f"{has} {limit / 1e9:.1f} GB")
