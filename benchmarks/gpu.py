"""GPU throughput: eager fp32, eager bf16 and CUDA-graphed steps per batch size; trials side by side;
the default searches with a GPU share per trial.

1. Per batch size, one timed epoch of the 48,000 training images (784-512-256, the default MLP)
   after a warm-up epoch, in samples/s: eager fp32, eager bf16 autocast, graphed fp32 (each step
   one CUDA graph replay), and what `precision: auto` picks there. On a CPU the graphed column is
   the static-buffer step run as plain code (nothing to capture), which shows it costs the CPU
   nothing.
2. --concurrent 1,2,4,8: that many processes each train one graphed epoch at --batch at once;
   the sum of their samples/s shows whether trials sharing a GPU scale.
3. --searches: `tuning.grid` and `tuning.optuna --trials 50` with --gpus-per-trial 0.125,
   retrain included, timed as whole commands (needs Ray and Optuna).
Run: python -m benchmarks.gpu [--batches 16,64,256,1024] [--concurrent 1,2,4,8] [--searches] [--json PATH]
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import multiprocessing
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import torch


def device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def sync(dev: torch.device) -> None:
    if dev.type == "cuda":
        torch.cuda.synchronize()


def epoch_rate(cfg, data, dev: torch.device) -> tuple[float, str]:
    """Samples/s of one timed epoch after a warm-up epoch, and the precision the run used."""
    from model.loop import build_run, setup, train_epoch

    setup(cfg)
    run = build_run(cfg, data, dev)
    train_epoch(run, data.train_x, data.train_y, data.background)  # warm-up (and graph capture)
    sync(dev)
    t0 = time.perf_counter()
    train_epoch(run, data.train_x, data.train_y, data.background)
    sync(dev)
    used = "bf16" if run.amp else "fp32"
    if cfg.cuda_graphs and dev.type == "cuda":
        used += " graphed" if run.static_step is not None and run.static_step.graph is not None else " (eager fallback)"
    return len(data.train_y) / (time.perf_counter() - t0), used


def static_rate(cfg, data) -> float:
    """On CPU: samples/s of the static-buffer step run as plain code (model.graphed)."""
    from model.graphed import static_epoch
    from model.loop import build_run, setup

    dev = data.train_x.device
    setup(cfg)
    run = build_run(cfg, data, dev)

    def one() -> float:
        gen = torch.Generator().manual_seed(run.epoch)
        perm = torch.randperm(len(data.train_y), generator=gen)
        t0 = time.perf_counter()
        static_epoch(run, data.train_x, data.train_y, data.background, perm, gen)
        run.epoch += 1
        return time.perf_counter() - t0

    one()
    return len(data.train_y) / one()


def throughput(batches: list[int]) -> list[dict]:
    from data.source import DataConfig, load_splits
    from model.config import TrainConfig
    from model.loop import to_device

    dev = device()
    data = to_device(load_splits(DataConfig()), dev)
    rows = []
    for b in batches:
        base = TrainConfig(batch_size=b, device=str(dev), cuda_graphs=False)
        row = {"batch": b}
        row["eager fp32"], _ = epoch_rate(base, data, dev)
        row["eager bf16"], _ = epoch_rate(dataclasses.replace(base, precision="bf16"), data, dev)
        if dev.type == "cuda":
            row["graphed fp32"], row["graphed used"] = epoch_rate(dataclasses.replace(base, cuda_graphs=True), data, dev)
            row["auto"], row["auto used"] = epoch_rate(dataclasses.replace(base, cuda_graphs=True, precision="auto"),
                                                       data, dev)
        else:
            row["static fp32"] = static_rate(base, data)
            row["auto"], row["auto used"] = epoch_rate(dataclasses.replace(base, precision="auto"), data, dev)
        rows.append(row)
        print("  ".join(f"{k} {v:,.0f}" if isinstance(v, float) else f"{k} {v}" for k, v in row.items()), flush=True)
    return rows


def _worker(batch: int, start, out) -> None:
    from data.source import DataConfig, load_splits
    from model.config import TrainConfig
    from model.loop import to_device

    dev = device()
    data = to_device(load_splits(DataConfig()), dev)
    cfg = TrainConfig(batch_size=batch, device=str(dev), cuda_graphs=True, threads=1)
    start.wait()
    out.put(epoch_rate(cfg, data, dev)[0])


def concurrent(counts: list[int], batch: int) -> list[dict]:
    """Sum of samples/s of k processes each training one epoch at once."""
    ctx = multiprocessing.get_context("spawn")
    rows = []
    for k in counts:
        start, out = ctx.Barrier(k), ctx.Queue()
        procs = [ctx.Process(target=_worker, args=(batch, start, out)) for _ in range(k)]
        for p in procs:
            p.start()
        rates = [out.get(timeout=600) for _ in procs]
        for p in procs:
            p.join()
        rows.append({"trials": k, "batch": batch, "sum samples/s": sum(rates), "per trial": sum(rates) / k})
        print(f"{k} trials at once, batch {batch}: {sum(rates):,.0f} samples/s in all, {sum(rates) / k:,.0f} each",
              flush=True)
    return rows


def searches(results: Path) -> list[dict]:
    """Whole default searches with 8 trials per GPU: wall time and the retrained test accuracy."""
    rows = []
    for kind, extra in (("grid", []), ("optuna", ["--trials", "50"])):
        cmd = [sys.executable, "-m", f"tuning.{kind}", *extra, "--gpus-per-trial", "0.125", "--name", f"{kind}-gpu",
               "--results-dir", str(results), "--overwrite"]
        t0 = time.perf_counter()
        r = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "TQDM_DISABLE": "1"})
        wall = time.perf_counter() - t0
        report = results / f"{kind}-gpu" / "test_report.json"
        acc = json.loads(report.read_text())["test_accuracy"]["mean"] if report.is_file() else None
        rows.append({"search": kind, "exit": r.returncode, "wall_s": wall, "test_accuracy": acc})
        tail = re.sub(r"\s+", " ", r.stderr[-300:]) if r.returncode else ""
        print(f"{kind}: exit {r.returncode}, {wall:.0f} s, test {acc} {tail}", flush=True)
    return rows


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--batches", default="16,64,256,1024", help="batch sizes of the throughput table")
    p.add_argument("--concurrent", default="", help="process counts for trials side by side, e.g. 1,2,4,8")
    p.add_argument("--batch", type=int, default=16, help="batch size of the side-by-side trials")
    p.add_argument("--searches", action="store_true", help="also time the default grid and Optuna searches")
    p.add_argument("--results-dir", default="results/gpu-bench", help="where --searches writes")
    p.add_argument("--json", metavar="PATH", help="also write the numbers here as JSON")
    a = p.parse_args(argv)
    dev = device()
    name = torch.cuda.get_device_name() if dev.type == "cuda" else "CPU"
    print(f"device {dev} ({name}), torch {torch.__version__}, {os.cpu_count()} CPUs", flush=True)
    out: dict = {"device": name, "torch": torch.__version__,
                 "throughput": throughput([int(b) for b in a.batches.split(",") if b])}
    if a.concurrent:
        out["concurrent"] = concurrent([int(k) for k in a.concurrent.split(",")], a.batch)
    if a.searches:
        out["searches"] = searches(Path(a.results_dir))
    if a.json:
        Path(a.json).write_text(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
