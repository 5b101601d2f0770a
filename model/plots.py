"""Pictures of one training run (pure: data in, Figure out; the caller saves)."""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from matplotlib.figure import Figure

from common.plotting import plt
from data.plots import TICK_CHARS, class_names, label_style, shorten, tick_style

CELL_NUMBERS_MAX = 20  # more classes than this: no counts in the confusion cells (they would not fit)
CONFUSION_MAX_SIZE = (14.0, 13.0)  # inches; reached near 31 classes


def learning_curves(history: list[dict], title: str = "") -> Figure:
    """Loss and accuracy per epoch, train vs validation."""
    ep = [h["epoch"] for h in history]
    fig, (a, b) = plt.subplots(1, 2, figsize=(10, 4))
    a.plot(ep, [h["train_loss"] for h in history], "o-", label="train")
    a.plot(ep, [h["val_loss"] for h in history], "o-", label="validation")
    a.set_xlabel("epoch"), a.set_ylabel("loss"), a.legend()
    b.plot(ep, [100 * h["train_accuracy"] for h in history], "o-", label="train")
    b.plot(ep, [100 * h["val_accuracy"] for h in history], "o-", label="validation")
    b.set_xlabel("epoch"), b.set_ylabel("accuracy (%)"), b.legend()
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def confusion(matrix: np.ndarray, classes: Sequence[str] | None = None,
              title: str = "Confusion matrix (test)") -> Figure:
    """K x K counts (rows true, columns predicted), ticks labelled by class name (str(i) when None).

    Counts are written in the cells only up to CELL_NUMBERS_MAX classes, in a font that shrinks
    with K; the figure grows with K from 6.5 x 5.5 in (10 classes) up to CONFUSION_MAX_SIZE.
    """
    matrix = np.asarray(matrix)
    k = matrix.shape[0]
    names = [shorten(s, TICK_CHARS) for s in class_names(classes, k)]
    size = np.minimum(np.maximum((3 + 0.35 * k, 2 + 0.35 * k), (6.5, 5.5)), CONFUSION_MAX_SIZE)
    fig, ax = plt.subplots(figsize=tuple(float(v) for v in size))
    im = ax.imshow(matrix, cmap="Blues")
    if k <= CELL_NUMBERS_MAX:
        font = 7 if k <= 10 else max(5.0, 7 - 0.2 * (k - 10))
        top = matrix.max() if matrix.size else 0
        for i in range(matrix.shape[0]):
            for j in range(matrix.shape[1]):
                v = int(matrix[i, j])
                ax.text(j, i, str(v), ha="center", va="center", fontsize=font,
                        color="white" if v > top / 2 else "black")
    ax.set_xticks(range(k), names, **tick_style(names))
    ax.set_yticks(range(k), names, **label_style(k))
    ax.set_xlabel("predicted"), ax.set_ylabel("true"), ax.set_title(title)
    fig.colorbar(im, ax=ax)
    fig.tight_layout()
    return fig
