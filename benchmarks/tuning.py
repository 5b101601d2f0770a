"""`python -m benchmarks.tuning`: ASHA against FIFO on one small grid, in one process.

Prints, per scheduler: trial-epochs spent, wall time, best validation accuracy; Ray's share of
the time Ray Tune ran the trials (`Tuner.fit`, from search.json) = 1 - (time inside the
trainables, Ray's time_total_s) / (fit wall x trial slots), and the share outside training epochs
= 1 - (time inside train/validate epochs) / (fit wall x slots), which also counts each trial's
own set-up (data to tensors, model, checkpoints). Idle slots (a tail with one trial left) count as
overhead. The same two shares of the whole CLI run (data loading, tables and plots included) are
printed too.
Targets (2-core CPU): ASHA within 0.2 points of FIFO's best at <= 1/3 of its trial-epochs;
Ray's share <= 10 %.
"""
from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import pandas as pd
import yaml

from tuning.grid import main as grid_main

SPACE = {  # 6 x 2 x 4 = 48 trials of up to 9 epochs; 512-256 so one epoch outweighs Ray's fixed cost per trial
    # (benchmarks/README.md, ASHA against FIFO)
    "fixed": {"epochs": 9, "hidden_sizes": [512, 256], "schedule": "cosine"},
    "params": {"lr": {"values": [0.001, 0.003, 0.01, 0.03, 0.1, 0.3]}, "batch_size": {"values": [64, 256]},
               "dropout": {"values": [0.0, 0.1, 0.2, 0.3]}},
}


def run(scheduler: str, space: Path, out: Path, subset: int, extra: list[str]) -> dict:
    t0 = time.perf_counter()
    code = grid_main(["--space", str(space), "--scheduler", scheduler, "--results-dir", str(out), "--name",
                      scheduler, "--no-retrain", "--subset", str(subset), *extra])
    wall = time.perf_counter() - t0
    assert code == 0, f"{scheduler} search failed"
    trials = pd.read_csv(out / scheduler / "trials.csv")
    fit = json.loads((out / scheduler / "search.json").read_text())["wall_s"]["fit"]
    epochs = pd.read_csv(out / scheduler / "epochs.csv")
    return {"scheduler": scheduler, "trials": len(trials), "trial_epochs": int(trials["epochs_run"].sum()),
            "wall_s": wall, "fit_s": fit, "best_val_acc": float(trials["val_accuracy_best"].max()),
            "train_s": float(epochs["epoch_time_s"].sum()), "trainable_s": float(trials["time_s"].sum())}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--subset", type=int, default=60000, help="training images (before the 80/20 split)")
    p.add_argument("--slots", type=int, default=2, help="trials that run at once (CPUs / cpus-per-trial)")
    p.add_argument("--json", help="also write the figures here")
    args = p.parse_args()
    import ray

    ray.init(num_cpus=args.slots, include_dashboard=False, log_to_driver=False)
    with tempfile.TemporaryDirectory() as d:
        space = Path(d) / "space.yaml"
        space.write_text(yaml.safe_dump(SPACE))
        rows = [run(s, space, Path(d), args.subset, []) for s in ("fifo", "asha")]
    for r in rows:  # idle slots count against us: a tail with one trial left is overhead too
        r["ray_share"] = 1 - r["trainable_s"] / (r["fit_s"] * args.slots)
        r["outside_epochs"] = 1 - r["train_s"] / (r["fit_s"] * args.slots)
        r["cli_ray_share"] = 1 - r["trainable_s"] / (r["wall_s"] * args.slots)
        r["cli_outside_epochs"] = 1 - r["train_s"] / (r["wall_s"] * args.slots)
    fifo, asha = rows
    print("\n| scheduler | trials | trial-epochs | CLI wall s | fit wall s | best val acc % | Ray's share of fit "
          "| outside epochs in fit | same two of the whole CLI run |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for r in rows:
        print(f"| {r['scheduler']} | {r['trials']} | {r['trial_epochs']} | {r['wall_s']:.0f} | {r['fit_s']:.0f} | "
              f"{100 * r['best_val_acc']:.2f} | {100 * r['ray_share']:.1f} % | {100 * r['outside_epochs']:.1f} % | "
              f"{100 * r['cli_ray_share']:.1f} % / {100 * r['cli_outside_epochs']:.1f} % |")
    print(f"\nASHA/FIFO trial-epochs {asha['trial_epochs'] / fifo['trial_epochs']:.2f} (target <= 0.33), "
          f"wall {asha['wall_s'] / fifo['wall_s']:.2f}, best val acc gap "
          f"{100 * (fifo['best_val_acc'] - asha['best_val_acc']):+.2f} points (target <= 0.2)")
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
