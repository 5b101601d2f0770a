"""tuning/search/halving.py: synchronous successive halving, decided by results alone."""
from __future__ import annotations

import math

import pytest

from tuning.search.halving import SyncHalving, promoted, rung_epochs


@pytest.mark.parametrize("max_t, grace, eta, rungs", [
    (60, 3, 4, [3, 12, 48]), (20, 1, 3, [1, 3, 9]), (3, 1, 3, [1]), (3, 3, 3, []), (10, 2, 2.5, [2, 5]),
])
def test_rungs_are_grace_times_powers_of_eta_below_max_t(max_t, grace, eta, rungs):
    assert rung_epochs(max_t, grace, eta) == rungs


def test_the_best_fraction_goes_on():
    scores = {0: 0.90, 1: 0.95, 2: 0.80, 3: 0.97, 4: 0.85, 5: 0.96, 6: 0.10, 7: 0.50}
    assert promoted(scores, 4) == {3, 5}
    assert promoted(scores, 3) == {3, 5}
    assert promoted(scores, 2) == {1, 3, 5, 0}


def test_at_least_one_goes_on():
    assert promoted({4: 0.5, 2: 0.6}, 4) == {2}


def test_ties_go_to_the_earlier_trial_whatever_the_arrival_order():
    assert promoted({7: 0.9, 3: 0.9, 5: 0.9}, 3) == {3}
    assert promoted(dict(reversed(list({7: 0.9, 3: 0.9, 5: 0.9}.items()))), 3) == {3}


def test_nan_ranks_last():
    assert promoted({0: math.nan, 1: 0.2, 2: 0.1}, 3) == {1}
    assert promoted({0: math.nan, 1: math.nan}, 2) == {0}


def _trials(n: int):
    from ray.tune.experiment import Trial

    return [Trial("fake", stub=True, config={}) for _ in range(n)]


def test_new_trials_run_first_in_creation_order():
    from ray.tune.experiment import Trial

    sched, trials = SyncHalving(9, 1, 3, cohort=2, total=4), _trials(4)
    for t in trials:
        sched.on_trial_add(None, t)
    assert sched.choose_trial_to_run(None) is trials[0]
    for t in trials[:2]:
        t.set_status(Trial.RUNNING)
    assert sched.choose_trial_to_run(None) is trials[2]
    for t in trials[2:]:
        t.set_status(Trial.RUNNING)
    assert sched.choose_trial_to_run(None) is None


def test_a_promoted_trial_runs_again_once_no_new_trial_waits():
    from ray.tune.experiment import Trial

    sched, trials = SyncHalving(9, 1, 3, cohort=2, total=3), _trials(3)
    for t in trials:
        sched.on_trial_add(None, t)
    for t in trials[:2]:
        t.set_status(Trial.RUNNING)
    assert sched.on_trial_result(None, trials[0], {"epoch": 1, "val_accuracy": 0.9}) == SyncHalving.PAUSE
    trials[0].set_status(Trial.PAUSED)
    assert sched.on_trial_result(None, trials[1], {"epoch": 1, "val_accuracy": 0.5}) == SyncHalving.STOP
    assert sched.choose_trial_to_run(None) is trials[2]  # the new trial first
    trials[2].set_status(Trial.RUNNING)
    assert sched.choose_trial_to_run(None) is trials[0]
    trials[0].set_status(Trial.RUNNING)
    assert sched.choose_trial_to_run(None) is None


def test_a_promoted_trial_that_ray_staged_is_chosen_again_until_it_runs():
    # Rule: one promoted trial waits for a slot at a time (Ray marks the chosen one PENDING);
    # choosing the next paused one instead would stage every promoted trial at once.
    from ray.tune.experiment import Trial

    sched, trials = SyncHalving(9, 1, 1.5, cohort=3, total=3), _trials(3)  # two of three go on
    for t in trials:
        sched.on_trial_add(None, t)
        t.set_status(Trial.RUNNING)
    for i, acc in enumerate([0.9, 0.8]):
        sched.on_trial_result(None, trials[i], {"epoch": 1, "val_accuracy": acc})
        trials[i].set_status(Trial.PAUSED)
    sched.on_trial_result(None, trials[2], {"epoch": 1, "val_accuracy": 0.1})
    assert sched.choose_trial_to_run(None) is trials[0]
    trials[0].set_status(Trial.PENDING)  # what Ray does with the trial it is given
    assert sched.choose_trial_to_run(None) is trials[0]
    trials[0].set_status(Trial.RUNNING)
    assert sched.choose_trial_to_run(None) is trials[1]


def test_a_protected_trial_goes_on_from_every_rung():
    # Rule: the warm start (protected) is kept at a rung even when it ranks last; the best go on too.
    from ray.tune.experiment import Trial

    sched, trials = SyncHalving(9, 1, 3, cohort=3, total=3, protected=frozenset({0})), _trials(3)
    for t in trials:
        sched.on_trial_add(None, t)
        t.set_status(Trial.RUNNING)
    assert sched.on_trial_result(None, trials[0], {"epoch": 1, "val_accuracy": 0.1}) == SyncHalving.PAUSE
    trials[0].set_status(Trial.PAUSED)
    assert sched.on_trial_result(None, trials[1], {"epoch": 1, "val_accuracy": 0.5}) == SyncHalving.PAUSE
    trials[1].set_status(Trial.PAUSED)

    class Controller:
        stopped: list = []

        def stop_trial(self, trial):
            self.stopped.append(trials.index(trial))

    controller = Controller()
    assert sched.on_trial_result(controller, trials[2], {"epoch": 1, "val_accuracy": 0.9}) == SyncHalving.CONTINUE
    assert (sched.decided[(0, 1)], controller.stopped) == ({0, 2}, [1])


@pytest.mark.parametrize("grace, images, batch, first", [
    (3, 48_000, 256, 3),   # MNIST: 188 steps per epoch, the rungs stay
    (1, 48_000, 256, 1),
    (3, 1_000, 256, 38),   # 4 steps per epoch: 150 steps take 38 epochs
    (3, 1_000, 1_024, 150),  # a batch larger than the set: one step per epoch
    (40, 1_000, 256, 40),  # a grace period already long enough stays
])
def test_first_rung_waits_for_enough_steps(grace, images, batch, first):
    from tuning.search.budget import first_rung

    assert first_rung(grace, images, batch) == first
