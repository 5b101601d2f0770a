"""Fault tolerance with real processes: a killed trial worker, a SIGKILLed driver, a 2-node cluster."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from tests.conftest import ROOT, run_cli, write_space
from tuning.resume.checkpoints import newest_history
from tuning.resume.ledger import ENDED, LEDGER

pytestmark = pytest.mark.slow


def start_cli(*args: str) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "TQDM_DISABLE": "1"}
    return subprocess.Popen([sys.executable, "-m", *args], cwd=ROOT, env=env, start_new_session=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def checkpointed(folder: Path) -> dict[str, list[dict]]:
    """trial folder -> the epochs its newest checkpoint holds (workers write checkpoints straight to
    storage; Ray's result files reach it only with its state saves, ten seconds or more apart)."""
    return {t.name: newest_history(t) for t in folder.glob("tune/*") if t.is_dir() and newest_history(t)}


def ended(folder: Path) -> dict[str, str]:
    """trial folder -> trial id, for the trials trials.jsonl records as ended."""
    lines = (folder / LEDGER).read_text().splitlines() if (folder / LEDGER).exists() else []
    return {e["trial"]: e["trial_id"] for e in map(json.loads, lines) if e["event"] == ENDED}


def wait_for(cond, proc: subprocess.Popen, timeout: float = 240):
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        v = cond()
        if v:
            return v
        assert proc.poll() is None, proc.stdout.read()
        time.sleep(0.2)
    raise AssertionError("timed out")


def test_killed_worker_is_retried_from_its_checkpoint(tmp_path):
    # Rule: a trial whose worker process dies is retried from its last epoch checkpoint, not epoch 0.
    # (checkpoints at ASHA's rungs 1 and 3 and the last epoch; one epoch takes about a second here)
    space = write_space(tmp_path / "s.yaml", {"lr": {"values": [0.05]}}, epochs=6, batch_size=16)
    p = start_cli("tuning.grid", "--space", str(space), "--subset", "20000", "--results-dir", str(tmp_path),
                  "--name", "w", "--no-retrain")
    first = wait_for(lambda: [h for hs in checkpointed(tmp_path / "w").values() for h in hs], p)
    killed = first[0]["pid"]
    os.kill(killed, signal.SIGKILL)
    assert p.wait(timeout=300) == 0, p.stdout.read()
    ep = pd.read_csv(tmp_path / "w" / "epochs.csv")
    assert ep["epoch"].tolist() == [1, 2, 3, 4, 5, 6]
    before, after = ep[ep["pid"] == killed], ep[ep["pid"] != killed]
    assert len(before) >= 1 and len(after) >= 1
    assert after["epoch"].min() == before["epoch"].max() + 1  # carried on where the checkpoint left off
    assert pd.read_csv(tmp_path / "w" / "trials.csv")["status"].tolist() == ["completed"]


def kill_then_resume(tmp_path: Path, module: str, args: list[str], done_needed: int, epochs: int):
    """Start a search, SIGKILL the driver once `done_needed` trials finished, then --resume it."""
    p = start_cli(module, *args)
    out = tmp_path / args[args.index("--name") + 1]

    def finished():
        # trials.jsonl records each trial as it ends: those must not run again, whenever Ray last saved
        saved, done = checkpointed(out), ended(out)
        stamps = {trial_id: [h["timestamp"] for h in saved[t]] for t, trial_id in done.items() if t in saved}
        return stamps if len(stamps) >= done_needed else None

    done_before = wait_for(finished, p)
    os.killpg(p.pid, signal.SIGKILL)
    p.wait(timeout=30)
    assert not (out / "trials.csv").exists()  # it really died mid-study
    r = run_cli(module, *args, "--resume", timeout=600)
    assert r.returncode == 0, r.stdout + r.stderr
    return out, done_before


def test_grid_resumes_after_driver_sigkill(tmp_path):
    # Rule: after the driver is killed, --resume finishes the grid: every planned trial exactly once,
    # and trials finished before the kill are not run again.
    space = write_space(tmp_path / "s.yaml", {"lr": {"values": [0.02, 0.05, 0.1, 0.2]}, "batch_size": {"values": [32, 64]}},
                        epochs=3)
    args = ["--space", str(space), "--subset", "30000", "--results-dir", str(tmp_path), "--name", "k",
            "--scheduler", "fifo", "--no-retrain"]
    out, done_before = kill_then_resume(tmp_path, "tuning.grid", args, done_needed=2, epochs=3)
    t = pd.read_csv(out / "trials.csv")
    ep = pd.read_csv(out / "epochs.csv")
    assert len(t) == 8 and sorted(zip(t["lr"], t["batch_size"])) == sorted(
        (lr, b) for lr in (0.02, 0.05, 0.1, 0.2) for b in (32, 64))
    assert (t["status"] == "completed").all(), (t.to_string(), ep.to_string(), done_before)
    assert not ep.duplicated(["trial_id", "epoch"]).any()
    for trial_id, stamps in done_before.items():
        assert ep[ep["trial_id"] == trial_id]["timestamp"].tolist() == stamps  # not rerun


def test_optuna_resumes_after_driver_sigkill(tmp_path):
    # Rule: after the driver is killed, --resume continues the same study to N trials in trials.csv,
    # none repeated, finished ones not rerun, and the study agrees with the table.
    from tuning.search.study import RAY_ID, load_study

    space = write_space(tmp_path / "s.yaml", {"lr": {"distribution": "loguniform", "low": 0.01, "high": 0.2},
                                              "batch_size": {"distribution": "categorical", "choices": [32, 64]}},
                        epochs=3)
    args = ["--space", str(space), "--trials", "8", "--subset", "30000", "--results-dir", str(tmp_path),
            "--name", "ko", "--scheduler", "fifo", "--no-retrain"]
    out, done_before = kill_then_resume(tmp_path, "tuning.optuna", args, done_needed=2, epochs=3)
    t = pd.read_csv(out / "trials.csv")
    assert len(t) == 8 and t["trial_id"].is_unique and (t["status"] == "completed").all(), (
        t[["trial_id", "status", "epochs_run"]].to_string(), (out / "trials.jsonl").read_text(),
        pd.read_csv(out / "epochs.csv")[["trial_id", "epoch", "pid"]].to_string())
    ep = pd.read_csv(out / "epochs.csv")
    for trial_id, stamps in done_before.items():
        assert ep[ep["trial_id"] == trial_id]["timestamp"].tolist() == stamps
    study = load_study(out)
    by_ray = {tr.user_attrs.get(RAY_ID): tr for tr in study.trials}
    assert set(t["trial_id"]) <= set(by_ray)
    assert all(by_ray[i].state.name == "COMPLETE" for i in t["trial_id"])
    assert all(tr.state.name != "RUNNING" for tr in study.trials)


CLUSTER = """
import sys, ray
from ray.cluster_utils import Cluster
c = Cluster(initialize_head=True, head_node_args={"num_cpus": 1, "include_dashboard": False})
c.add_node(num_cpus=1)
c.wait_for_nodes()
print(c.address, flush=True)
sys.stdin.read()  # until the test closes stdin
c.shutdown()
print("stopped", flush=True)
"""


def test_two_node_cluster_runs_trials_on_both_nodes(tmp_path):
    # Rule: with --address, a search joins a real 2-node Ray cluster and runs trials on both nodes.
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    cluster = subprocess.Popen([sys.executable, "-c", CLUSTER], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                               text=True, env=env)
    try:
        address = cluster.stdout.readline().strip()
        assert ":" in address, address
        space = write_space(tmp_path / "s.yaml", {"lr": {"values": [0.02, 0.05, 0.1, 0.2]}}, epochs=2, batch_size=16)
        r = run_cli("tuning.grid", "--address", address, "--space", str(space), "--subset", "4000",
                    "--results-dir", str(tmp_path), "--name", "c", "--scheduler", "fifo", "--no-retrain",
                    "--storage-path", str(tmp_path / "shared"), timeout=600)
        assert r.returncode == 0, r.stdout + r.stderr
        t = pd.read_csv(tmp_path / "c" / "trials.csv")
        assert len(t) == 4 and t["node_id"].nunique() == 2
        assert "on 2 node(s)" in r.stdout
        assert list((tmp_path / "shared" / "tune").glob("*/progress.csv"))  # trial storage went to --storage-path
    finally:
        cluster.stdin.close()
        cluster.wait(timeout=60)
    assert cluster.returncode == 0
