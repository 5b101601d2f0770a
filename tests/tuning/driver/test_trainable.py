"""tuning/driver/trainable.py: what a resumed trial that had ended reports."""
from __future__ import annotations

from tuning.resume.checkpoints import write
from tuning.resume.ledger import ADOPTED, ADOPTED_ID, AGAIN, BEST_BEFORE, Carry, config_key
from tuning.driver.trainable import ended_before, reported_again, start_state


def history_in(folder, epochs):
    (folder / "checkpoint_000000").mkdir(parents=True)
    write(folder / "checkpoint_000000", {}, [{"epoch": e, "val_accuracy": e / 10, "diverged": False}
                                             for e in range(1, epochs + 1)])


def test_an_ended_trial_reports_its_last_epoch_again(tmp_path):
    history_in(tmp_path / "t1", 3)
    got = ended_before("t1", {"lr": 0.1}, Carry(ended=frozenset({"t1"}), ids={"t1": "id1"}), tmp_path)
    assert got == {"epoch": 3, "val_accuracy": 0.3, "diverged": False, BEST_BEFORE: 0.3, AGAIN: True}


def test_a_trial_asked_again_reports_its_lost_incarnation_under_that_id(tmp_path):
    # Rule: the new trial reports the lost one's last epoch, naming the folder and trial id it stands for.
    history_in(tmp_path / "old", 2)
    carry = Carry(ended=frozenset({"old"}), lost={config_key({"lr": 0.1}): ["old"]}, ids={"old": "id-old"})
    got = ended_before("new", {"lr": 0.1}, carry, tmp_path)
    assert got == {"epoch": 2, "val_accuracy": 0.2, "diverged": False, BEST_BEFORE: 0.2, ADOPTED: "old",
                   ADOPTED_ID: "id-old"}


def test_a_trial_that_has_not_ended_trains(tmp_path):
    history_in(tmp_path / "t1", 2)
    carry = Carry(lost={config_key({"lr": 0.1}): ["t1"]}, ids={"t1": "id1"})
    assert ended_before("t2", {"lr": 0.1}, carry, tmp_path) is None
    assert ended_before("t2", {"lr": 0.1}, None, tmp_path) is None


def test_the_report_again_carries_the_best_epoch_not_only_the_last():
    # Rule: BEST_BEFORE is the best validation accuracy of the history; a diverged (NaN) epoch does not count.
    history = [{"epoch": 1, "val_accuracy": 0.9}, {"epoch": 2, "val_accuracy": float("nan")}]
    assert reported_again(history, "t1", "t1", None)[BEST_BEFORE] == 0.9


def test_start_state_names_the_lost_folder_it_carries_on_from(tmp_path):
    # Rule: a trial asked again carries on from the lost incarnation's newer checkpoint and says whose it is
    # (a finished one then reports under that incarnation's id instead of training).
    history_in(tmp_path / "new", 1)
    history_in(tmp_path / "old", 3)
    saved, source = start_state(None, [tmp_path / "new", tmp_path / "old"])
    assert (saved["metrics"]["epoch"], source) == (3, tmp_path / "old")
    assert start_state(None, [tmp_path / "none"]) == (None, None)
