"""Pictures of any image set: class names, any H x W, readable up to ~50 classes.

Tiny arrays made here; figures drawn with Agg (common.plotting) and closed after each test.
"""
from __future__ import annotations

import string

import numpy as np
import pytest
import torch

from common.plotting import plt
from data.plots import class_distribution, sample_grid
from model.mlp import MLP, MLPConfig
from model.plots import CELL_NUMBERS_MAX, CONFUSION_MAX_SIZE, confusion
from tuning.results.plots import confusion_from_report, predictions_grid

LETTERS = list(string.ascii_uppercase)  # 26 names


def texts(labels) -> list[str]:
    return [t.get_text() for t in labels]


def image_axes(fig):
    return [ax for ax in fig.axes if ax.images]


def counts_matrix(k: int) -> np.ndarray:
    return np.eye(k, dtype=int) * 50 + np.arange(k * k).reshape(k, k) % 3


# Rule: the confusion figure's x and y tick labels are the class names, in order.
def test_confusion_ticks_are_class_names():
    names = ["seven", "Ankle boot", "cat", "dog"]
    fig = confusion(counts_matrix(4), names)
    ax = fig.axes[0]
    assert texts(ax.get_xticklabels()) == names
    assert texts(ax.get_yticklabels()) == names
    assert list(ax.get_xticks()) == [0, 1, 2, 3]
    plt.close(fig)


# Rule: without class names the ticks are 0..K-1 and a 10-class figure keeps MNIST's 6.5 x 5.5 in.
def test_confusion_default_names_and_mnist_size():
    fig = confusion(counts_matrix(10))
    ax = fig.axes[0]
    assert texts(ax.get_xticklabels()) == [str(i) for i in range(10)]
    assert texts(ax.get_yticklabels()) == [str(i) for i in range(10)]
    assert tuple(fig.get_size_inches()) == (6.5, 5.5)
    assert all(t.get_rotation() == 0 for t in ax.get_xticklabels())
    plt.close(fig)


# Rule: counts are written in every cell up to CELL_NUMBERS_MAX (20) classes, and in none past it.
@pytest.mark.parametrize("k, expected", [(10, 100), (20, 400), (21, 0), (30, 0)])
def test_confusion_cell_numbers_only_up_to_20_classes(k, expected):
    assert CELL_NUMBERS_MAX == 20
    m = counts_matrix(k)
    fig = confusion(m)
    ax = fig.axes[0]
    assert len(ax.texts) == expected
    if expected:
        assert sorted(t.get_text() for t in ax.texts) == sorted(str(v) for v in m.ravel())
    plt.close(fig)


# Rule: the cell numbers' font shrinks with K (7 pt at 10 classes, smaller at 20).
def test_confusion_cell_font_shrinks_with_k():
    f10, f20 = confusion(counts_matrix(10)), confusion(counts_matrix(20))
    assert {t.get_fontsize() for t in f10.axes[0].texts} == {7.0}
    assert {t.get_fontsize() for t in f20.axes[0].texts} == {5.0}
    plt.close(f10), plt.close(f20)


# Rule: a 50-class confusion figure is larger than the 10-class one but no larger than the cap.
def test_confusion_grows_with_k_up_to_cap():
    small, big = confusion(counts_matrix(10)), confusion(counts_matrix(50), [f"class {i}" for i in range(50)])
    w10, h10 = small.get_size_inches()
    w50, h50 = big.get_size_inches()
    assert w50 > w10 and h50 > h10
    assert (w50, h50) == CONFUSION_MAX_SIZE
    assert len(big.axes[0].get_xticklabels()) == 50
    plt.close(small), plt.close(big)


# Rule: with many classes the x tick labels are rotated and smaller than matplotlib's default.
def test_confusion_many_classes_rotated_small_ticks():
    fig = confusion(counts_matrix(26), LETTERS)
    ax = fig.axes[0]
    assert texts(ax.get_xticklabels()) == LETTERS
    assert {t.get_rotation() for t in ax.get_xticklabels()} == {45.0}
    assert {t.get_fontsize() for t in ax.get_xticklabels()} == {8.0}
    assert {t.get_fontsize() for t in ax.get_yticklabels()} == {8.0}
    plt.close(fig)


# Rule: confusion_from_report names the ticks by the report's "classes"; old reports without it get 0..K-1.
def test_confusion_from_report_uses_report_classes():
    report = {"confusion_matrix": counts_matrix(3).tolist(), "classes": ["cat", "dog", "bird"],
              "test_accuracy": {"mean": 0.9, "std": 0.01, "per_seed": [0.9]}}
    fig = confusion_from_report(report, "s")
    assert texts(fig.axes[0].get_xticklabels()) == ["cat", "dog", "bird"]
    plt.close(fig)
    old = {k: v for k, v in report.items() if k != "classes"}
    fig = confusion_from_report(old, "s")
    assert texts(fig.axes[0].get_yticklabels()) == ["0", "1", "2"]
    plt.close(fig)
    assert confusion_from_report(None) is None


# Rule: the sample grid shows each image at its own H x W (16 x 12 stays (16, 12)), float or uint8.
@pytest.mark.parametrize("dtype", [np.float32, np.uint8])
def test_sample_grid_keeps_image_shape(dtype):
    images = (np.arange(3 * 16 * 12).reshape(3, 16, 12) % 7).astype(dtype)
    fig = sample_grid(images, np.array([0, 1, 2]), cols=3)
    shown = image_axes(fig)
    assert [ax.images[0].get_array().shape for ax in shown] == [(16, 12)] * 3
    np.testing.assert_array_equal(shown[1].images[0].get_array(), images[1])
    plt.close(fig)


# Rule: titles are class names; with predictions 'pred/true', red when wrong and black when right.
def test_sample_grid_titles_pred_true_red_when_wrong():
    names = ["cat", "dog", "bird"]
    fig = sample_grid(np.zeros((3, 8, 8), np.float32), np.array([0, 1, 2]), np.array([0, 2, 2]), classes=names)
    titles = [ax.title for ax in image_axes(fig)]
    assert [t.get_text() for t in titles] == ["cat/cat", "bird/dog", "bird/bird"]
    assert [t.get_color() for t in titles] == ["black", "red", "black"]
    plt.close(fig)
    fig = sample_grid(np.zeros((2, 8, 8), np.float32), np.array([2, 0]), classes=names)
    assert [ax.title.get_text() for ax in image_axes(fig)] == ["bird", "cat"]
    plt.close(fig)


# Rule: without class names the titles are the indices, 9 pt, and 28 x 28 cells keep MNIST's 1.2 x 1.35 in.
def test_sample_grid_default_mnist_look():
    fig = sample_grid(np.zeros((16, 28, 28), np.uint8), np.arange(16) % 10, np.arange(16) % 10)
    assert [ax.title.get_text() for ax in image_axes(fig)][:3] == ["0/0", "1/1", "2/2"]
    assert {ax.title.get_fontsize() for ax in image_axes(fig)} == {9.0}
    assert tuple(np.round(fig.get_size_inches(), 6)) == (8 * 1.2, 2 * 1.35)
    plt.close(fig)


# Rule: long names are cut to 10 characters with '…'; 'pred/true' titles too wide for 7 pt break after the '/'.
def test_sample_grid_long_names_shortened_and_wrapped():
    names = ["Ankle boot and more", "T-shirt/top", "class name 1", "class name 2"]
    images = np.zeros((2, 8, 8), np.float32)
    fig = sample_grid(images, np.array([0, 1]), np.array([1, 1]), classes=names)
    titles = [ax.title for ax in image_axes(fig)]
    assert [t.get_text() for t in titles] == ["T-shirt/t…/Ankle boo…", "T-shirt/t…/T-shirt/t…"]
    assert all(7 <= t.get_fontsize() < 9 for t in titles)
    plt.close(fig)
    fig = sample_grid(images, np.array([2, 3]), np.array([3, 3]), classes=names)
    titles = [ax.title for ax in image_axes(fig)]
    assert [t.get_text() for t in titles] == ["class nam…/\nclass nam…", "class nam…/\nclass nam…"]
    assert all(7 <= t.get_fontsize() <= 9 for t in titles)
    plt.close(fig)


# Rule: neighbouring sample titles never overlap, whatever the names' length (tall 16 x 12 images, 50 classes).
@pytest.mark.parametrize("predicted", [None, np.arange(16)[::-1] + 30])
def test_sample_grid_titles_do_not_overlap(predicted):
    names = [f"class name number {i}" for i in range(50)]
    fig = sample_grid(np.zeros((16, 16, 12), np.uint8), np.arange(16) + 30, predicted, classes=names)
    renderer = fig.canvas.get_renderer()
    boxes = [ax.title.get_window_extent(renderer) for ax in image_axes(fig)]
    for row in range(2):
        for left, right in zip(boxes[row * 8:row * 8 + 7], boxes[row * 8 + 1:row * 8 + 8]):
            assert left.x1 < right.x0
    plt.close(fig)


# Rule: the class distribution has K ticks labelled by name, K bars per split and the x label 'class'.
def test_class_distribution_ticks_and_bars():
    counts = {"train": np.arange(26) + 1, "validation": np.ones(26, int), "test": np.full(26, 2)}
    fig = class_distribution(counts, LETTERS)
    ax = fig.axes[0]
    assert texts(ax.get_xticklabels()) == LETTERS
    assert [len(c) for c in ax.containers] == [26, 26, 26]
    assert [p.get_height() for p in ax.containers[0]] == list(range(1, 27))
    assert ax.get_xlabel() == "class"
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["train", "validation", "test"]
    plt.close(fig)


# Rule: 10 short names keep the 8 x 4 in figure and upright labels; 26 classes widen it, rotate and shrink labels.
def test_class_distribution_size_and_rotation():
    ten = class_distribution({"train": np.ones(10, int)})
    assert tuple(ten.get_size_inches()) == (8.0, 4.0)
    assert texts(ten.axes[0].get_xticklabels()) == [str(i) for i in range(10)]
    assert {t.get_rotation() for t in ten.axes[0].get_xticklabels()} == {0.0}
    many = class_distribution({"train": np.ones(26, int)}, LETTERS)
    w, h = many.get_size_inches()
    assert 8 < w <= 20 and h == 4
    assert {t.get_rotation() for t in many.axes[0].get_xticklabels()} == {45.0}
    assert {t.get_fontsize() for t in many.axes[0].get_xticklabels()} == {8.0}
    fifty = class_distribution({"train": np.ones(50, int)})
    assert tuple(fifty.get_size_inches()) == (20.0, 4.0)
    plt.close(ten), plt.close(many), plt.close(fifty)


# Rule: long names rotate the labels even with few classes.
def test_class_distribution_long_names_rotated():
    fig = class_distribution({"train": np.ones(3, int)}, ["Ankle boot", "Sneaker", "Bag"])
    assert texts(fig.axes[0].get_xticklabels()) == ["Ankle boot", "Sneaker", "Bag"]
    assert {t.get_rotation() for t in fig.axes[0].get_xticklabels()} == {45.0}
    plt.close(fig)


# Rule: a split whose counts are shorter than K is padded with zero bars.
def test_class_distribution_pads_short_counts():
    fig = class_distribution({"train": np.array([3, 4, 5]), "test": np.array([1])}, ["a", "b", "c"])
    assert [[p.get_height() for p in c] for c in fig.axes[0].containers] == [[3, 4, 5], [1, 0, 0]]
    plt.close(fig)


# Rule: predictions_grid titles 8 x 8 float32 images 'pred/true' by the model's argmax, by class name,
# and leaves the caller's images unchanged.
def test_predictions_grid_tiny_mlp():
    torch.manual_seed(0)
    k, names = 3, ["cat", "dog", "bird"]
    model = MLP(MLPConfig(in_features=8 * 8, hidden_sizes=[8], num_classes=k))
    rng = np.random.default_rng(0)
    images = rng.random((6, 8, 8), dtype=np.float32)
    before = images.copy()
    labels = np.array([0, 1, 2, 0, 1, 2])
    from data.splits import normalise

    with torch.no_grad():
        expected = model.eval()(normalise(torch.tensor(before), 0.5, 0.25)).argmax(1).numpy()
    fig = predictions_grid(model, images, labels, 0.5, 0.25, classes=names, title="t")
    titles = [ax.title for ax in image_axes(fig)]
    assert [t.get_text() for t in titles] == [f"{names[p]}/{names[y]}" for p, y in zip(expected, labels)]
    assert [t.get_color() for t in titles] == ["black" if p == y else "red" for p, y in zip(expected, labels)]
    assert image_axes(fig)[0].images[0].get_array().shape == (8, 8)
    np.testing.assert_array_equal(images, before)
    plt.close(fig)
