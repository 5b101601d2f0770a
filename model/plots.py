"""Pictures of one training run (pure: data in, Figure out; the caller saves)."""
from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure

from common.plotting import plt


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


def confusion(matrix: np.ndarray, title: str = "Confusion matrix (test)") -> Figure:
    fig, ax = plt.subplots(figsize=(6.5, 5.5))
    im = ax.imshow(matrix, cmap="Blues")
    for i in range(matrix.shape[0]):
        for j in range(matrix.shape[1]):
            v = int(matrix[i, j])
            ax.text(j, i, str(v), ha="center", va="center", fontsize=7,
                    color="white" if v > matrix.max() / 2 else "black")
    ax.set_xticks(range(10)), ax.set_yticks(range(10))
    ax.set_xlabel("predicted"), ax.set_ylabel("true"), ax.set_title(title)
    fig.colorbar(im, ax=ax)
    fig.tight_layout()
    return fig
