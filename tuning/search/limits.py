"""Checks of a search space against what its trials can run, made before anything is created.

Two spaces used to fail only once the search ran: one searching `epochs` (ASHA's max_t is the
`--epochs` of every trial, so a searched value ran trials far past `--epochs`), and one with a
width of 10^7 (every trial died of an out-of-memory traceback).
The memory estimate of one trial is model/memory.py's; here it is applied to the largest network
and batch size a space can build.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

from model.config import TrainConfig
from model.memory import DataShape, device_memory, trial_bytes
from tuning.search.space import DEPTH, WIDTH, Param, SearchSpace, SpaceError

if TYPE_CHECKING:
    from data.splits import Splits


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


def largest_batch(space: SearchSpace, base: TrainConfig) -> int:
    """The largest batch size a trial of this space can get."""
    if "batch_size" in space.params:
        return int(max(_candidates(space.params["batch_size"])))
    return base.batch_size


def check_limits(space: SearchSpace, base: TrainConfig, max_epochs: int, data: DataShape,
                 memory: int | None = None) -> None:
    """Refuse, in one line, a space no trial of which can run as asked.

    `base` is the space's fixed settings with the flags on top, `max_epochs` every trial's maximum
    (ASHA's max_t); `memory` replaces the memory of the device found here (tests); `data` is the shape of
    the data set.
    """
    if "epochs" in space.params:
        raise SpaceError(f"{space.path}: params: epochs cannot be searched (it is every trial's maximum, ASHA's "
                         f"max_t, {max_epochs} here); set fixed.epochs or --epochs")
    batch = min(largest_batch(space, base), data.images)
    need, label = max((trial_bytes(hidden, batch, data), label) for label, hidden in widest(space, base))
    limit, has = (memory, "this machine has") if memory is not None else device_memory(base.device)
    if need > limit:
        raise SpaceError(f"{space.path}: {label} needs about {need / 1e9:.1f} GB per trial (parameters, gradients, "
                         f"optimiser state and activations at batch {batch}); {has} {limit / 1e9:.1f} GB")


def fitting(splits: "Splits", space: SearchSpace, base: TrainConfig) -> "Splits":
    """`splits`, once check_limits agrees that trials on data of its shape fit this machine."""
    shape = DataShape(splits.in_features, len(splits.classes), len(splits.train_y))
    check_limits(space, base, base.epochs, shape)
    return splits
