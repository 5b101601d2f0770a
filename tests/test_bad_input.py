"""Bad input to every CLI: one line naming the flag or file and the value, exit 2, no traceback."""
from __future__ import annotations

import time

import pytest

from tests.conftest import call_cli

CASES = [
    ("tuning.grid", ["--epochs", "0"], "--epochs 0"),
    ("tuning.grid", ["--epochs", "-3"], "--epochs -3"),
    ("tuning.optuna", ["--epochs", "0"], "--epochs 0"),
    ("tuning.optuna", ["--trials", "0"], "--trials 0"),
    ("tuning.optuna", ["--trials", "-5"], "--trials -5"),
    ("tuning.grid", ["--scheduler", "hyperband"], "invalid choice: 'hyperband'"),
    ("tuning.optuna", ["--sampler", "grid"], "invalid choice: 'grid'"),
    ("tuning.optuna", ["--objectives", "accuracy,colour"], "--objectives accuracy,colour"),
    ("tuning.optuna", ["--storage", "nosuchdb://u:secret@host/x"], "--storage nosuchdb://u:***@host/x: cannot open"),
    ("tuning.optuna", ["--chunk-trials", "0"], "--chunk-trials 0"),
    ("tuning.grid", ["--ensemble", "1"], "--ensemble 1: must be 0 (none) or >= 2 nets"),
    ("tuning.optuna", ["--ensemble", "3", "--no-retrain"], "--ensemble 3: the committee is made by the retrain"),
    ("tuning.optuna", ["--min-rung-steps", "-1"], "--min-rung-steps -1: must be >= 0"),
    ("tuning.optuna", ["--timeout", "60", "--deterministic"], "--timeout 60.0: trials started within a time limit"),
    ("tuning.grid", ["--gpus-per-trial", "1"], "--gpus-per-trial 1.0: no GPU"),
    ("tuning.optuna", ["--gpus-per-trial", "0.25"], "--gpus-per-trial 0.25: no GPU"),
    ("tuning.grid", ["--space", "no-such-space.yaml"], "--space no-such-space.yaml: no such file"),
    ("tuning.optuna", ["--space", "/tmp/missing/space.yaml"], "/tmp/missing/space.yaml"),
    ("tuning.grid", ["--retrain-seeds", "0"], "--retrain-seeds 0"),
    ("tuning.grid", ["--resume", "--overwrite"], "--resume and --overwrite"),
    ("tuning.grid", ["--cpus-per-trial", "0"], "--cpus-per-trial 0"),
    ("model.train", ["--epochs", "-1"], "--epochs -1"),
    ("model.train", ["--dropout", "1.5"], "--dropout 1.5"),
    ("data", ["--data-dir", "/no/such/dir"], "/no/such/dir"),
    ("tuning.report", ["/no/such/results"], "/no/such/results"),
]


@pytest.mark.parametrize("module, args, needle", CASES, ids=[f"{m} {' '.join(a)}" for m, a, _ in CASES])
def test_bad_flag(tmp_path, module, args, needle):
    # Rule: each bad flag or file gives exactly one error line naming it, and exit status 2.
    extra = ["--results-dir", str(tmp_path)] if module != "tuning.report" else []
    r = call_cli(module, *args, *extra)
    assert r.returncode == 2, r.stderr
    assert needle in r.stderr and "Traceback" not in r.stderr
    assert len([l for l in r.stderr.splitlines() if "error" in l]) == 1


def test_unwritable_results_dir(tmp_path):
    # Rule: a results folder that cannot be created (a file is in the way) is named in one line.
    (tmp_path / "file").write_text("x")
    r = call_cli("tuning.grid", "--results-dir", str(tmp_path / "file" / "sub"))
    assert r.returncode == 2 and f"--results-dir {tmp_path / 'file' / 'sub'}" in r.stderr
    assert "Traceback" not in r.stderr


def test_same_name_refuses_to_overwrite(tmp_path):
    # Rule: a second search with the same --name refuses (without --resume/--overwrite) and keeps the files.
    old = tmp_path / "grid"
    old.mkdir()
    (old / "search.json").write_text('{"kind": "grid"}')
    (old / "trials.csv").write_text("trial_id\nx\n")
    r = call_cli("tuning.grid", "--results-dir", str(tmp_path))
    assert r.returncode == 2 and "already holds a search" in r.stderr and "--resume" in r.stderr
    assert (old / "trials.csv").read_text() == "trial_id\nx\n"


def test_resume_with_nothing_to_resume(tmp_path):
    # Rule: --resume on a name that never ran says there is nothing to resume.
    r = call_cli("tuning.grid", "--resume", "--name", "never", "--subset", "100", "--results-dir", str(tmp_path))
    assert r.returncode == 2 and "nothing to resume" in r.stderr


def test_unreachable_address_fails_fast(tmp_path):
    # Rule: an --address where no Ray head listens fails within 30 s with one line naming it.
    t0 = time.monotonic()
    r = call_cli("tuning.grid", "--address", "127.0.0.1:1", "--subset", "100", "--results-dir", str(tmp_path))
    assert time.monotonic() - t0 < 30
    assert r.returncode == 2 and "--address 127.0.0.1:1: cannot reach" in r.stderr and "Traceback" not in r.stderr
