"""Signals, concurrent runs and damaged state, with real processes and a real Ray.

- SIGINT/SIGTERM sent to the CLI's whole process group stop the search (during the first trials, after
  some have ended, or during the retrain): exit 130/143, one stderr line, partial tables marked
  interrupted, no best.json or retrain; --resume then finishes it, with every trial's progress.csv in
  its columns and the summary on one node (issue 28).
- Two runs with one --name: the second is refused at once, naming the first one's pid.
- A resume over damaged state: a bad checkpoint restarts its trial with a warning; a damaged study
  or experiment state is one error line naming the file, and nothing is touched.
"""
from __future__ import annotations

import csv
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from tests.conftest import ROOT, one_error, run_cli, tree, write_space

pytestmark = pytest.mark.slow


def start_cli(*args: str) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "TQDM_DISABLE": "1"}
    return subprocess.Popen([sys.executable, "-m", *args], cwd=ROOT, env=env, start_new_session=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def reported(folder: Path) -> int:
    """Checkpoints the trials of a running search have written (each holds its history.json). Not
    Ray's result files: the driver syncs those to storage only with its state saves, 10 s or
    more apart, so a short search can end before the first line arrives."""
    return len(list(folder.glob("tune/*/checkpoint_*/history.json")))


def signal_when(p: subprocess.Popen, ready, sig: int, what: str) -> tuple[int, str]:
    """Send `sig` to the CLI's process group once `ready()`; its exit code and stderr."""
    t0 = time.monotonic()
    while not ready():
        assert p.poll() is None, (what, p.communicate())
        assert time.monotonic() - t0 < 240, f"never {what}"
        time.sleep(0.05)
    os.killpg(p.pid, sig)  # the whole group, as a terminal's Ctrl-C or a batch system's stop does
    out, err = p.communicate(timeout=180)
    return p.returncode, err


def signal_after_first_epoch(p: subprocess.Popen, folder: Path, sig: int) -> tuple[int, str]:
    return signal_when(p, lambda: reported(folder) > 0, sig, "an epoch reported")


def ended_trials(folder: Path) -> int:
    """Trials that trials.jsonl records as ended."""
    ledger = folder / "trials.jsonl"
    return sum('"event": "ended"' in line for line in ledger.read_text().splitlines()) if ledger.exists() else 0


def assert_progress_aligned(folder: Path) -> None:
    """Every row of every trial's progress.csv has its header's cells, and time_total_s holds numbers
    (Ray's own logger slid a resumed trial's rows under other columns: issue 28)."""
    files = list(folder.glob("tune*/*/progress.csv"))
    assert files
    for f in files:
        widths = {len(row) for row in csv.reader(f.read_text().splitlines())}
        assert len(widths) == 1, (f, f.read_text())
        assert pd.api.types.is_float_dtype(pd.read_csv(f)["time_total_s"]), f.read_text()


def assert_resumed_cleanly(r: subprocess.CompletedProcess) -> None:
    """A resume that finished: exit 0, no warning of rows left out, one node (Ray started again for
    --resume gives this machine a new node id: it is the same node)."""
    assert r.returncode == 0, r.stdout + r.stderr
    assert "left out" not in r.stderr and "Traceback" not in r.stderr, r.stderr
    assert "on 1 node(s)" in r.stdout, r.stdout


def small_search(tmp_path: Path, module: str, name: str, *extra: str) -> list[str]:
    space = write_space(tmp_path / "s.yaml", {"lr": {"values": [0.02, 0.05, 0.1, 0.2],
                                                     "distribution": "loguniform", "low": 0.02, "high": 0.2}},
                        epochs=4, batch_size=32)
    # --checkpoint-s 0: a checkpoint every epoch, so the signal comes after a first epoch, not at a
    # first trial's end (fifo has no rungs), while the trials are still running
    return [module, "--space", str(space), "--subset", "8000", "--results-dir", str(tmp_path / "r"), "--name", name,
            "--scheduler", "fifo", "--checkpoint-s", "0", "--no-retrain", *extra]


def test_sigint_marks_the_search_interrupted_and_resume_finishes_it(tmp_path):
    # Rule: Ctrl-C mid-search exits 130 with one line; the folder says interrupted (no best.json);
    # a damaged checkpoint is named and its trial restarts; --resume then finishes every trial once.
    args = small_search(tmp_path, "tuning.grid", "g")
    out = tmp_path / "r" / "g"
    code, err = signal_after_first_epoch(start_cli(*args), out, signal.SIGINT)
    assert code == 130, err
    [line] = err.strip().splitlines()
    assert line.startswith("interrupted (SIGINT): ") and "of 4 trials finished" in line and "--resume" in line
    info = json.loads((out / "search.json").read_text())
    assert info["state"] == "interrupted" and info["planned"] == 4
    assert not (out / "best.json").exists() and not (out / "model.pt").exists()
    trials = pd.read_csv(out / "trials.csv")
    assert len(trials) >= 1 and "interrupted" in set(trials["status"])
    report = run_cli("tuning.report", str(out), "--no-plots")
    done = int((trials["status"] != "interrupted").sum())
    assert report.stdout.splitlines()[0].startswith(f"interrupted: {done} of 4 trials")

    state = sorted(out.glob("tune/*/checkpoint_*/state.pt"))[-1]
    state.write_bytes(state.read_bytes()[:100])  # a checkpoint cut short
    r = run_cli(*args, "--resume", timeout=600)
    assert r.returncode == 0, r.stdout + r.stderr
    assert f"{state}: damaged checkpoint; that trial continues from an earlier one, or from epoch 0" in r.stderr
    trials = pd.read_csv(out / "trials.csv")
    epochs = pd.read_csv(out / "epochs.csv")
    assert sorted(trials["lr"]) == [0.02, 0.05, 0.1, 0.2] and (trials["status"] == "completed").all()
    assert not epochs.duplicated(["trial_id", "epoch"]).any() and len(epochs) == 16
    assert json.loads((out / "search.json").read_text())["state"] == "finished"
    assert (out / "best.json").exists()
    assert_progress_aligned(out)
    assert "on 1 node(s)" in r.stdout


def test_sigterm_to_the_group_stops_optuna_cleanly_and_resumes(tmp_path):
    # Rule: SIGTERM to the process group (kill -TERM -PGID) ends like Ctrl-C: exit 143, one line,
    # Ray's processes survive long enough to save; --resume completes the same study.
    from tuning.search.study import load_study

    args = small_search(tmp_path, "tuning.optuna", "o", "--trials", "4")
    out = tmp_path / "r" / "o"
    code, err = signal_after_first_epoch(start_cli(*args), out, signal.SIGTERM)
    assert code == 143, err
    [line] = err.strip().splitlines()
    assert line.startswith("interrupted (SIGTERM): ")
    assert json.loads((out / "search.json").read_text())["state"] == "interrupted"
    r = run_cli(*args, "--resume", timeout=600)
    assert_resumed_cleanly(r)
    trials = pd.read_csv(out / "trials.csv")
    assert len(trials) == 4 and (trials["status"] == "completed").all()
    assert all(t.state.name == "COMPLETE" for t in load_study(out).trials)
    assert_progress_aligned(out)


@pytest.mark.parametrize("first, second", [(signal.SIGTERM, signal.SIGINT), (signal.SIGINT, signal.SIGTERM)],
                         ids=["term-then-int", "int-then-term"])
def test_signals_after_trials_ended_and_during_the_retrain_then_resume(tmp_path, first, second):
    # Rule: a signal once some trials have ended, then one during the retrain of a --resume, each exit
    # 128 + signal with one line; a last --resume finishes: every trial once, the retrain's test report,
    # progress.csv in its columns and one node. ASHA checkpoints only at its rungs (1, 3), so a trial
    # cut at epoch 2 resumes with a report without a checkpoint: the rows Ray's own logger slid.
    space = write_space(tmp_path / "s.yaml", {"lr": {"values": [0.02, 0.05, 0.1, 0.2]},
                                              "dropout": {"values": [0.0, 0.2]}}, epochs=3, batch_size=16)
    args = ["tuning.grid", "--space", str(space), "--subset", "3000", "--results-dir", str(tmp_path / "r"),
            "--name", "g", "--retrain-seeds", "3"]
    out = tmp_path / "r" / "g"
    code, err = signal_when(start_cli(*args), lambda: ended_trials(out) >= 2, first, "2 trials ended")
    assert code == 128 + first, err
    [line] = err.strip().splitlines()
    assert line.startswith(f"interrupted ({first.name}): ") and "of 8 trials finished" in line
    assert json.loads((out / "search.json").read_text())["state"] == "interrupted"
    assert not (out / "best.json").exists()

    code, err = signal_when(start_cli(*args, "--resume"), (out / "best.json").exists, second, "retrained")
    assert code == 128 + second, err
    [line] = err.strip().splitlines()
    assert line.startswith(f"interrupted ({second.name}): 8 of 8 trials finished")
    assert json.loads((out / "search.json").read_text())["state"] == "interrupted"
    assert not (out / "best.json").exists() and not (out / "test_report.json").exists()

    r = run_cli(*args, "--resume", timeout=600)
    assert_resumed_cleanly(r)
    trials, epochs = pd.read_csv(out / "trials.csv"), pd.read_csv(out / "epochs.csv")
    assert sorted(zip(trials["lr"], trials["dropout"])) == [(lr, d) for lr in (0.02, 0.05, 0.1, 0.2) for d in (0, 0.2)]
    assert trials["status"].isin(["completed", "stopped_early"]).all() and trials["time_s"].gt(0).all()
    assert not epochs.duplicated(["trial_id", "epoch"]).any()
    assert epochs.groupby("trial_id")["epoch"].apply(lambda e: e.tolist() == list(range(1, len(e) + 1))).all()
    assert json.loads((out / "search.json").read_text())["state"] == "finished"
    assert (out / "test_report.json").exists() and (out / "best.json").exists()
    assert_progress_aligned(out)


def test_two_runs_with_one_name(tmp_path):
    # Rule: of two runs started together with one --name, one runs and the other exits 2 at once,
    # naming the first one's pid; a run started later while the first works is refused the same way.
    space = write_space(tmp_path / "s.yaml", {"lr": {"values": [0.05, 0.1]}}, epochs=2)
    args = ["tuning.grid", "--space", str(space), "--subset", "2000", "--results-dir", str(tmp_path), "--name", "same",
            "--no-retrain"]
    a, b = start_cli(*args), start_cli(*args)
    results = [(p.pid, p.wait(timeout=600), p.communicate()[1]) for p in (a, b)]
    codes = sorted(c for _, c, _ in results)
    assert codes == [0, 2], results
    (winner, _, _), = [x for x in results if x[1] == 0]
    (_, _, err), = [x for x in results if x[1] == 2]
    assert err.strip().splitlines() == [f"error: --name same: {tmp_path / 'same'} is in use by pid {winner}"]
    assert len(pd.read_csv(tmp_path / "same" / "trials.csv")) == 2
    assert len(list((tmp_path / "same" / "tune").glob("train_trial_*"))) == 2

    opt = small_search(tmp_path, "tuning.optuna", "o", "--trials", "2")
    first = start_cli(*opt)
    time.sleep(3)
    second = run_cli(*opt, "--overwrite")
    assert one_error(second) == f"--name o: {tmp_path / 'r' / 'o'} is in use by pid {first.pid}"
    assert first.wait(timeout=600) == 0, first.communicate()


@pytest.fixture(scope="module")
def finished_optuna(tmp_path_factory):
    """A tiny finished Optuna search, copied by each damage test."""
    tmp = tmp_path_factory.mktemp("finished")
    space = write_space(tmp / "s.yaml", {"lr": {"distribution": "loguniform", "low": 0.02, "high": 0.2}}, epochs=1)
    r = run_cli("tuning.optuna", "--space", str(space), "--trials", "2", "--subset", "1000", "--no-retrain",
                "--results-dir", str(tmp), "--name", "f", timeout=600)
    assert r.returncode == 0, r.stdout + r.stderr
    return tmp / "f", space


def damaged_copy(tmp_path: Path, finished: Path, damage) -> tuple[Path, Path]:
    out = tmp_path / "f"
    shutil.copytree(finished, out)
    return out, damage(out)


def cut_half(f: Path) -> Path:
    f.write_bytes(f.read_bytes()[: f.stat().st_size // 2])
    return f


DAMAGE = {
    "study.log cut in half": (lambda out: cut_half(out / "study.log"), "damaged Optuna study"),
    "study.log of 0 bytes": (lambda out: (out / "study.log").write_bytes(b"") or out / "study.log", "damaged Optuna study"),
    "experiment state cut, no backup": (lambda out: cut_state(out, keep_backup=False), "damaged experiment state"),
}


def cut_state(out: Path, keep_backup: bool) -> Path:
    """Cut the newest experiment state in half, as a kill in the middle of Ray's save does."""
    state = sorted(out.glob("tune/experiment_state-*.json"))[-1]
    if not keep_backup:
        state.with_name(state.name + ".bak").unlink()
    return cut_half(state)


@pytest.mark.parametrize("case", list(DAMAGE))
def test_resume_over_damaged_state_names_the_file(tmp_path, finished_optuna, case):
    # Rule: a damaged study or experiment state is one error line naming the file; nothing changes.
    finished, space = finished_optuna
    damage, why = DAMAGE[case]
    out, bad = damaged_copy(tmp_path, finished, damage)
    before = {p: p.stat().st_mtime_ns for p in out.rglob("*") if p.name != ".lock"}
    r = run_cli("tuning.optuna", "--space", str(space), "--trials", "3", "--subset", "1000", "--no-retrain",
                "--results-dir", str(tmp_path), "--name", "f", "--resume")
    assert one_error(r).startswith(f"{bad}: {why}")
    assert {p: p.stat().st_mtime_ns for p in out.rglob("*") if p.name != ".lock"} == before
    assert tree(tmp_path) == sorted(set(tree(tmp_path)))  # (sanity) and no new folder beside it:
    assert [p.name for p in tmp_path.iterdir()] == ["f"]


def test_resume_over_a_state_cut_mid_save_uses_its_backup(tmp_path, finished_optuna):
    # Rule: a state cut by a kill while Ray saved it is replaced by its whole backup (with one warning
    # naming it), and --resume goes on: the study grows to --trials.
    finished, space = finished_optuna
    out, bad = damaged_copy(tmp_path, finished, lambda o: cut_state(o, keep_backup=True))
    r = run_cli("tuning.optuna", "--space", str(space), "--trials", "3", "--subset", "1000", "--no-retrain",
                "--results-dir", str(tmp_path), "--name", "f", "--resume", timeout=600)
    assert r.returncode == 0, r.stdout + r.stderr
    assert f"{bad}: damaged experiment state (cut by a kill while it was saved)" in r.stderr
    assert len(pd.read_csv(out / "trials.csv")) == 3
