"""tuning/driver/progress.py: a search's progress moves with every epoch and estimates the time left."""
from __future__ import annotations

from tuning.driver.progress import Progress, duration


def result(acc: float, seconds: float = 2.0, diverged: bool = False) -> dict:
    return {"val_accuracy": acc, "epoch_time_s": seconds, "diverged": diverged}


def test_every_epoch_of_any_trial_moves_it():
    p = Progress(total_trials=10, max_epochs=4)
    texts = []
    for trial, acc in (("a", 0.5), ("b", 0.6), ("a", 0.7)):
        p.on_result(trial, result(acc))
        texts.append(p.text())
    assert p.epochs_done == 3 and len(set(texts)) == 3
    assert texts[-1] == "2 running, 0/10 done, best val 70.00%, est. left 37s"  # (2 + 3) + 8 * 4 trial-epochs


def test_the_estimate_before_any_trial_ended_uses_the_maximum():
    # 2 running trials at 1 and 0+1 epochs of 4; 8 trials not started: (3 + 3) + 8 * 4 = 38 trial-epochs,
    # at 2 s each over 2 trials at once: 38 s.
    p = Progress(total_trials=10, max_epochs=4)
    p.on_result("a", result(0.5))
    p.on_result("b", result(0.6))
    assert p.epochs_left() == 38 and p.seconds_left() == 38.0


def test_ended_trials_set_the_expected_length():
    # a stopped after 1 epoch, b finished 4: expect 2.5 epochs a trial; c running at 1 -> 3 left (only b
    # ran longer than 1); 7 not started -> 17.5; 20.5 trial-epochs at 2 s over 2 at once -> 20.5 s.
    p = Progress(total_trials=10, max_epochs=4)
    p.on_result("a", result(0.5))
    for _ in range(4):
        p.on_result("b", result(0.8))
    p.on_end("a")
    p.on_end("b")
    p.on_result("c", result(0.6))
    assert (p.finished, p.stopped, p.failed) == (1, 1, 0)
    assert p.expected_epochs() == 2.5 and p.epochs_left() == 20.5 and p.seconds_left() == 20.5
    assert p.text() == "1 running, 2/10 done, 1 stopped early, best val 80.00%, est. left 20s"


def test_a_trial_past_every_early_stop_is_expected_to_run_to_the_maximum():
    # Rule: halving stops most trials at the first rung; a trial promoted past them all (here at 5 of 20
    # epochs, every ended trial stopped at 3) still has 15 epochs to go, not 0.
    p = Progress(total_trials=3, max_epochs=20)
    for trial in ("a", "b"):
        for _ in range(3):
            p.on_result(trial, result(0.5))
        p.on_end(trial)
    for _ in range(5):
        p.on_result("c", result(0.9))
    assert p.expected_epochs() == 3.0 and p.epochs_left() == 15.0


def test_diverged_and_errored_trials_count_as_failed():
    p = Progress(total_trials=3, max_epochs=2)
    p.on_result("a", result(float("nan"), diverged=True))
    p.on_end("a")
    p.on_result("b", result(0.4))
    p.on_end("b", error=True)
    assert p.failed == 2 and p.finished == p.stopped == 0


def test_resumed_trials_count_as_done():
    p = Progress(total_trials=5, max_epochs=2, done_before=3)
    assert p.text() == "0 running, 3/5 done, est. left ?" and p.epochs_left() == 4


def test_durations_read_as_minutes_and_hours():
    assert [duration(s) for s in (9, 62, 3725)] == ["9s", "1m02s", "1h02m"]


def test_an_epoch_count_given_at_the_end_is_taken():
    # Rule: a final result that reaches only the trial's end still counts (3 epochs of 3: finished).
    p = Progress(total_trials=2, max_epochs=3)
    p.on_result("a", {"val_accuracy": 0.5, "epoch_time_s": 1.0, "training_iteration": 1})
    p.on_result("a", {"val_accuracy": 0.6, "epoch_time_s": 1.0, "training_iteration": 2})
    p.on_end("a", epochs=3)
    assert (p.finished, p.stopped, p.epochs_done) == (1, 0, 3)


def test_paused_trials_are_shown_apart_and_do_not_count_as_training_at_once():
    # Rule: trials waiting at a sync rung are "paused", not "running"; a result makes one run again.
    p = Progress(total_trials=4, max_epochs=3)
    for t in ("a", "b", "c"):
        p.on_result(t, {"training_iteration": 1, "epoch_time_s": 2.0, "val_accuracy": 0.9})
    p.set_paused({"a", "b", "zz"})
    assert p.text().startswith("1 running, 2 paused, 0/4 done")
    p.on_result("a", {"training_iteration": 2, "epoch_time_s": 2.0, "val_accuracy": 0.9})
    assert p.paused == {"b"} and p.text().startswith("2 running, 1 paused")
    p.on_end("b")
    assert p.paused == set() and p.text().startswith("2 running, 1/4 done")


def test_a_trial_ended_twice_or_resumed_counts_once_in_the_expected_length():
    # Rule: a ran 1 epoch and b 4; b's end is told twice, and b reports again (a resume) then ends again:
    # the expected length stays the mean over the two trials, (1 + 4) / 2.
    p = Progress(total_trials=10, max_epochs=4)
    p.on_result("a", result(0.5))
    p.on_end("a")
    for _ in range(4):
        p.on_result("b", {**result(0.8), "training_iteration": _ + 1})
    p.on_end("b")
    p.on_end("b")
    p.on_result("b", {**result(0.8), "training_iteration": 4})
    assert p.expected_epochs() == 1.0  # while b runs again, only a has ended
    p.on_end("b", epochs=4)
    assert p.expected_epochs() == 2.5 and dict(p.ended_epochs) == {1: 1, 4: 1}


def test_a_trial_told_ended_twice_is_one_finished_trial():
    # Rule: the end of a finished trial told twice (its final result comes with the stop too) counts it
    # once; a trial stopped early and then finished after a resume counts as finished, not both.
    p = Progress(total_trials=10, max_epochs=2)
    for e in (1, 2):
        p.on_result("a", {**result(0.8), "training_iteration": e})
    p.on_end("a")
    p.on_end("a")
    p.on_result("b", result(0.5))
    p.on_end("b")
    p.on_result("b", {**result(0.6), "training_iteration": 2})
    p.on_end("b")
    assert (p.finished, p.stopped, p.failed, p.ended) == (2, 0, 0, 2)
