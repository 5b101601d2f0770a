"""Seeded stratified train/validation split and whole-tensor normalisation.

The seed split 60,000 training images 80/20 into 48,000 / 12,000; we do the same
with scikit-learn, stratified by label so every class keeps its share.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from sklearn.model_selection import train_test_split


@dataclass
class Splits:
    """Images as uint8 (N, 28, 28) and labels as int64 (N,), kept small for Ray's object store.

    `mean`/`std` come from the training split only, so validation and test never leak into it.
    """

    train_x: torch.Tensor
    train_y: torch.Tensor
    val_x: torch.Tensor
    val_y: torch.Tensor
    test_x: torch.Tensor
    test_y: torch.Tensor
    mean: float
    std: float
    checksum: str = ""  # md5 of the source arrays, recorded in reports

    def sizes(self) -> dict[str, int]:
        return {"train": len(self.train_y), "val": len(self.val_y), "test": len(self.test_y)}


def stratified_subset(labels: np.ndarray, n: int, seed: int) -> np.ndarray:
    """Indices of a seeded, label-stratified subset of size n (all indices when n >= len)."""
    if n >= len(labels):
        return np.arange(len(labels))
    idx, _ = train_test_split(np.arange(len(labels)), train_size=n, stratify=labels, random_state=seed)
    return np.sort(idx)


def split_train_val(
    images: np.ndarray, labels: np.ndarray, val_fraction: float = 0.2, seed: int = 0
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Stratified seeded split; val_fraction=0 keeps everything for training (the retrain case)."""
    if val_fraction <= 0:
        return images, labels, images[:0], labels[:0]
    tr, va = train_test_split(
        np.arange(len(labels)), test_size=val_fraction, stratify=labels, random_state=seed
    )
    return images[tr], labels[tr], images[va], labels[va]


def make_splits(
    train_images: np.ndarray,
    train_labels: np.ndarray,
    test_images: np.ndarray,
    test_labels: np.ndarray,
    *,
    val_fraction: float = 0.2,
    seed: int = 0,
    subset: int | None = None,
    checksum: str = "",
) -> Splits:
    """Split the training pool, compute mean/std over the training split in one pass."""
    if subset is not None:
        keep = stratified_subset(train_labels, subset, seed)
        train_images, train_labels = train_images[keep], train_labels[keep]
    tx, ty, vx, vy = split_train_val(train_images, train_labels, val_fraction, seed)
    t = torch.from_numpy(np.ascontiguousarray(tx))
    scaled = t.to(torch.float32).div_(255.0)
    mean, std = float(scaled.mean()), float(scaled.std())
    as_t = lambda a, dt: torch.from_numpy(np.ascontiguousarray(a)).to(dt)  # noqa: E731
    return Splits(
        train_x=t, train_y=as_t(ty, torch.int64),
        val_x=as_t(vx, torch.uint8), val_y=as_t(vy, torch.int64),
        test_x=as_t(test_images, torch.uint8), test_y=as_t(test_labels, torch.int64),
        mean=mean, std=std, checksum=checksum,
    )


def normalise(x: torch.Tensor, mean: float, std: float, device: torch.device | str = "cpu") -> torch.Tensor:
    """uint8 (N, 28, 28) -> float32 (N, 784) on `device`, scaled to [0,1] then standardised.

    Done once per tensor, never per sample: the seed's per-sample transform was its bottleneck.
    """
    x = x.to(device, non_blocking=True).flatten(1).to(torch.float32)
    return x.mul_(1.0 / (255.0 * std)).sub_(mean / std)
