"""The eager training step, shared by model.loop's epochs and model.graphed's last partial batch."""
from __future__ import annotations

import contextlib

import torch
import torch.nn.functional as F


def train_step(run, xb: torch.Tensor, yb: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """One optimiser step (and schedule step) of a model.loop.Run on a batch; returns the detached
    loss and logits.

    Autocast wraps each forward pass on its own: it caches the bf16 copies of the weights until
    its context exits, so one context around many steps would keep training step 0's weights.
    """
    with torch.autocast(xb.device.type, dtype=run.amp) if run.amp else contextlib.nullcontext():
        logits = run.model(xb)
    loss = F.cross_entropy(logits.float(), yb)
    run.optimizer.zero_grad(set_to_none=True)
    loss.backward()
    run.optimizer.step()
    if run.scheduler is not None:
        run.scheduler.step()
    return loss.detach(), logits.detach()
