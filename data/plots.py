"""Pictures of the data (pure: arrays in, matplotlib Figure out; the caller saves).

Images are any H x W, classes any K (2 to ~50) with string names; `classes=None` names class i
str(i), so MNIST's pictures look as they always did. The helpers here (class names, shortened
labels, tick styling) are shared with model/plots.py.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from matplotlib.figure import Figure
from matplotlib.textpath import TextPath

from common.plotting import plt

TITLE_CHARS = 10  # a sample title's class name is cut to this many characters ('…' included)
TICK_CHARS = 14  # the same for tick labels, which have more room once rotated
LONG_NAME = 6  # names longer than this are rotated on the x axis even with few classes
FEW_CLASSES = 10  # up to this many classes: upright, full-size tick labels (the MNIST look)
CELL = (1.2, 1.35)  # inches per sample-grid cell (a square image; wider images widen it)
TITLE_FILL = 0.9  # a sample title may fill this share of its cell's width
DIST_WIDTH = (8.0, 20.0)  # class distribution width in inches: at most 10 classes, and its cap


def class_names(classes: Sequence[str] | None, k: int) -> list[str]:
    """K names: classes[i] as text, str(i) when classes is None or has no i-th entry."""
    given = [] if classes is None else [str(c) for c in classes]
    return [given[i] if i < len(given) else str(i) for i in range(k)]


def shorten(name: str, n: int = TITLE_CHARS) -> str:
    """name, cut to n characters with a trailing '…' when longer."""
    return name if len(name) <= n else name[: n - 1] + "…"


def _label_size(k: int) -> int:
    return 9 if k <= FEW_CLASSES else 8 if k <= 26 else 7 if k <= 40 else 6


def tick_style(names: Sequence[str]) -> dict:
    """Text keywords for x tick labels: upright and default-sized for <= 10 short names (MNIST),
    else rotated 45° and smaller as the class count grows."""
    k, longest = len(names), max((len(s) for s in names), default=0)
    if k <= FEW_CLASSES and longest <= LONG_NAME:
        return {}
    return {"rotation": 45, "ha": "right", "rotation_mode": "anchor", "fontsize": _label_size(k)}


def label_style(k: int) -> dict:
    """Text keywords for y tick labels of k classes: matplotlib's default up to 10, then smaller."""
    return {} if k <= FEW_CLASSES else {"fontsize": _label_size(k)}


def _image(x: np.ndarray) -> np.ndarray:
    """One image as 2-D: (H, W) as given, a flat square (H*H,) reshaped, (H, W, 1) squeezed."""
    a = np.asarray(x)
    if a.ndim == 3 and a.shape[-1] == 1:
        a = a[..., 0]
    if a.ndim == 1:
        side = int(round(np.sqrt(a.size)))
        if side * side != a.size:
            raise ValueError(f"a flat image of {a.size} pixels is not square; pass images as (N, H, W)")
        a = a.reshape(side, side)
    if a.ndim != 2:
        raise ValueError(f"an image must be (H, W), got shape {a.shape}")
    return a


def _text_width(text: str, size: float) -> float:
    """Width in points of one line of text in matplotlib's default font."""
    return float(TextPath((0, 0), text, size=size).get_extents().width) if text else 0.0


def _title_size(lines: list[str], width_in: float) -> float:
    """The font size (5 to 9 pt) at which the widest line fills at most TITLE_FILL of width_in."""
    widest = max((_text_width(t, 9) for t in lines), default=0.0)
    return float(np.clip(9 * TITLE_FILL * width_in * 72 / widest, 5, 9)) if widest else 9.0


def sample_grid(images: np.ndarray, labels: np.ndarray, predicted: np.ndarray | None = None,
                classes: Sequence[str] | None = None, cols: int = 8, title: str = "") -> Figure:
    """A grid of images titled by class name, or 'pred/true' (red when wrong).

    images (N, H, W) of any dtype and range: each is drawn in grey scaled to its own min..max.
    Names are cut to TITLE_CHARS; the title font shrinks (9 pt down to 5) so the widest title fits
    its cell, and 'pred/true' titles that would need under 7 pt break after the '/' instead.
    """
    n = len(images)
    cols = max(1, int(cols))
    rows = max(1, int(np.ceil(n / cols)))
    shown = [_image(images[i]) for i in range(n)]
    h, w = shown[0].shape if shown else (1, 1)
    cell_w = CELL[0] * float(np.clip(w / h, 1.0, 2.0))  # tall images keep the width titles need
    used = [np.asarray(labels[:n])] + ([np.asarray(predicted[:n])] if predicted is not None else [])
    k = max([len(classes) if classes is not None else 0] + [int(u.max()) + 1 for u in used if u.size])
    names = [shorten(s) for s in class_names(classes, k)]
    if predicted is None:
        texts, wrong = [names[int(y)] for y in labels[:n]], [False] * n
    else:
        pairs = [(names[int(p)], names[int(y)]) for p, y in zip(predicted[:n], labels[:n])]
        wrong = [int(p) != int(y) for p, y in zip(predicted[:n], labels[:n])]
        texts = [f"{p}/{t}" for p, t in pairs]
    size, cell_h = _title_size(texts, cell_w), CELL[1]
    if predicted is not None and size < 7:
        texts = [f"{p}/\n{t}" for p, t in pairs]
        size = _title_size([line for t in texts for line in t.split("\n")], cell_w)
        cell_h += 1.2 * size / 72  # room for the second line
    fig, axes = plt.subplots(rows, cols, figsize=(cols * cell_w, rows * cell_h), squeeze=False)
    for i, ax in enumerate(axes.flat):
        ax.axis("off")
        if i >= n:
            continue
        ax.imshow(shown[i], cmap="gray")
        ax.set_title(texts[i], fontsize=size, color="red" if wrong[i] else "black")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def class_distribution(counts: dict[str, np.ndarray], classes: Sequence[str] | None = None) -> Figure:
    """Bars of images per class, one group per split; x tick labels are the class names.

    Shorter count arrays are padded with zeros to K = the longest array (or len(classes) if more).
    The figure widens with K (8 in for 10 classes, capped at DIST_WIDTH[1]).
    """
    arrays = {name: np.asarray(c).ravel() for name, c in counts.items()}
    k = max([len(c) for c in arrays.values()] + [0 if classes is None else len(classes)])
    names = [shorten(s, TICK_CHARS) for s in class_names(classes, k)]
    width_in = float(np.clip(2 + 0.4 * k, *DIST_WIDTH))
    fig, ax = plt.subplots(figsize=(width_in, 4))
    width = 0.8 / max(len(arrays), 1)
    for j, (name, c) in enumerate(arrays.items()):
        ax.bar(np.arange(k) + j * width, np.pad(c, (0, k - len(c))), width=width, label=name)
    ax.set_xticks(np.arange(k) + 0.4 - width / 2, names, **tick_style(names))
    if k > FEW_CLASSES:
        ax.margins(x=0.01)  # matplotlib's 5 % is several empty classes wide
    ax.set_xlabel("class")
    ax.set_ylabel("images")
    ax.set_title("Class distribution")
    if arrays:
        ax.legend()
    fig.tight_layout()
    return fig
