"""model/graphed.py: the static-buffer step is the eager step, number for number, on CPU."""
from __future__ import annotations

import pytest
import torch

from model.config import TrainConfig
from model.graphed import StaticStep, restore, snapshot, static_epoch
from model.loop import build_run, setup, to_device, train_epoch


def twin_runs(splits, **kw):
    cfg = TrainConfig(epochs=2, batch_size=48, hidden_sizes=[32], threads=1, **kw)  # 1,600 images: a partial last batch
    runs = []
    for _ in range(2):
        device = setup(cfg)
        data = to_device(splits, device)
        runs.append(build_run(cfg, data, device))
    return cfg, data, runs


def eager_and_static(splits, epochs: int = 2, **kw):
    """Metrics and final runs of `epochs` eager epochs and of the same epochs on static steps."""
    cfg, data, (eager, static) = twin_runs(splits, **kw)
    out = {"eager": [], "static": []}
    for _ in range(epochs):
        out["eager"].append(train_epoch(eager, data.train_x, data.train_y, data.background))
        eager.epoch += 1
        seed = cfg.seed * 100_003 + static.epoch  # what train_epoch does before its batches
        gen = torch.Generator().manual_seed(seed)
        static.model.seed_dropout(seed)
        static.model.train()
        perm = torch.randperm(len(data.train_y), generator=gen)
        out["static"].append(static_epoch(static, data.train_x, data.train_y, data.background, perm, gen))
        static.epoch += 1
    return out, eager, static


@pytest.mark.parametrize("kw", [
    {},  # SGD, Nesterov momentum, cosine schedule per step, dropout
    {"optimizer": "adamw", "schedule": "step", "step_size": 1, "gamma": 0.5, "augment_shift": 2},
    {"augment_shift": 1, "distort_rotate": 12, "distort_scale": 0.15, "distort_shear": 8, "distort_translate": 1.5,
     "elastic_alpha": 34, "elastic_sigma": 4},
], ids=["sgd-cosine", "adamw-step-shift", "distortions"])
def test_static_steps_make_the_eager_updates(small_splits, kw):
    # Rule: for a fixed seed, static-buffer epochs give the eager epochs' weights, optimiser state,
    # schedule and metrics.
    out, eager, static = eager_and_static(small_splits, **kw)
    for a, b in zip(eager.model.state_dict().values(), static.model.state_dict().values()):
        torch.testing.assert_close(a, b, rtol=0, atol=0)
    assert out["eager"] == out["static"]
    assert eager.scheduler.state_dict() == static.scheduler.state_dict()
    assert [g["lr"] for g in eager.optimizer.param_groups] == [g["lr"] for g in static.optimizer.param_groups]
    assert all(isinstance(g["lr"], float) for g in static.optimizer.param_groups)  # the Run looks eager again


def test_a_static_run_checkpoints_as_an_eager_one(small_splits):
    # Rule: the state after static epochs loads into a fresh eager run and trains on identically.
    _, eager, static = eager_and_static(small_splits, epochs=1)
    cfg, data, (fresh, _) = twin_runs(small_splits)
    fresh.load_state_dict(static.state_dict())
    a = train_epoch(eager, data.train_x, data.train_y, data.background)
    b = train_epoch(fresh, data.train_x, data.train_y, data.background)
    assert a == b


def static_epochs(run, data, epochs: int) -> list[dict]:
    out = []
    for _ in range(epochs):
        seed = run.cfg.seed * 100_003 + run.epoch
        gen = torch.Generator().manual_seed(seed)
        run.model.seed_dropout(seed)
        run.model.train()
        perm = torch.randperm(len(data.train_y), generator=gen)
        out.append(static_epoch(run, data.train_x, data.train_y, data.background, perm, gen))
        run.epoch += 1
    return out


@pytest.mark.parametrize("optimizer", ["sgd", "adamw"])
@pytest.mark.parametrize("after", [0, 1], ids=["fresh", "after-an-epoch"])
def test_warm_up_steps_are_undone_in_place(small_splits, optimizer, after):
    # Rule: the steps capture runs before recording leave no trace: after restore() the run trains as
    # an untouched one does, and every weight and optimiser tensor kept its address (a graph holds them).
    cfg, data, (plain, warmed) = twin_runs(small_splits, optimizer=optimizer)
    for run in (plain, warmed):
        static_epochs(run, data, after)
    step = warmed.static_step or StaticStep(warmed, data.train_x, data.train_y, data.background)
    warmed.static_step = step
    snap = snapshot(warmed)
    step.generator = torch.Generator().manual_seed(99)
    step.use_tensor_lr()
    step.lr.fill_(0.05)
    step.warm_up()
    addresses = [t.data_ptr() for t in warmed.model.parameters()] + [
        v.data_ptr() for st in warmed.optimizer.state.values() for v in st.values() if torch.is_tensor(v)]
    restore(warmed, snap)
    step.loss_sum.zero_()
    step.correct.zero_()
    for g in warmed.optimizer.param_groups:
        g["lr"] = float(plain.optimizer.param_groups[0]["lr"])
    assert static_epochs(plain, data, 1) == static_epochs(warmed, data, 1)
    for a, b in zip(plain.model.parameters(), warmed.model.parameters()):
        torch.testing.assert_close(a, b, rtol=0, atol=0)
    assert addresses == [t.data_ptr() for t in warmed.model.parameters()] + [
        v.data_ptr() for st in warmed.optimizer.state.values() for v in st.values() if torch.is_tensor(v)]


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_distortions_are_captured_in_the_cuda_graph(small_splits):
    # Rule: the distortions run inside the captured step (new draws each replay), not eagerly beside it.
    cfg = TrainConfig(epochs=1, batch_size=64, device="cuda", distort_rotate=12, distort_scale=0.15,
                      elastic_alpha=34, elastic_sigma=4)
    device = setup(cfg)
    data = to_device(small_splits, device)
    run = build_run(cfg, data, device)
    m = train_epoch(run, data.train_x, data.train_y, data.background)
    assert run.static_step is not None and run.static_step.graph is not None and not m["diverged"]


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_cuda_graph_epochs_learn_as_eager_ones_do(small_splits):
    # Rule: on a GPU, graphed epochs (capture once, replay per step) reach the eager accuracy.
    import dataclasses as dc

    from model.loop import fit

    accs = {}
    for graphs in (True, False):
        cfg = TrainConfig(epochs=3, batch_size=32, device="cuda", cuda_graphs=graphs)
        device = setup(cfg)
        data = to_device(small_splits, device)
        run = build_run(cfg, data, device)
        accs[graphs] = fit(run, data)[-1]["val_accuracy"]
        if graphs:
            assert run.static_step is not None and run.static_step.graph is not None
    assert abs(accs[True] - accs[False]) < 0.03, accs
    del dc
