"""tuning/search/sampler.py: which trials TPE is shown past the threshold, that below it nothing changes, and
the vectorised log Φ."""
from __future__ import annotations

import numpy as np
import optuna
import pytest
import scipy.special

from tuning import compat
from tuning.search.sampler import BoundedTPESampler, bounded

State = optuna.trial.TrialState


def trial(number: int, state=State.COMPLETE, value=None, steps=None) -> optuna.trial.FrozenTrial:
    t = optuna.trial.create_trial(state=state, value=value if state == State.COMPLETE else None,
                                  intermediate_values=steps or {})
    t.number = number
    return t


def test_below_the_threshold_every_trial_is_shown():
    trials = [trial(i, value=i / 10) for i in range(5)]
    assert bounded(trials, True, threshold=5, best=1, latest=1) == trials


def test_past_the_threshold_the_best_the_latest_and_the_running_are_shown():
    # Rule: best 2 by value (maximize: 0.9, 0.8), latest 2 of the others (numbers 4, 5), every running one.
    values = [0.9, 0.1, 0.8, 0.2, 0.3, 0.4]
    trials = [trial(i, value=v) for i, v in enumerate(values)] + [trial(6, State.RUNNING)]
    assert [t.number for t in bounded(trials, True, threshold=3, best=2, latest=2)] == [0, 2, 4, 5, 6]


def test_past_the_threshold_only_the_latest_running_trials_are_shown_besides_the_asking_one():
    # Rule: with running=2, the latest 2 running trials other than the asking one (7) are shown, and the
    # asking one too (TPE leaves it out itself); finished trials as before.
    trials = [trial(i, value=i / 10) for i in range(4)] + [trial(i, State.RUNNING) for i in range(4, 8)]
    shown = bounded(trials, True, threshold=2, best=1, latest=1, running=2, asking=7)
    assert [t.number for t in shown] == [2, 3, 5, 6, 7]


def test_the_sampler_shows_twenty_five_running_trials_unless_told_otherwise():
    # Rule: BoundedTPESampler bounds the constant liar's trials by default; running=None shows them all.
    assert BoundedTPESampler().running == 25
    assert BoundedTPESampler(running=None).running is None


def test_completed_trials_rank_above_pruned_ones_and_later_rungs_above_earlier():
    # Rule: TPE's order: completed by value, then pruned by last step reached, then by value there.
    trials = [trial(0, State.PRUNED, steps={1: 0.99}), trial(1, State.PRUNED, steps={1: 0.5, 3: 0.6}),
              trial(2, value=0.7), trial(3, State.PRUNED, steps={1: 0.2})]
    assert [t.number for t in bounded(trials, True, threshold=0, best=2, latest=0)] == [1, 2]


@pytest.mark.parametrize("threshold", [1000, 5])
def test_the_sampler_runs_a_study(threshold):
    # Rule: below the threshold it suggests exactly what TPE does with the same seed; past it, it still
    # suggests values inside the space.
    def objective(t):
        return -(t.suggest_float("x", -5, 5) - 1) ** 2 - t.suggest_int("k", 0, 3)

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    kw = dict(seed=0, multivariate=True, group=True, n_startup_trials=5)
    ours = optuna.create_study(direction="maximize", sampler=BoundedTPESampler(threshold=threshold, best=3, latest=2, **kw))
    plain = optuna.create_study(direction="maximize", sampler=optuna.samplers.TPESampler(**kw))
    ours.optimize(objective, n_trials=20)
    plain.optimize(objective, n_trials=20)
    same = [t.params for t in ours.trials] == [t.params for t in plain.trials]
    assert same if threshold == 1000 else (not same and all(-5 <= t.params["x"] <= 5 for t in ours.trials))


def test_with_conditional_parameters_it_suggests_exactly_what_tpe_does():
    # Rule: the grouped search space read incrementally and the history ranked once per ask change
    # nothing: a space whose widths depend on the depth (several groups) gets TPE's own suggestions,
    # also after a pickle round trip (Ray saves the searcher with its sampler).
    import pickle

    def objective(t):
        depth = t.suggest_int("depth", 1, 3)
        return sum(-(t.suggest_float(f"w{i}", 0, 1) - 0.3 * i) ** 2 for i in range(depth)) - 0.1 * depth

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    kw = dict(seed=1, multivariate=True, group=True, constant_liar=True, n_startup_trials=5)
    ours = optuna.create_study(direction="maximize", sampler=BoundedTPESampler(threshold=1000, **kw))
    plain = optuna.create_study(direction="maximize", sampler=optuna.samplers.TPESampler(**kw))
    ours.optimize(objective, n_trials=15)
    ours.sampler = pickle.loads(pickle.dumps(ours.sampler))
    ours.optimize(objective, n_trials=15)
    plain.optimize(objective, n_trials=30)
    assert [t.params for t in ours.trials] == [t.params for t in plain.trials]
    assert len({tuple(sorted(t.params)) for t in ours.trials}) == 3


@pytest.mark.parametrize("finished, good", [(300, 25), (150, 15)])
def test_past_the_threshold_the_good_set_is_sized_by_the_whole_study(monkeypatch, finished, good):
    # Rule: TPE's "good" set is min(25, ceil(0.1 n)) of the study's n finished trials, although the
    # view shows only best + latest (without the whole-study count it would be ceil(0.1 * 40) = 4).
    from optuna.samplers._tpe import sampler as tpe

    seen = []

    def spy(study, trials, n_below, *args):
        seen.append((n_below, len(trials)))
        return split(study, trials, n_below, *args)

    split = tpe._split_trials
    monkeypatch.setattr(tpe, "_split_trials", spy)
    dist = {"x": optuna.distributions.FloatDistribution(0, 1)}
    study = optuna.create_study(direction="maximize", sampler=BoundedTPESampler(
        seed=0, threshold=40, best=25, latest=15, multivariate=True, n_startup_trials=5))
    study.add_trials([optuna.trial.create_trial(params={"x": i / finished}, distributions=dist, value=float(i % 97))
                      for i in range(finished)])
    study.ask(dist)
    assert seen == [(good, 40)]


def test_log_ndtr_is_scipys_and_agrees_with_optunas():
    # Rule: once a sampler of ours is made, TPE computes log Φ with SciPy, within 1e-12 (absolute) or
    # 1e-7 (relative) of Optuna's own element-by-element version, tails included.
    compat.restore_log_ndtr()
    BoundedTPESampler(seed=0)
    assert compat.log_ndtr_in_use() is scipy.special.log_ndtr
    x = np.concatenate([np.linspace(-60.0, 40.0, 2001), [-1000.0, -20.0, 6.0]])
    assert np.allclose(compat.log_ndtr_in_use()(x), compat.optunas_log_ndtr()(x), rtol=1e-7, atol=1e-12)
