"""`precision: auto` decided by measuring: a short timed probe of fp32 against bf16 autocast steps.

bf16 autocast pays only where the hardware multiplies bf16 natively *and* the matrices are big
enough for the casts (extra kernels) to be worth it: on a GPU it was slower than fp32 at every
batch size of these small MLPs (issue 14), on CPUs with AVX512-BF16/AMX faster (benchmarks/README.md).
So `auto` times a few steps of both at the trial's shape (widths, batch size, device), once per
process and shape, and takes bf16 only when it is clearly faster. Where bf16 is emulated (no
native units) the answer is fp32 without probing: emulation is always slower.
"""
from __future__ import annotations

import logging
import time
from typing import Callable

import torch
import torch.nn.functional as F

log = logging.getLogger(__name__)

PROBE_STEPS = 8  # timed steps per precision (after WARMUP untimed ones)
WARMUP = 3
MARGIN = 0.95  # bf16 must take under 95 % of fp32's time to be chosen: noise must not flip it

_decided: dict[tuple, torch.dtype | None] = {}


def has_native_bf16(device: torch.device) -> bool:
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    checks = [getattr(torch.cpu, f, lambda: False) for f in ("_is_avx512_bf16_supported", "_is_amx_tile_supported")]
    return any(f() for f in checks)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_steps(model: torch.nn.Module, batch: int, in_features: int, classes: int, device: torch.device,
               dtype: torch.dtype | None, steps: int = PROBE_STEPS) -> float:
    """Seconds per training step of `model` at this batch size, in autocast `dtype` (None = fp32)."""
    opt = torch.optim.SGD(model.parameters(), lr=1e-6)
    gen = torch.Generator(device=device).manual_seed(0)
    x = torch.randn(batch, in_features, device=device, generator=gen)
    y = torch.randint(0, classes, (batch,), device=device, generator=gen)

    def step() -> None:
        with torch.autocast(device.type, dtype=dtype) if dtype else torch.autocast(device.type, enabled=False):
            logits = model(x)
        loss = F.cross_entropy(logits.float(), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    for _ in range(WARMUP):
        step()
    _sync(device)
    t0 = time.perf_counter()
    for _ in range(steps):
        step()
    _sync(device)
    return (time.perf_counter() - t0) / steps


def probe(make_model: Callable[[], torch.nn.Module], batch: int, in_features: int, classes: int,
          device: torch.device) -> tuple[torch.dtype | None, dict[str, float]]:
    """(bf16 or None, seconds per step of each) from timing fresh copies of the model; the global
    random state is left as it was, so seeded training is unchanged by the probe."""
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        fp32 = time_steps(make_model().to(device), batch, in_features, classes, device, None)
        bf16 = time_steps(make_model().to(device), batch, in_features, classes, device, torch.bfloat16)
    return (torch.bfloat16 if bf16 < MARGIN * fp32 else None), {"fp32": fp32, "bf16": bf16}


def auto_dtype(key: tuple, make_model: Callable[[], torch.nn.Module], batch: int, in_features: int,
               classes: int, device: torch.device) -> torch.dtype | None:
    """The `auto` decision for this shape on this device, probed once per process."""
    if not has_native_bf16(device):
        return None
    if key not in _decided:
        _decided[key], times = probe(make_model, batch, in_features, classes, device)
        log.info("precision auto at %s: fp32 %.3f ms, bf16 %.3f ms per step -> %s", key,
                 1e3 * times["fp32"], 1e3 * times["bf16"], "bf16" if _decided[key] else "fp32")
    return _decided[key]
