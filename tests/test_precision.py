"""model/precision.py: `precision: auto` is measured, never assumed."""
from __future__ import annotations

import torch

from model import precision
from model.mlp import MLP, MLPConfig

CPU = torch.device("cpu")


def small() -> MLP:
    return MLP(MLPConfig(in_features=64, hidden_sizes=[32], num_classes=4))


def test_the_probe_takes_bf16_only_when_clearly_faster():
    # Rule: the decision follows the measured times: bf16 exactly when it took under 95 % of fp32's.
    dtype, times = precision.probe(small, 32, 64, 4, CPU)
    assert set(times) == {"fp32", "bf16"} and all(t > 0 for t in times.values())
    assert (dtype == torch.bfloat16) == (times["bf16"] < precision.MARGIN * times["fp32"])


def test_the_probe_leaves_the_random_state_alone():
    # Rule: seeded training after a probe draws what it would have drawn without one.
    torch.manual_seed(123)
    before = torch.get_rng_state()
    precision.probe(small, 16, 64, 4, CPU)
    assert torch.equal(torch.get_rng_state(), before)


def test_without_bf16_units_auto_is_fp32_without_probing(monkeypatch):
    # Rule: emulated bf16 is always slower, so no probe runs and nothing is cached.
    monkeypatch.setattr(precision, "has_native_bf16", lambda device: False)
    monkeypatch.setattr(precision, "_decided", {})
    assert precision.auto_dtype(("k",), small, 16, 64, 4, CPU) is None
    assert precision._decided == {}


def test_one_probe_per_shape(monkeypatch):
    # Rule: a shape is probed once per process; another shape is probed on its own.
    monkeypatch.setattr(precision, "has_native_bf16", lambda device: True)
    monkeypatch.setattr(precision, "_decided", {})
    first = precision.auto_dtype(("a",), small, 16, 64, 4, CPU)
    precision._decided[("a",)] = "cached"  # a second call must return this, not probe again
    assert precision.auto_dtype(("a",), small, 16, 64, 4, CPU) == "cached"
    precision.auto_dtype(("b",), small, 64, 64, 4, CPU)
    assert set(precision._decided) == {("a",), ("b",)} and first in (None, torch.bfloat16)
