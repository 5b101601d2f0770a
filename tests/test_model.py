"""The MLP and the training loop: shapes, initialisation, learning, determinism, divergence."""
from __future__ import annotations

import dataclasses
import math

import pytest
import torch

from common.errors import InputError
from model.augment import random_shift
from model.mlp import MLP, FastDropout, MLPConfig
from model.config import TrainConfig
from model.loop import build_run, fit, setup, to_device, train_epoch


MNIST = dict(in_features=784, num_classes=10)  # the network's inputs and outputs on MNIST


def small_cfg(**kw) -> TrainConfig:
    base = dict(epochs=2, batch_size=64, hidden_sizes=[64, 32], threads=1, lr=0.05)
    return TrainConfig(**{**base, **kw})


def test_output_is_logits_of_shape_batch_by_10():
    # Rule: the network maps (B, 28, 28) or (B, 784) to (B, 10) float32 logits (no softmax inside).
    m = MLP(MLPConfig(**MNIST, hidden_sizes=[32]))
    for x in (torch.randn(5, 28, 28), torch.randn(5, 784)):
        out = m(x)
        assert out.shape == (5, 10) and out.dtype == torch.float32
    assert not torch.allclose(out.exp().sum(1), torch.ones(5))  # not probabilities
    p = m.predict_proba(torch.randn(5, 784))
    assert torch.allclose(p.sum(1), torch.ones(5), atol=1e-5)


def test_he_initialisation_statistics():
    # Rule: Linear weights are Kaiming-normal for ReLU (std = sqrt(2 / fan_in)), biases zero.
    torch.manual_seed(0)
    m = MLP(MLPConfig(**MNIST, hidden_sizes=[1024, 512]))
    linears = [l for l in m.modules() if isinstance(l, torch.nn.Linear)]
    assert [l.in_features for l in linears] == [784, 1024, 512]
    for l in linears:
        w = l.weight.detach()
        expected = math.sqrt(2 / l.in_features)
        assert abs(float(w.std()) / expected - 1) < 0.02
        assert abs(float(w.mean())) < 0.05 * expected
        assert torch.count_nonzero(l.bias) == 0


def test_architecture_order_and_options():
    # Rule: blocks are Linear -> LayerNorm -> ReLU -> Dropout; layer_norm/dropout can be switched off.
    kinds = [type(l).__name__ for l in MLP(MLPConfig(**MNIST, hidden_sizes=[8], dropout=0.1)).net]
    assert kinds == ["Linear", "LayerNorm", "ReLU", "FastDropout", "Linear"]
    kinds = [type(l).__name__ for l in MLP(MLPConfig(**MNIST, hidden_sizes=[8, 4], dropout=0, layer_norm=False)).net]
    assert kinds == ["Linear", "ReLU", "Linear", "ReLU", "Linear"]


def test_fast_dropout_rate_and_scale():
    # Rule: dropout zeroes ~p of the activations, scales the rest by 1/(1-p), and is off in eval.
    d = FastDropout(0.2, seed=1)
    x = torch.ones(200, 1000)
    y = d(x)
    assert abs(float((y == 0).float().mean()) - 0.2) < 0.005
    assert abs(float(y.mean()) - 1) < 0.01
    d.eval()
    assert torch.equal(d(x), x)


def test_loss_falls_on_a_fixed_batch(small_splits):
    # Rule: repeated steps on one batch drive its loss down (the model can learn).
    cfg = small_cfg(dropout=0.0, schedule="none")
    device = setup(cfg)
    full = to_device(small_splits, device)
    data = dataclasses.replace(full, train_x=full.train_x[:256], train_y=full.train_y[:256])
    run = build_run(cfg, data, device)
    x, y = data.train_x, data.train_y
    losses = [train_epoch(run, x, y)["train_loss"] for _ in range(15)]
    assert losses[-1] < 0.3 * losses[0]


def test_same_seed_same_metrics(small_splits):
    # Rule: the same seed gives identical metrics on CPU; another seed differs.
    def history(seed):
        cfg = small_cfg(seed=seed, augment_shift=1)
        device = setup(cfg)
        data = to_device(small_splits, device)
        return fit(build_run(cfg, data, device), data)

    a, b, c = history(3), history(3), history(4)
    strip = lambda h: [{k: v for k, v in e.items() if k != "epoch_time_s"} for e in h]  # noqa: E731
    assert strip(a) == strip(b)
    assert strip(a) != strip(c)


def test_training_reaches_useful_accuracy(small_splits):
    # Rule: two epochs on 1,600 images already beat 80 % validation accuracy (the loop trains).
    cfg = small_cfg(hidden_sizes=[128], epochs=3)
    device = setup(cfg)
    data = to_device(small_splits, device)
    hist = fit(build_run(cfg, data, device), data)
    assert [h["epoch"] for h in hist] == [1, 2, 3]
    assert hist[-1]["val_accuracy"] > 0.8 and not hist[-1]["diverged"]


def test_divergence_is_detected_not_raised(small_splits):
    # Rule: an absurd learning rate marks the run diverged and stops it early, without an exception.
    cfg = small_cfg(lr=1e6, epochs=5, momentum=0.0, schedule="none", layer_norm=False, dropout=0.0)
    device = setup(cfg)
    data = to_device(small_splits, device)
    hist = fit(build_run(cfg, data, device), data)
    assert hist[-1]["diverged"] and len(hist) < 5


def test_resume_from_state_repeats_exactly(small_splits):
    # Rule: stopping after epoch 1 and resuming from the saved state gives the uninterrupted metrics.
    cfg = small_cfg(epochs=2, seed=5)
    device = setup(cfg)
    data = to_device(small_splits, device)
    full = fit(build_run(cfg, data, device), data)
    setup(cfg)  # same initial weights as `full`
    first = build_run(cfg, data, device)
    fit(first, data, on_epoch=lambda m, r: False)
    state = first.state_dict()
    resumed = build_run(cfg, data, device)
    resumed.load_state_dict(state)
    rest = fit(resumed, data)
    assert [h["epoch"] for h in rest] == [2]
    assert rest[0]["val_loss"] == full[1]["val_loss"]


def test_random_shift_moves_pixels_within_bounds():
    # Rule: shifting keeps shape/dtype, moves content by at most k pixels, fills with background.
    x = torch.zeros(64, 28, 28)
    x[:, 14, 14] = 1.0
    y = random_shift(x.reshape(64, 784), 2, background=-0.5, generator=torch.Generator().manual_seed(0), image_shape=(28, 28))
    assert y.shape == (64, 784) and y.dtype == torch.float32
    y = y.reshape(64, 28, 28)
    pos = (y == 1.0).nonzero()
    assert len(pos) == 64 and (pos[:, 1:] - 14).abs().max() <= 2
    assert len({(int(r), int(c)) for _, r, c in pos}) > 5  # shifts differ per image
    assert float(y.min()) == -0.5


@pytest.mark.parametrize("field, value", [("lr", 0.0), ("epochs", 0), ("batch_size", 0), ("dropout", 1.0),
                                          ("hidden_sizes", []), ("momentum", 1.5), ("augment_shift", 9)])
def test_bad_hyperparameter_names_the_flag(field, value):
    # Rule: validate() raises InputError naming the flag and the value.
    with pytest.raises(InputError, match=f"--{field.replace('_', '-')}"):
        dataclasses.replace(TrainConfig(), **{field: value}).validate()


def test_latency_is_measured_per_batch_of_1000():
    # Rule: the latency objective is a positive time in ms, larger for a wider network.
    from tuning.driver.trainable import latency_ms

    torch.set_num_threads(1)
    small = latency_ms(MLP(MLPConfig(**MNIST, hidden_sizes=[16])), torch.device("cpu"))
    big = latency_ms(MLP(MLPConfig(**MNIST, hidden_sizes=[2048, 2048])), torch.device("cpu"))
    assert 0 < small < big


def test_bf16_precision_learns_like_fp32_and_keeps_fp32_weights(small_splits):
    # Rule: precision bf16 autocasts each forward pass only: the run learns as well as fp32 (within
    # 2 points after 3 epochs; one autocast context around all steps would freeze step 0's weights),
    # and weights and optimiser state stay float32.
    data = to_device(small_splits, "cpu")
    acc = {}
    for precision in ("fp32", "bf16"):
        cfg = small_cfg(epochs=3, precision=precision)
        setup(cfg)
        run = build_run(cfg, data, torch.device("cpu"))
        acc[precision] = fit(run, data)[-1]["val_accuracy"]
        assert run.amp == (torch.bfloat16 if precision == "bf16" else None)
        assert all(p.dtype == torch.float32 for p in run.model.parameters())
    assert acc["fp32"] > 0.8 and abs(acc["bf16"] - acc["fp32"]) < 0.02, acc


def test_precision_auto_follows_the_hardware():
    # Rule: 'auto' gives bf16 exactly when the CPU multiplies bf16 natively; fp32/bf16 are as asked.
    from model.loop import autocast_dtype

    native = torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported()
    cpu = torch.device("cpu")
    assert autocast_dtype("auto", cpu) == (torch.bfloat16 if native else None)
    assert autocast_dtype("fp32", cpu) is None and autocast_dtype("bf16", cpu) == torch.bfloat16
    with pytest.raises(InputError, match="--precision"):
        small_cfg(precision="fp16").validate()
