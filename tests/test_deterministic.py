"""--deterministic: the same seed and data give the same trials, stops, best configuration and retrain,
whether the machine is idle or busy (a CPU hog beside the search)."""
from __future__ import annotations

import json
import subprocess
import sys
from contextlib import contextmanager
from pathlib import Path

import pandas as pd
import pytest

from tests.conftest import call_cli, write_space

pytestmark = pytest.mark.slow
DECISIONS = ["status", "epochs_run", "val_accuracy_best", "val_accuracy_last"]


@contextmanager
def cpu_hog(processes: int = 1):
    """A busy loop beside the search: trials run slower and report in another order."""
    hogs = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(processes)]
    try:
        yield
    finally:
        for h in hogs:
            h.kill()
            h.wait()


def search(tmp_path: Path, module: str, name: str, params: dict, *extra: str) -> Path:
    space = write_space(tmp_path / f"{name}.yaml", params, epochs=3, batch_size=64)
    r = call_cli(module, "--space", str(space), "--subset", "3000", "--results-dir", str(tmp_path), "--name", name,
                 "--deterministic", "--grace-period", "1", "--reduction-factor", "3", "--min-rung-steps", "0", *extra)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "deterministic" in r.stdout.splitlines()[0]
    return tmp_path / name


def decisions(out: Path, params: list[str]) -> pd.DataFrame:
    """Every trial's parameters and what happened to it (trial ids differ between runs)."""
    t = pd.read_csv(out / "trials.csv")
    return t[params + DECISIONS].sort_values(params, ignore_index=True)


def same_answer(a: Path, b: Path, params: list[str], retrained: bool = True) -> None:
    pd.testing.assert_frame_equal(decisions(a, params), decisions(b, params))
    best = [json.loads((o / "best.json").read_text()) for o in (a, b)]
    assert best[0]["config"] == best[1]["config"] and best[0]["val_accuracy"] == best[1]["val_accuracy"]
    if retrained:
        tests = [json.loads((o / "test_report.json").read_text())["test_accuracy"] for o in (a, b)]
        assert tests[0] == tests[1]


def test_grid_gives_the_same_answer_on_a_busy_machine_and_stops_by_results(ray_session, tmp_path):
    # Rule: sync halving keeps the best ⌊6/3⌋ = 2 trials of the rung-1 results, whatever the arrival order.
    params = {"lr": {"values": [0.005, 0.01, 0.02, 0.05, 0.1, 0.2]}}
    idle = search(tmp_path, "tuning.grid", "idle", params)
    with cpu_hog():
        busy = search(tmp_path, "tuning.grid", "busy", params)
    same_answer(idle, busy, ["lr"])
    t = pd.read_csv(idle / "trials.csv")
    first = pd.read_csv(idle / "epochs.csv").query("epoch == 1").set_index("trial_id")["val_accuracy"]
    kept = t[t["epochs_run"] == 3]["trial_id"]
    stopped = t[t["epochs_run"] == 1]["trial_id"]
    assert len(kept) == 2 and len(stopped) == 4 and (t.loc[t["epochs_run"] == 1, "status"] == "stopped_early").all()
    assert first[kept].min() >= first[stopped].max()


def test_optuna_gives_the_same_answer_on_a_busy_machine(ray_session, tmp_path):
    # Rule: trials asked in batches of 2 (each seeing only ended batches) and decided per batch give the
    # same study on a busy machine: the same parameters, stops and best (the grid test checks the retrain).
    params = {"lr": {"distribution": "loguniform", "low": 0.005, "high": 0.3},
              "dropout": {"distribution": "uniform", "low": 0.0, "high": 0.5}}
    extra = ("--trials", "4", "--suggest-batch", "2", "--no-warm-start", "--no-retrain")
    idle = search(tmp_path, "tuning.optuna", "idle", params, *extra)
    with cpu_hog():
        busy = search(tmp_path, "tuning.optuna", "busy", params, *extra)
    same_answer(idle, busy, ["lr", "dropout"], retrained=False)
    t = pd.read_csv(idle / "trials.csv")
    assert sorted(t["epochs_run"]) == [1, 1, 3, 3]  # one of each batch of 2 goes on from rung 1
