"""tuning/resume/pruning.py: which checkpoint files a trial keeps."""
from __future__ import annotations

from pathlib import Path

from tuning.resume.checkpoints import HISTORY_FILE, STATE_FILE, write
from tuning.resume.pruning import prune


def trial_with_checkpoints(tmp_path: Path, epochs: list[int]) -> Path:
    trial = tmp_path / "trial"
    for e in epochs:
        folder = trial / f"checkpoint_{e:06d}"
        folder.mkdir(parents=True)
        write(folder, {"w": bytes(1000)}, [{"epoch": i} for i in range(1, e + 1)])
    return trial


def test_a_running_trial_keeps_its_newest_checkpoints_whole(tmp_path):
    # Rule: keep=2 with state: the two newest folders stay whole, older folders go.
    trial = trial_with_checkpoints(tmp_path, [1, 3, 9])
    freed = prune(trial, keep=2, keep_state=True)
    assert sorted(p.name for p in trial.iterdir()) == ["checkpoint_000003", "checkpoint_000009"]
    assert (trial / "checkpoint_000003" / STATE_FILE).exists() and freed > 1000


def test_an_ended_trial_keeps_only_its_newest_history(tmp_path):
    # Rule: keep=1 without state: one folder is left, holding the history and no model state.
    trial = trial_with_checkpoints(tmp_path, [1, 3])
    prune(trial, keep=1, keep_state=False)
    (left,) = trial.iterdir()
    assert left.name == "checkpoint_000003" and [p.name for p in left.iterdir()] == [HISTORY_FILE]


def test_a_folder_being_written_is_left_alone(tmp_path):
    # Rule: a checkpoint folder without a whole history (a copy in flight) is neither counted nor deleted.
    trial = trial_with_checkpoints(tmp_path, [1, 3])
    (trial / "checkpoint_000004").mkdir()
    prune(trial, keep=1, keep_state=False)
    assert sorted(p.name for p in trial.iterdir()) == ["checkpoint_000003", "checkpoint_000004"]
