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
from model.committee import Committee
from model.loop import Run, build_run, fit, setup, test_metrics, to_device

log = logging.getLogger(__name__)


def retrain_and_test(cfg: TrainConfig, data_cfg: DataConfig, seeds: list[int], threads: int = 0,
                     progress: Callable[[str, int, int], None] | None = None, ensemble: int = 0,
                     others: list[TrainConfig] | None = None) -> tuple[dict, Run, ModelCard, list]:
    """Train `cfg` once per seed on train+validation, test each; report mean/std over seeds.

    `ensemble` K > 1 also tests a committee averaging K nets' probabilities: the first K seeds' nets,
    or, given `others` (the next-best configurations), the first seed's net and one net of each
    other, trained with the first seed. Returns (report, the first seed's Run, the card to save beside
    its weights, the committee's members or []). `progress(phase, done, total)` is called per epoch.
    """
    t0 = time.perf_counter()
    splits = load_splits(dataclasses.replace(data_cfg, val_fraction=0.0))
    others = list(others or [])[:max(0, ensemble - 1)]
    jobs = [(dataclasses.replace(cfg, seed=s), f"seed {s}") for s in seeds]
    jobs += [(dataclasses.replace(c, seed=seeds[0]), f"config {k + 2}") for k, c in enumerate(others)]
    per_seed, nets, first = [], [], None  # nets: (model, its config) of every job; only the first Run is kept whole
    total, done = sum(c.epochs for c, _ in jobs), 0
    device = setup(dataclasses.replace(cfg, threads=threads))
    data = to_device(splits, device)  # the same tensors serve every net
    test_x, test_y = normalise(splits.test_x, splits.mean, splits.std, device), splits.test_y.to(device)
    for c, phase in jobs:
        c = dataclasses.replace(c, threads=threads)
        setup(c)
        run = build_run(c, data, device)
        fit(run, data, on_epoch=lambda m, _r, d=done, ph=phase: progress and progress(ph, d + m["epoch"], total))
        done += c.epochs
        first = first or run
        nets.append((run.model, run.cfg))
        if len(per_seed) < len(seeds):
            per_seed.append(test_metrics(run.model, test_x, test_y))
            log.info("retrain %s: test accuracy %.4f", phase, per_seed[-1]["test_accuracy"])
    acc = [t["test_accuracy"] for t in per_seed]
    loss = [t["test_loss"] for t in per_seed]
    stats = lambda v: {"mean": float(np.mean(v)), "std": float(np.std(v, ddof=1)) if len(v) > 1 else 0.0,  # noqa: E731
                       "per_seed": [float(x) for x in v]}
    report = {
        "config": dataclasses.asdict(cfg), "epochs": cfg.epochs, "seeds": list(seeds),
        "device": str(device), "autocast": str(first.amp).removeprefix("torch.") if first.amp else "fp32",
        "train_images": int(len(splits.train_y)), "test_images": int(len(splits.test_y)),
        "test_accuracy": stats(acc), "test_loss": stats(loss),
        "per_class_accuracy": per_seed[0]["per_class_accuracy"], "confusion_matrix": per_seed[0]["confusion_matrix"],
        "classes": splits.classes, "image_shape": list(splits.image_shape),
        "normalisation": {"mean": splits.mean, "std": splits.std},  # what the model's inputs were scaled by
        "data_checksum": splits.checksum, "versions": versions(), "git_commit": git_commit(),
    }
    members = []
    if ensemble > 1:
        members = [m for m, _ in (nets[:1] + nets[len(seeds):] if others else nets[:ensemble])]
        test = test_metrics(Committee(members).to(device), test_x, test_y)
        report["committee"] = {
            "members": len(members), "of": "configs" if others else "seeds",
            "test_accuracy": test["test_accuracy"], "test_loss": test["test_loss"],
            "configs": [dataclasses.asdict(c) for _, c in nets[len(seeds):]] if others else [],
        }
        log.info("committee of %d: test accuracy %.4f", len(members), test["test_accuracy"])
    report["time_s"] = time.perf_counter() - t0
    return report, first, card_for(first.model, splits, dataclasses.asdict(data_cfg)), members
