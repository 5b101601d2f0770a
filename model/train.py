"""`python -m model.train`: one training run, printed epoch by epoch as the notebook did, saved under
results/runs/<name>/. A thin CLI: the loop itself is model/loop.py."""
from __future__ import annotations

import argparse
import sys
import time
from datetime import datetime
from pathlib import Path
from typing import IO

import torch
from tqdm import tqdm

from common.folders import check_name, check_writable, inspect, lock
from common.atomic import save_figure, write_json
from common.cli import ArgumentParser, add_dataclass_args, from_args, run_cli
from common.errors import InputError
from common.outputs import check_output_folder
from data.source import DataConfig, load_splits
from data.plots import sample_grid
from data.splits import normalise
from model.card import card_for
from model.card import save as save_model
from model.memory import DataShape, check_memory
from model.mlp import count_params
from model.plots import confusion, learning_curves
from model.config import TrainConfig
from model.loop import build_run, fit, setup, test_metrics, to_device


def parser() -> argparse.ArgumentParser:
    # dataclass flags state their own defaults in their help (add_dataclass_args)
    p = ArgumentParser(prog="python -m model.train", description=__doc__)
    p.add_argument("--name", default=None, help="run folder name (default: a timestamp)")
    p.add_argument("--results-dir", default="results", help="where results/runs/<name>/ goes (default: results)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    add_dataclass_args(p, TrainConfig, "hyperparameters")
    add_dataclass_args(p, DataConfig, "data")
    return p


def epoch_line(m: dict, epochs: int) -> str:
    return (f"Epoch [{m['epoch']}/{epochs}], Training Loss: {m['train_loss']:.4f}, "
            f"Training Accuracy: {100 * m['train_accuracy']:.2f}%, Validation Loss: {m['val_loss']:.4f}, "
            f"Validation Accuracy: {100 * m['val_accuracy']:.2f}%")


def run_folder(results_dir: str, name: str | None) -> Path:
    """results/runs/<name>, checked (one name component, writable, not taken); nothing is created."""
    name = datetime.now().strftime("%Y%m%d-%H%M%S") if name is None else check_name(name)
    out = Path(results_dir) / "runs" / name
    check_writable(out.parent, "--results-dir", results_dir)
    if inspect(out, "metrics.json") != "new":
        raise InputError(f"--name {name}: {out} already holds a run; pick another name")
    return out


def claim_run(out: Path) -> IO:
    """Lock the run folder (creating it); a run that took it meanwhile is refused in one line."""
    held = lock(out)
    if inspect(out, "metrics.json") != "new":
        held.close()
        raise InputError(f"--name {out.name}: {out} already holds a run; pick another name")
    return held


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    cfg = from_args(TrainConfig, args).validate()
    dcfg = from_args(DataConfig, args)
    out = run_folder(args.results_dir, args.name)
    check_output_folder("--results-dir", args.results_dir, out, *dcfg.inputs())
    device = setup(cfg)
    t0 = time.perf_counter()
    splits = load_splits(dcfg)
    check_memory(cfg.hidden_sizes, cfg.batch_size, cfg.device,
                 DataShape(splits.in_features, len(splits.classes), len(splits.train_y)))
    held = claim_run(out)  # noqa: F841 — the lock is held until the process ends
    data = to_device(splits, device)
    run = build_run(cfg, data, device)
    print(f"data {splits.sizes()}, {len(splits.classes)} classes of {splits.image_shape[0]}x{splits.image_shape[1]} "
          f"images, model {cfg.hidden_sizes} ({count_params(run.model):,} parameters), device {device}")

    bars: list[tqdm] = []

    def new_bar() -> None:  # one bar per epoch, as the notebook's tqdm loops
        bars.append(tqdm(total=len(data.train_y), desc=f"epoch {run.epoch + 1}/{cfg.epochs}", unit="img",
                         leave=False, disable=args.quiet))

    def on_epoch(m: dict, _run) -> None:
        bars[-1].close()
        print(epoch_line(m, cfg.epochs) + (" (diverged)" if m["diverged"] else ""), flush=True)
        if m["epoch"] < cfg.epochs:
            new_bar()

    new_bar()
    history = fit(run, data, on_epoch, progress=lambda n: bars[-1].update(n))
    bars[-1].close()
    train_s = time.perf_counter() - t0

    test_x = normalise(splits.test_x, splits.mean, splits.std, device)
    test = test_metrics(run.model, test_x, splits.test_y.to(device))
    pred = test.pop("predictions")
    print(f"Test Accuracy: {100 * test['test_accuracy']:.2f}%, Test Loss: {test['test_loss']:.4f} "
          f"({train_s:.0f} s)")

    save_model(out, run.model, card_for(run.model, splits, vars(dcfg)))
    write_json(out / "metrics.json", {
        "config": cfg.to_dict(), "data": {**vars(dcfg), **splits.sizes(), "checksum": splits.checksum},
        "classes": splits.classes, "image_shape": list(splits.image_shape),
        "normalisation": {"mean": splits.mean, "std": splits.std},
        "seed": cfg.seed, "history": history, "diverged": history[-1]["diverged"],
        "val_accuracy": history[-1]["val_accuracy"], "time_s": train_s, **test,
    })
    save_figure(learning_curves(history, f"{cfg.hidden_sizes} lr {cfg.lr} batch {cfg.batch_size}"), out / "curves.png")
    save_figure(confusion(torch.tensor(test["confusion_matrix"]).numpy(), splits.classes), out / "confusion.png")
    n = 32
    save_figure(sample_grid(splits.test_x[:n].numpy(), splits.test_y[:n].numpy(), pred[:n], splits.classes,
                            title="predicted / true (test)"), out / "predictions.png")
    print(f"wrote {out}/: metrics.json model.pt model.json curves.png confusion.png predictions.png")
    if history[-1]["diverged"]:
        print(f"error: training diverged at epoch {history[-1]['epoch']} (non-finite loss); try a smaller --lr",
              file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    run_cli(main)
