"""Best configuration -> trained from scratch on every training image -> tested once.

The test set is touched here only, after the search chose on validation accuracy alone.
"""
from __future__ import annotations

import dataclasses
import logging
import time
from typing import Callable

import numpy as np

from common.provenance import git_commit, versions
from data.source import DataConfig, load_splits
from data.splits import normalise
from model.card import ModelCard, card_for
from model.config import TrainConfig
from model.loop import Run, build_run, fit, setup, test_metrics, to_device

log = logging.getLogger(__name__)


def retrain_and_test(cfg: TrainConfig, data_cfg: DataConfig, seeds: list[int], threads: int = 0,
                     progress: Callable[[str, int, int], None] | None = None) -> tuple[dict, Run, ModelCard]:
    """Train `cfg` once per seed on train+validation, test each; report mean/std over seeds.

    Returns (report, the first seed's Run, the card to save beside its weights). `progress(phase, done, total)`
    is called per epoch so the CLI can draw a bar.
    """
    t0 = time.perf_counter()
    splits = load_splits(dataclasses.replace(data_cfg, val_fraction=0.0))
    per_seed, first = [], None
    total = len(seeds) * cfg.epochs
    device = setup(dataclasses.replace(cfg, threads=threads))
    data = to_device(splits, device)  # the same tensors serve every seed
    test_x, test_y = normalise(splits.test_x, splits.mean, splits.std, device), splits.test_y.to(device)
    for k, seed in enumerate(seeds):
        c = dataclasses.replace(cfg, seed=seed, threads=threads)
        setup(c)
        run = build_run(c, len(data.train_y), device, data.image_shape, data.num_classes)
        done_before, phase = k * c.epochs, f"seed {seed}"
        fit(run, data, on_epoch=lambda m, _r, d=done_before, ph=phase: progress and progress(ph, d + m["epoch"], total))
        test = test_metrics(run.model, test_x, test_y)
        per_seed.append(test)
        log.info("retrain seed %d: test accuracy %.4f", seed, test["test_accuracy"])
        if first is None:
            first = (run, card_for(run.model, splits, dataclasses.asdict(data_cfg)))
    acc = [t["test_accuracy"] for t in per_seed]
    loss = [t["test_loss"] for t in per_seed]
    stats = lambda v: {"mean": float(np.mean(v)), "std": float(np.std(v, ddof=1)) if len(v) > 1 else 0.0,  # noqa: E731
                       "per_seed": [float(x) for x in v]}
    report = {
        "config": dataclasses.asdict(cfg), "epochs": cfg.epochs, "seeds": list(seeds),
        "device": str(device), "autocast": str(first[0].amp).removeprefix("torch.") if first[0].amp else "fp32",
        "train_images": int(len(splits.train_y)), "test_images": int(len(splits.test_y)),
        "test_accuracy": stats(acc), "test_loss": stats(loss),
        "per_class_accuracy": per_seed[0]["per_class_accuracy"], "confusion_matrix": per_seed[0]["confusion_matrix"],
        "classes": splits.classes, "image_shape": list(splits.image_shape),
        "normalisation": {"mean": splits.mean, "std": splits.std},  # what the model's inputs were scaled by
        "data_checksum": splits.checksum, "versions": versions(), "git_commit": git_commit(),
        "time_s": time.perf_counter() - t0,
    }
    return report, first[0], first[1]
