"""Pictures of the data (pure: arrays in, matplotlib Figure out; the caller saves)."""
from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure

from common.plotting import plt


def sample_grid(images: np.ndarray, labels: np.ndarray, predicted: np.ndarray | None = None,
                cols: int = 8, title: str = "") -> Figure:
    """A grid of digits titled by label, or 'pred/true' (red when wrong) as the notebook's
    visualize_samples_with_predictions did."""
    n = len(images)
    rows = max(1, int(np.ceil(n / cols)))
    fig, axes = plt.subplots(rows, cols, figsize=(cols * 1.2, rows * 1.35), squeeze=False)
    for i, ax in enumerate(axes.flat):
        ax.axis("off")
        if i >= n:
            continue
        ax.imshow(np.asarray(images[i]).reshape(28, 28), cmap="gray")
        if predicted is None:
            ax.set_title(str(int(labels[i])), fontsize=9)
        else:
            ok = int(predicted[i]) == int(labels[i])
            ax.set_title(f"{int(predicted[i])}/{int(labels[i])}", fontsize=9, color="black" if ok else "red")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def class_distribution(counts: dict[str, np.ndarray]) -> Figure:
    """Bars of images per digit, one group per split."""
    fig, ax = plt.subplots(figsize=(8, 4))
    width = 0.8 / max(len(counts), 1)
    for k, (name, c) in enumerate(counts.items()):
        ax.bar(np.arange(10) + k * width, c, width=width, label=name)
    ax.set_xticks(np.arange(10) + 0.4 - width / 2, [str(d) for d in range(10)])
    ax.set_xlabel("digit")
    ax.set_ylabel("images")
    ax.set_title("Class distribution")
    ax.legend()
    fig.tight_layout()
    return fig
