"""tuning/resume/checkpoints.py: when a report carries a checkpoint; a trial's own checkpoint folders decide
where it resumes and which epochs it ran."""
from __future__ import annotations

import json

import pytest
import torch

from tuning.resume.checkpoints import (CHECKPOINT_AFTER_S, HISTORY_FILE, STATE_FILE, checkpoint_due, epoch_of, histories,
                                load_state, newest_history, newest_state, read_history, write)

RUNGS = frozenset({3, 12, 48})


@pytest.mark.parametrize("epoch,diverged,since,due", [
    (3, False, 0.0, True),  # a rung: the scheduler may pause or compare there
    (60, False, 0.0, True),  # the last epoch
    (7, True, 0.0, True),  # a diverged epoch ends the trial
    (7, False, CHECKPOINT_AFTER_S, True),  # a minute since the last one
    (7, False, 1.0, False),  # none of these
])
def test_checkpoint_due(epoch, diverged, since, due):
    assert checkpoint_due(epoch, 60, RUNGS, diverged, since) is due


def test_checkpoint_s_zero_checkpoints_every_epoch():
    # Rule: --checkpoint-s 0 puts a checkpoint on every epoch; a larger one waits that long.
    assert checkpoint_due(7, 60, RUNGS, False, 0.0, every_s=0.0) is True
    assert checkpoint_due(7, 60, RUNGS, False, 10.0, every_s=30.0) is False


def epochs(n: int) -> list[dict]:
    return [{"epoch": e, "val_accuracy": 0.5 + e / 100} for e in range(1, n + 1)]


def save(trial, index: int, n: int):
    folder = trial / f"checkpoint_{index:06d}"
    folder.mkdir(parents=True)
    write(folder, {"epoch": n, "w": torch.full((2,), float(n))}, epochs(n))
    return folder


def test_write_saves_the_run_the_last_metrics_and_the_history(tmp_path):
    folder = save(tmp_path, 0, 3)
    saved = load_state(folder / STATE_FILE)
    assert saved["metrics"] == {"epoch": 3, "val_accuracy": 0.53}
    assert saved["history"] == epochs(3) and saved["run"]["w"].tolist() == [3.0, 3.0]
    assert json.loads((folder / HISTORY_FILE).read_text()) == epochs(3)


def test_histories_put_the_most_epochs_first_whatever_the_folder_name(tmp_path):
    # Ray can name a later epoch's checkpoint with a lower index after a resume from a lagging state
    save(tmp_path, 0, 1)
    save(tmp_path, 1, 4)
    save(tmp_path, 2, 2)
    assert [(len(h), f.name) for h, f in histories(tmp_path)] == [(4, "checkpoint_000001"), (2, "checkpoint_000002"),
                                                                  (1, "checkpoint_000000")]
    assert newest_history(tmp_path) == epochs(4)


@pytest.mark.parametrize("text", ["", "[{\"epoch\": 1}, {\"ep", "[]", "{\"epoch\": 1}", "[{\"val\": 1}]"])
def test_a_cut_or_foreign_history_is_skipped(tmp_path, text):
    save(tmp_path, 0, 1)
    bad = save(tmp_path, 1, 2)
    (bad / HISTORY_FILE).write_text(text)
    assert read_history(bad) is None
    assert newest_history(tmp_path) == epochs(1)


def test_newest_state_falls_back_past_a_cut_state_file(tmp_path):
    save(tmp_path, 0, 1)
    cut = save(tmp_path, 1, 2) / STATE_FILE
    cut.write_bytes(cut.read_bytes()[:50])
    assert load_state(cut) is None
    assert epoch_of(newest_state(tmp_path)) == 1


def test_no_checkpoint_means_epoch_0(tmp_path):
    assert newest_state(tmp_path) is None and epoch_of(None) == 0 and newest_history(tmp_path) == []


def test_a_checkpoint_from_before_the_history_still_loads(tmp_path):
    torch.save({"run": {}, "metrics": {"epoch": 2}}, tmp_path / STATE_FILE)
    assert load_state(tmp_path / STATE_FILE)["history"] == [{"epoch": 2}]
