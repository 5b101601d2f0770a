"""`python -m benchmarks.schedulers`: ASHA against sync halving (and --deterministic) on the Optuna search.

Each scheduler runs the default Optuna space (shrunk: --subset, --epochs, --trials) for several
search seeds, one after another in one process, and is judged by:
- time to accuracy: seconds from the search's start until the best validation accuracy so far
  reaches each threshold (from epochs.csv: each epoch's end is its timestamp);
- trial-epochs spent, wall time of Ray Tune's fit, best validation accuracy;
- trials ended by half of the fit's wall time (a search whose long trials run first ends few early).
Ratios only compare runs of one invocation on one machine (write `lscpu`'s model beside them).
"""
from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import pandas as pd

from tuning.optuna import main as optuna_main

MODES = {"asha": ["--scheduler", "asha"], "sync": ["--scheduler", "sync"], "deterministic": ["--deterministic"]}


def timeline(folder: Path) -> pd.DataFrame:
    """Epochs in the order they ended, with seconds since the search's first epoch began and the best so far."""
    ep = pd.read_csv(folder / "epochs.csv")
    start = (ep["timestamp"] - ep["epoch_time_s"]).min()
    ep = ep.assign(t=ep["timestamp"] - start).sort_values("t", kind="stable")
    return ep.assign(best=ep["val_accuracy"].cummax())


def figures(folder: Path, thresholds: list[float]) -> dict:
    ep, trials = timeline(folder), pd.read_csv(folder / "trials.csv")
    fit = json.loads((folder / "search.json").read_text())["wall_s"]["fit"]
    ended = ep.groupby("trial_id")["t"].max()
    row = {"trials": len(trials), "trial_epochs": len(ep), "fit_s": round(fit), "best_val": ep["val_accuracy"].max(),
           "ended_by_half": int((ended <= fit / 2).sum())}
    for thr in thresholds:
        hit = ep[ep["best"] >= thr]
        row[f"t_{thr:.3f}"] = float(hit["t"].iloc[0]) if len(hit) else float("nan")
    return row


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--subset", type=int, default=12000, help="images before the 80/20 split")
    p.add_argument("--epochs", type=int, default=20, help="max epochs per trial (rungs 3 and 12)")
    p.add_argument("--trials", type=int, default=24)
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--modes", default="asha,sync", help=f"comma-separated, of {', '.join(MODES)}")
    p.add_argument("--seed0-modes", default="deterministic", help="modes run for seed 0 only (cost figures)")
    p.add_argument("--thresholds", default="0.95,0.96,0.97", help="validation accuracies to time")
    p.add_argument("--json", help="also write every row here")
    args = p.parse_args()
    thresholds = [float(x) for x in args.thresholds.split(",")]
    rows = []
    with tempfile.TemporaryDirectory() as d:
        for seed in range(args.seeds):
            extra = [m for m in args.seed0_modes.split(",") if m] if seed == 0 else []
            for mode in args.modes.split(",") + extra:
                name = f"{mode}-{seed}"
                code = optuna_main(["--subset", str(args.subset), "--epochs", str(args.epochs), "--trials",
                                    str(args.trials), "--seed", str(seed), "--results-dir", d, "--name", name,
                                    "--no-retrain", *MODES[mode]])
                assert code == 0, f"{name} failed"
                rows.append({"mode": mode, "seed": seed, **figures(Path(d) / name, thresholds)})
                print(json.dumps(rows[-1]), flush=True)
    table = pd.DataFrame(rows)
    pd.set_option("display.width", 200)
    print(table.to_string(index=False))
    print(table.drop(columns="seed").groupby("mode").mean().round(4).to_string())
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
