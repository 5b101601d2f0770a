"""Budgets that follow the data: how long a trial trains before a rung may judge it.

Rungs are counted in epochs, and an epoch of a few thousand images is a handful of optimiser steps:
on a small set a rung at a fixed epoch judges trials that have hardly begun to learn, and stops
nearly all of them (benchmarks/README.md, issue 29, "Small sets").
"""
from __future__ import annotations

import math

MIN_RUNG_STEPS = 150
"""Optimiser steps a trial has taken, at the space's largest batch size, before any rung judges it
(on MNIST's 48,000 training images one epoch at batch 256 is 188 steps: its rungs are as they were)."""


def first_rung(grace_period: int, train_images: int, largest_batch: int, min_steps: int = MIN_RUNG_STEPS) -> int:
    """The grace period in epochs, raised until that many epochs hold `min_steps` steps at `largest_batch`."""
    steps = max(1, math.ceil(train_images / max(1, largest_batch)))
    return max(grace_period, math.ceil(min_steps / steps))


def rung_note(grace: int, train_images: int, largest_batch: int, max_epochs: int, min_steps: int) -> str:
    """The line a search prints when the data moved its first rung."""
    where = f"from epoch {grace}" if grace < max_epochs else "none: every trial runs all its epochs"
    return (f"{train_images} training images make {math.ceil(train_images / largest_batch)} steps per epoch at "
            f"batch {largest_batch}: rungs {where} (each trial takes {min_steps}+ steps before it is judged; --min-rung-steps)")
