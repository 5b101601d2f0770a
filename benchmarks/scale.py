"""`python -m benchmarks.scale`: what the search driver costs per trial and per result, at scale.

Every trial is fake: it sleeps `--epoch-s` per epoch and reports the metrics the real trainable
reports, with a 4 KB checkpoint wherever the real one checkpoints (tuning.resume.checkpoints.checkpoint_due).
Its workers do not import torch, so many slots fit in a small machine's memory (benchmarks/README.md, Scale).
Everything else is the project's own search code, run through `tuning.grid` / `tuning.optuna`
main(): the Tuner, ASHA, the Optuna searcher and study.log, the trial record, checkpoint pruning,
the progress bar and the tables. Ray is started once, with `--slots` CPUs per K.

Reported per run: fit s (Ray Tune's wall time), ideal s (trial-epochs × epoch_s / K), overhead
(fit - ideal), the driver process's CPU during the fit per trial and per result, and the storage
the search left per trial. Driver CPU is the figure that carries over to a cluster: the driver is
one process whatever the number of nodes. Run it on a quiet machine; write `lscpu`'s model beside it.
"""
from __future__ import annotations

import argparse
import functools
import json
import math
import os
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import pandas as pd

from tuning.resume.checkpoints import CHECKPOINT_AFTER_S
from tuning.driver.ray_env import AUTO_LOGGERS

EPOCH_S = 0.2  # seconds a fake epoch sleeps (set from --epoch-s before Ray pickles the trainable)
BLOB = 4096  # bytes of model state in a fake checkpoint
BLOB_FILE = "blob.bin"  # the fake's model state, beside the epoch history that a resume reads


@dataclass(frozen=True)
class Epochs:
    """All a fake trial reads of the TrainConfig. The real one (and the data splits) would import
    torch into every worker: too much memory at K = 64 (benchmarks/README.md, Scale)."""
    epochs: int


def light(make: Callable) -> Callable:
    """tuning.driver.runner.make_trainable, passing the fake trial no splits and only the epoch count."""
    def make_light(cfg: Any, splits: Any, base: Any, search: Any, experiment: Path, carry: Any = None) -> Any:
        return make(cfg, None, Epochs(base.epochs), search, experiment, carry)
    return make_light


def fake_trial(config: dict[str, Any], splits: Any = None, base: Any = None, measure_latency: bool = False,
               experiment: str | None = None, rungs: frozenset[int] = frozenset(), carry: Any = None,
               checkpoint_s: float = CHECKPOINT_AFTER_S) -> None:
    """The real trainable's signature and reports, without training: accuracy follows a fixed curve
    whose height depends on the configuration (so ASHA and TPE have something to rank)."""
    from ray import tune

    from tuning.resume.checkpoints import checkpoint_due, read_history, write_history

    lr, batch = float(config.get("lr", 0.1)), int(config.get("batch_size", 64))
    height = math.exp(-(math.log10(lr) + 1.3) ** 2) * (1 - 0.05 * math.log2(batch / 16))
    history: list[dict] = []
    checkpoint = tune.get_checkpoint()  # a trial that sync halving paused at a rung goes on from there
    if checkpoint is not None:
        with checkpoint.as_directory() as d:
            history = read_history(Path(d)) or []
    saved = time.monotonic()
    for epoch in range(len(history) + 1, base.epochs + 1):
        time.sleep(EPOCH_S)
        acc = 0.5 + 0.49 * height * (1 - math.exp(-epoch / 4))
        m = {"epoch": epoch, "train_loss": 1 - acc, "train_accuracy": acc, "val_loss": 1 - acc, "val_accuracy": acc,
             "lr": lr, "epoch_time_s": EPOCH_S, "diverged": False, "train_time_s": epoch * EPOCH_S, "params": 1000,
             "latency_ms": float("nan"), "node_id": "", "pid": os.getpid(), "timestamp": int(time.time())}
        history.append(m)
        if checkpoint_due(epoch, base.epochs, rungs, False, time.monotonic() - saved, checkpoint_s):
            with tempfile.TemporaryDirectory() as d:
                (Path(d) / BLOB_FILE).write_bytes(bytes(BLOB))
                write_history(Path(d), history)
                tune.report(m, checkpoint=tune.Checkpoint.from_directory(d))
            saved = time.monotonic()
        else:
            tune.report(m)


def grid_space(path: Path, n: int, epochs: int) -> Path:
    """A grid of n learning rates (log-spaced), one batch size: n trials."""
    lrs = [round(10 ** (-3 + 2.5 * i / max(n - 1, 1)), 8) for i in range(n)]
    path.write_text(json.dumps({"fixed": {"epochs": epochs, "precision": "fp32"},
                                "params": {"lr": {"values": lrs}, "batch_size": {"values": [64]}}}))
    return path


def du(folder: Path) -> int:
    return sum(f.stat().st_size for f in folder.rglob("*") if f.is_file())


def one(kind: str, n: int, k: int, d: Path, epochs: int, run: int) -> dict:
    from tuning.grid import main as grid_main
    from tuning.optuna import main as optuna_main

    name = f"{kind}-{n}-{k}-{run}"  # run: the row's place in --runs (a search:N:K may come twice)
    common = ["--subset", "2000", "--results-dir", str(d), "--name", name, "--no-retrain"]
    if kind == "grid":
        code = grid_main(["--space", str(grid_space(d / f"{name}.yaml", n, epochs)), *common])
    else:
        code = optuna_main(["--trials", str(n), "--epochs", str(epochs), *common])
    assert code == 0, f"{name} failed"
    out = d / name
    info = json.loads((out / "search.json").read_text())
    results = len(pd.read_csv(out / "epochs.csv"))
    fit, cpu = info["wall_s"]["fit"], info["driver_cpu_s"]["fit"]
    ideal = results * EPOCH_S / k
    return {"search": kind, "K": k, "N": n, "results": results, "fit_s": round(fit, 1), "ideal_s": round(ideal, 1),
            "overhead_s": round(fit - ideal, 1), "cpu_ms_per_trial": round(1000 * cpu / n, 1),
            "cpu_ms_per_result": round(1000 * cpu / results, 2), "storage_kb_per_trial": round(du(out) / n / 1024, 1)}


SEARCHES = ("grid", "optuna")
FLAGS = ("json", "slow-tpe", "all-running")  # the A/B switches a run may carry (see --runs)


def parse_runs(text: str) -> list[tuple[str, int, int, bool, bool, bool]]:
    """--runs as (search, N, K, json, slow-tpe, all-running) rows; a bad item is named, before Ray starts."""
    runs = []
    for item in text.split(","):
        kind, *numbers = item.split(":")
        flags = numbers[2:]
        try:
            n, k = (int(x) for x in numbers[:2])
        except ValueError:
            raise argparse.ArgumentTypeError(f"{item!r}: expected search:N:K with whole numbers N and K") from None
        unknown = [f for f in flags if f not in FLAGS]
        if kind not in SEARCHES:
            raise argparse.ArgumentTypeError(f"{item!r}: the search is {kind!r}, not one of {', '.join(SEARCHES)}")
        if n < 1 or k < 1:
            raise argparse.ArgumentTypeError(f"{item!r}: N and K must be at least 1")
        if unknown:
            raise argparse.ArgumentTypeError(f"{item!r}: unknown switch {unknown[0]!r} (one of {', '.join(FLAGS)})")
        runs.append((kind, n, k, *(f in flags for f in FLAGS)))
    return runs


def main() -> None:
    global EPOCH_S
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--runs", type=parse_runs,
                   default=parse_runs("grid:100:8,grid:1000:8,grid:3000:8,optuna:100:8,optuna:1000:8,optuna:3000:8"),
                   help="comma-separated search:N:K (K = slots; one Ray per K, started in this process); "
                        "search:N:K:json also lets Ray add its JSON logger, as before 17c80bd, "
                        "search:N:K:slow-tpe keeps Optuna's own log Φ in TPE (tuning.search.sampler.vectorised_log_ndtr "
                        "off), search:N:K:all-running shows TPE every running trial past its threshold "
                        "(tuning.search.sampler.RUNNING off): A/Bs in one process")
    p.add_argument("--epoch-s", type=float, default=EPOCH_S, help="seconds a fake epoch sleeps")
    p.add_argument("--grid-epochs", type=int, default=9, help="max epochs of a grid trial (ASHA rungs 1, 3)")
    p.add_argument("--optuna-epochs", type=int, default=20, help="max epochs of an Optuna trial (rungs 3, 12)")
    p.add_argument("--json", help="also write every row here")
    args = p.parse_args()
    EPOCH_S = args.epoch_s

    import ray
    from tuning.compat import restore_log_ndtr

    import tuning.search.sampler
    import tuning.driver.runner
    import tuning.search.study
    import tuning.driver.trainable

    tuning.driver.trainable.train_trial = fake_trial  # tuning.driver.runner.make_trainable imports it by name at each search
    tuning.driver.runner.make_trainable = light(tuning.driver.runner.make_trainable)
    os.environ["TQDM_DISABLE"] = "1"
    rows: list[dict] = []
    runs = args.runs
    no_json_logger = tuning.driver.runner.no_json_logger
    vectorised_log_ndtr = tuning.search.sampler.vectorised_log_ndtr
    with tempfile.TemporaryDirectory() as tmp:
        for run, (kind, n, k, ray_json, slow_tpe, all_running) in enumerate(runs):
            # the A/B: without no_json_logger's setting, Ray adds its JSON logger beside the CSV one
            tuning.driver.runner.no_json_logger = (lambda: os.environ.pop(AUTO_LOGGERS, None)) if ray_json else no_json_logger
            # the other: TPE with Optuna's own log Φ (one element at a time in Python), as before this stop's change
            tuning.search.sampler.vectorised_log_ndtr = restore_log_ndtr if slow_tpe else vectorised_log_ndtr
            # and: TPE shown every running trial past its threshold (the constant liar unbounded), as before
            tuning.search.study.BoundedTPESampler = (functools.partial(tuning.search.sampler.BoundedTPESampler, running=None)
                                              if all_running else tuning.search.sampler.BoundedTPESampler)
            if not ray.is_initialized() or ray.cluster_resources().get("CPU") != k:
                ray.shutdown()
                ray.init(num_cpus=k, include_dashboard=False, logging_level="ERROR", log_to_driver=False)
            epochs = args.grid_epochs if kind == "grid" else args.optuna_epochs
            rows.append({**one(kind, n, k, Path(tmp), epochs, run), "ray_json_logger": ray_json,
                         "optunas_log_ndtr": slow_tpe, "all_running": all_running})
            print(json.dumps(rows[-1]), flush=True)
    table = pd.DataFrame(rows)
    pd.set_option("display.width", 200)
    print(table.to_string(index=False))
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
