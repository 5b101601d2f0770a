"""model/augment.py: distortions drawn per image and per epoch, seeded, on the batch's device, any H x W."""
from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from model.augment import affine_matrices, augment, distort, elastic_field, gaussian_kernel
from model.config import TrainConfig

BG = -0.42  # the normalised value of a zero pixel


def cfg(**kw) -> TrainConfig:
    return TrainConfig(**kw)


def strokes(b: int, h: int = 28, w: int = 28) -> torch.Tensor:
    """b copies of one asymmetric drawing (an L) on the background, flattened as the loop holds them."""
    img = torch.full((h, w), BG)
    img[h // 4: 3 * h // 4, w // 3] = 2.0
    img[3 * h // 4, w // 3: 2 * w // 3] = 2.0
    return img.repeat(b, 1, 1).reshape(b, h * w)


ALL = dict(distort_rotate=15, distort_scale=0.15, distort_shear=10, distort_translate=2, elastic_alpha=34,
           elastic_sigma=4)


def test_no_strength_is_no_distortion():
    x = strokes(4)
    assert distort(x, cfg(), BG, torch.Generator().manual_seed(0), (28, 28)) is x


@pytest.mark.parametrize("kw", [dict(distort_rotate=15), dict(elastic_alpha=34, elastic_sigma=4), ALL],
                         ids=["rotate", "elastic", "all"])
def test_every_image_gets_its_own_draw(kw):
    # Rule: 16 copies of one image come out as 16 different images (one draw each, not one per batch).
    out = distort(strokes(16), cfg(**kw), BG, torch.Generator().manual_seed(0), (28, 28))
    assert out.shape == (16, 784)
    assert len({tuple(row.tolist()) for row in out}) == 16


def test_draws_are_seeded():
    c = cfg(**ALL)
    a = distort(strokes(8), c, BG, torch.Generator().manual_seed(3), (28, 28))
    b = distort(strokes(8), c, BG, torch.Generator().manual_seed(3), (28, 28))
    d = distort(strokes(8), c, BG, torch.Generator().manual_seed(4), (28, 28))
    assert torch.equal(a, b) and not torch.equal(a, d)


def test_the_background_stays_the_background():
    # Rule: pixels brought in from outside the image take the background value, as the shift's do.
    x = torch.full((8, 12 * 20), BG)
    out = distort(x, cfg(**ALL), BG, torch.Generator().manual_seed(0), (12, 20))
    torch.testing.assert_close(out, x, rtol=0, atol=1e-6)


def test_the_identity_draw_is_the_identity_map():
    theta = affine_matrices(torch.full((3, 6), 0.5), 15, 0.2, 10, 2, (28, 28))
    torch.testing.assert_close(theta, torch.eye(2, 3).expand(3, 2, 3))


def test_a_half_turn_of_a_non_square_image_flips_both_axes():
    # Rule: maps are built in pixels, so on a 6 x 10 image 180 degrees is an exact flip of rows and columns.
    u = torch.tensor([[1.0, 0.5, 0.5, 0.5, 0.5, 0.5]])  # the largest rotation, nothing else
    theta = affine_matrices(u, 180, 0, 0, 0, (6, 10))
    img = torch.arange(60.0).reshape(1, 1, 6, 10)
    grid = F.affine_grid(theta, [1, 1, 6, 10], align_corners=False)
    out = F.grid_sample(img, grid, align_corners=False)
    torch.testing.assert_close(out, torch.flip(img, (2, 3)), rtol=0, atol=1e-4)


def test_a_quarter_turn_of_a_square_image_is_rot90():
    u = torch.tensor([[1.0, 0.5, 0.5, 0.5, 0.5, 0.5]])
    theta = affine_matrices(u, 90, 0, 0, 0, (8, 8))
    torch.testing.assert_close(theta, torch.tensor([[[0.0, -1.0, 0.0], [1.0, 0.0, 0.0]]]), rtol=0, atol=1e-6)
    img = torch.arange(64.0).reshape(1, 1, 8, 8)
    out = F.grid_sample(img, F.affine_grid(theta, [1, 1, 8, 8], align_corners=False), align_corners=False)
    torch.testing.assert_close(out, torch.rot90(img, 1, (2, 3)), rtol=0, atol=1e-4)


def test_translate_is_in_pixels():
    # Rule: u = 1 in the x shift with translate 1 moves the picture one whole pixel (left: output x reads x + 1).
    u = torch.tensor([[0.5, 0.5, 0.5, 0.5, 1.0, 0.5]])
    theta = affine_matrices(u, 0, 0, 0, 1, (6, 10))
    img = torch.arange(60.0).reshape(1, 1, 6, 10)
    out = F.grid_sample(img, F.affine_grid(theta, [1, 1, 6, 10], align_corners=False), align_corners=False)
    torch.testing.assert_close(out[..., :9], img[..., 1:], rtol=0, atol=1e-4)
    assert out[..., 9].abs().max() == 0  # zero padding beyond the edge


def test_the_elastic_field_is_in_pixels():
    # Rule: the Gaussian is normalised, so a field of ones is alpha pixels wherever the kernel fits inside.
    u = torch.ones(1, 2, 40, 40)  # 2u - 1 = 1 everywhere
    field = elastic_field(u, 34.0, 4.0)
    r = len(gaussian_kernel(4.0, torch.device("cpu"))) // 2
    assert r == 12
    torch.testing.assert_close(field[..., r:-r, r:-r], torch.full_like(field[..., r:-r, r:-r], 34.0))
    assert field[0, 0, 0, 0] < 34.0 / 3  # beyond the edge the field is zero


def test_elastic_displacements_are_a_few_pixels_at_simards_setting():
    # Rule: alpha 34, sigma 4 (Simard's MNIST setting) moves pixels by about 1-3 px, not by tens.
    field = elastic_field(torch.rand(64, 2, 28, 28, generator=torch.Generator().manual_seed(0)), 34.0, 4.0)
    rms = float(field.pow(2).mean().sqrt())
    assert 1.0 < rms < 3.0, rms


def test_augment_shifts_then_distorts_and_leaves_plain_configs_alone():
    x = strokes(4)
    assert augment(x, cfg(), BG, torch.Generator().manual_seed(0), (28, 28)) is x
    out = augment(x, cfg(augment_shift=2, distort_rotate=10), BG, torch.Generator().manual_seed(0), (28, 28))
    assert out.shape == x.shape and not torch.equal(out, x)


@pytest.mark.parametrize("field, value", [("distort_rotate", 181), ("distort_scale", 1.0), ("distort_shear", 90),
                                          ("distort_translate", -1), ("elastic_alpha", math.nan),
                                          ("elastic_sigma", 0.1)])
def test_out_of_range_strengths_are_refused(field, value):
    from common.errors import FieldError

    with pytest.raises(FieldError, match=f"^--{field.replace('_', '-')} "):
        TrainConfig(**{field: value}).validate()


def test_a_distorted_run_repeats_exactly_and_differs_from_a_plain_one(small_splits):
    # Rule: the draws come from the epoch's seeded generator: same seed, same metrics (--deterministic holds).
    from model.loop import build_run, fit, setup, to_device

    def history(**kw):
        c = TrainConfig(epochs=2, batch_size=64, hidden_sizes=[32], threads=1, **kw)
        device = setup(c)
        data = to_device(small_splits, device)
        return fit(build_run(c, data, device), data)

    keys = ("train_loss", "train_accuracy", "val_loss", "val_accuracy")
    first, again, plain = history(**ALL), history(**ALL), history()
    assert [{k: h[k] for k in keys} for h in first] == [{k: h[k] for k in keys} for h in again]
    assert first[-1]["train_loss"] != plain[-1]["train_loss"]
    assert not first[-1]["diverged"] and first[-1]["val_accuracy"] > 0.5


@pytest.mark.parametrize("shape", [(28, 28), (6, 10), (13, 5)])
def test_the_sampling_grid_is_affine_grids(shape):
    from model.augment import sampling_grid

    theta = affine_matrices(torch.rand(5, 6, generator=torch.Generator().manual_seed(1)), 15, 0.2, 10, 2, shape)
    torch.testing.assert_close(sampling_grid(theta, *shape), F.affine_grid(theta, [5, 1, *shape], align_corners=False))


def test_the_smoothing_matrix_is_the_zero_padded_convolution():
    from model.augment import smoothing_matrix

    v = torch.rand(3, 20, generator=torch.Generator().manual_seed(2))
    k = gaussian_kernel(2.5, torch.device("cpu"))
    conv = F.conv1d(v[:, None], k.view(1, 1, -1), padding=len(k) // 2)[:, 0]
    torch.testing.assert_close(v @ smoothing_matrix(20, 2.5, torch.device("cpu")).T, conv)
