"""tuning/resume/ledger.py: the append-only record of trials that started and ended, and what --resume reads of it."""
from __future__ import annotations

from tuning.resume.ledger import ENDED, LEDGER, STARTED, Carry, append, config_key, read


def test_config_key_ignores_key_order():
    # Rule: the same parameters in another order are the same trial.
    assert config_key({"lr": 0.1, "batch_size": 16}) == config_key({"batch_size": 16, "lr": 0.1})


def test_read_lists_ended_trials_and_the_lost_ones_by_configuration(tmp_path):
    # Rule: ended names the folders of ended trials; lost holds started folders Ray's state does not know, by
    # config; ids maps every folder named to its trial id.
    path = tmp_path / LEDGER
    append(path, STARTED, "tune", "t1", "id1", {"lr": 0.1})
    append(path, STARTED, "tune", "t2", "id2", {"lr": 0.2})
    append(path, ENDED, "tune", "t2", "id2", {"lr": 0.2}, how="terminated", epoch=3)
    append(path, STARTED, "tune", "t3", "id3", {"lr": 0.3})
    carry = read(path, "tune", known={"t1"})
    assert carry.ended == {"t2"} and carry.ids == {"t1": "id1", "t2": "id2", "t3": "id3"}
    assert carry.lost_of({"lr": 0.2}) == ["t2"] and carry.lost_of({"lr": 0.3}) == ["t3"]
    assert carry.lost_of({"lr": 0.1}) == []


def test_read_keeps_to_one_experiment(tmp_path):
    # Rule: lines of another Ray experiment of the same search (tune-2/, a top-up) are not read.
    path = tmp_path / LEDGER
    append(path, ENDED, "tune", "t1", "id1", {"lr": 0.1})
    append(path, ENDED, "tune-2", "t9", "id9", {"lr": 0.1})
    assert read(path, "tune-2", known=set()).ended == {"t9"}


def test_a_line_cut_by_a_kill_is_skipped(tmp_path):
    # Rule: a half-written last line does not hide the whole lines before it.
    path = tmp_path / LEDGER
    append(path, ENDED, "tune", "t1", "id1", {"lr": 0.1})
    with open(path, "a") as f:
        f.write('{"event": "ended", "experiment": "tune", "tr')
    assert read(path, "tune", known=set()).ended == {"t1"}


def test_no_record_means_nothing_to_carry(tmp_path):
    assert read(tmp_path / LEDGER, "tune", known=set()) == Carry()
