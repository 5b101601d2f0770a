"""tuning/search/searcher.py: StudySearch's study states, fed recorded results (no Ray runtime, in-memory study)."""
from __future__ import annotations

import math

import optuna
import pytest

from tuning.resume.ledger import ADOPTED_ID, BEST_BEFORE
from tuning.search.searcher import StudySearch
from tuning.search.space import DefineByRun, parse_space
from tuning.search.study import RAY_ID, fail_orphans, make_sampler

State = optuna.trial.TrialState
SPACE = parse_space({"params": {"lr": {"distribution": "loguniform", "low": 0.001, "high": 0.3}}}, "test.yaml")


def searcher(metric="val_accuracy", mode="max", max_epochs=3) -> StudySearch:
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    multi = isinstance(metric, list)
    return StudySearch(space=DefineByRun(SPACE), metric=metric, mode=mode, max_epochs=max_epochs,
                       sampler=make_sampler("random", 0, multi), seed=0)


def epoch(n: int, acc: float, **extra) -> dict:
    return {"epoch": n, "val_accuracy": acc, "diverged": False, **extra}


def only_trial(s: StudySearch) -> optuna.trial.FrozenTrial:
    (t,) = s.study.trials
    return t


def test_suggest_links_the_ray_trial():
    # Rule: each suggestion is one Optuna trial carrying the Ray trial id as a user attribute.
    s = searcher()
    config = s.suggest("ray-1")
    assert set(config) == {"lr"} and only_trial(s).user_attrs == {RAY_ID: "ray-1"}


def test_trial_that_ran_every_epoch_is_complete_with_its_best_accuracy():
    # Rule: max_epochs reached -> COMPLETE, value = best validation accuracy, one intermediate value per epoch.
    s = searcher()
    s.suggest("a")
    for n, acc in ((1, 0.5), (2, 0.8), (3, 0.7)):
        s.on_trial_result("a", epoch(n, acc))
    s.on_trial_complete("a", epoch(3, 0.7))
    t = only_trial(s)
    assert (t.state, t.value, t.intermediate_values) == (State.COMPLETE, 0.8, {1: 0.5, 2: 0.8, 3: 0.7})


def test_trial_stopped_before_max_epochs_is_pruned():
    # Rule: a trial the scheduler stopped at epoch 1 of 3 is PRUNED; its last result arrives only with the stop.
    s = searcher()
    s.suggest("a")
    s.on_trial_complete("a", epoch(1, 0.6))
    t = only_trial(s)
    assert (t.state, t.intermediate_values) == (State.PRUNED, {1: 0.6})


def test_diverged_trial_is_failed():
    # Rule: a result flagged diverged (NaN accuracy) makes the trial FAIL.
    s = searcher()
    s.suggest("a")
    s.on_trial_result("a", epoch(1, 0.3))
    s.on_trial_complete("a", {"epoch": 2, "val_accuracy": math.nan, "diverged": True})
    assert only_trial(s).state == State.FAIL


def test_errored_trial_is_failed():
    # Rule: a trial whose worker raised is FAIL, whatever it reported before.
    s = searcher()
    s.suggest("a")
    s.on_trial_result("a", epoch(1, 0.9))
    s.on_trial_complete("a", None, error=True)
    assert only_trial(s).state == State.FAIL


def test_repeated_final_result_is_counted_once():
    # Rule: the final result reported again with the stop does not add a second intermediate value.
    s = searcher(max_epochs=2)
    s.suggest("a")
    s.on_trial_result("a", epoch(2, 0.9))
    s.on_trial_complete("a", epoch(2, 0.9))
    t = only_trial(s)
    assert (t.state, t.intermediate_values) == (State.COMPLETE, {2: 0.9})


def test_pareto_trial_is_complete_with_both_objectives():
    # Rule: with two objectives a finished trial is COMPLETE with [best accuracy, last value of the second].
    s = searcher(metric=["val_accuracy", "params"], mode=["max", "min"])
    s.suggest("a")
    s.on_trial_result("a", epoch(1, 0.9, params=1000))
    s.on_trial_complete("a", epoch(2, 0.85, params=1000))
    t = only_trial(s)
    assert (t.state, t.values) == (State.COMPLETE, [0.9, 1000.0])


def test_complete_twice_keeps_the_first_state():
    # Rule: a second on_trial_complete for the same trial changes nothing.
    s = searcher()
    s.suggest("a")
    s.on_trial_complete("a", epoch(1, 0.6))
    s.on_trial_complete("a", epoch(3, 0.9))
    assert only_trial(s).state == State.PRUNED


@pytest.mark.parametrize("running", [0, 2])
def test_fail_orphans_fails_exactly_the_running_trials(running):
    # Rule: trials left RUNNING are told FAIL through Optuna's public API; finished ones keep their state.
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(direction="maximize")
    study.tell(study.ask(), 0.5)
    for _ in range(running):
        study.ask()
    assert fail_orphans(study) == running
    assert [t.state for t in study.trials] == [State.COMPLETE] + [State.FAIL] * running


@pytest.mark.parametrize("tested", [True, False])
def test_restore_hands_out_again_the_trials_started_after_the_save(tmp_path, monkeypatch, tested):
    # Rule: a searcher restored from a state saved before trials b and c were handed out gives them to
    # the next Ray trials first, with their own parameters; b (running) is relinked to its new Ray id,
    # c (already finished in the study) is not told again; then new trials are asked. The same with
    # an untested Optuna (tuning.compat reads the stored states through the public API).
    from tuning import compat

    monkeypatch.setattr(compat, "OPTUNA_TESTED", tested)
    storage = optuna.storages.RDBStorage(f"sqlite:///{tmp_path / 'study.db'}")
    s = StudySearch(space=DefineByRun(SPACE), metric="val_accuracy", mode="max", max_epochs=3,
                    sampler=make_sampler("random", 0, False), seed=0, storage=storage, study_name="s")
    s.suggest("a")
    s.save(str(tmp_path / "searcher.pkl"))  # Ray's last save before the kill
    b, c = s.suggest("b"), s.suggest("c")
    s.on_trial_complete("c", epoch(3, 0.9))
    restored = StudySearch(space=DefineByRun(SPACE), metric="val_accuracy", mode="max", max_epochs=3,
                           sampler=make_sampler("random", 0, False), seed=0, storage=storage, study_name="s")
    restored.restore(str(tmp_path / "searcher.pkl"))
    assert restored.adopt == [1, 2]
    assert restored.suggest("b2") == b and restored.suggest("c2") == c
    restored.on_trial_complete("c2", epoch(3, 0.5))  # its report again: the study keeps the first
    new = restored.suggest("d")
    trials = restored.study.trials
    assert [t.user_attrs[RAY_ID] for t in trials] == ["a", "b2", "c", "d"]
    assert (trials[2].state, trials[2].value) == (State.COMPLETE, 0.9) and set(new) == {"lr"}


def test_restore_adopts_nothing_from_an_earlier_experiment(tmp_path):
    # Rule: trials of the study from before this searcher was made (a top-up's earlier experiment) are not
    # handed out again, though this searcher never knew them.
    storage = optuna.storages.RDBStorage(f"sqlite:///{tmp_path / 'study.db'}")
    make = lambda: StudySearch(space=DefineByRun(SPACE), metric="val_accuracy", mode="max", max_epochs=3,  # noqa: E731
                               sampler=make_sampler("random", 0, False), seed=0, storage=storage, study_name="s")
    first = make()
    first.suggest("old")
    first.on_trial_complete("old", epoch(3, 0.8))
    second = make()
    second.save(str(tmp_path / "searcher.pkl"))
    second.restore(str(tmp_path / "searcher.pkl"))
    assert second.adopt == []


def test_restore_does_not_suggest_the_handed_out_parameters_again(tmp_path):
    # Rule: after a restore, a fresh suggestion differs from the one handed out after the save (the
    # sampler's random state is reseeded, not the saved one replayed).
    storage = optuna.storages.RDBStorage(f"sqlite:///{tmp_path / 'study.db'}")
    make = lambda: StudySearch(space=DefineByRun(SPACE), metric="val_accuracy", mode="max", max_epochs=3,  # noqa: E731
                               sampler=make_sampler("random", 0, False), seed=0, storage=storage, study_name="s")
    s = make()
    s.save(str(tmp_path / "searcher.pkl"))
    lost = s.suggest("b")
    restored = make()
    restored.restore(str(tmp_path / "searcher.pkl"))
    assert restored.suggest("b2") == lost  # handed out again
    assert restored.suggest("c") != lost


def test_a_report_standing_for_a_lost_trial_relinks_the_study_trial_and_keeps_its_best():
    # Rule: a result naming the lost incarnation it reports for (ADOPTED_ID) links the study trial to that
    # id, as the tables list it; its value is the best epoch of that incarnation, not only its last.
    s = searcher()
    s.suggest("new")
    last = epoch(3, 0.7, **{ADOPTED_ID: "old", BEST_BEFORE: 0.8})
    s.on_trial_result("new", last)
    s.on_trial_complete("new", last)
    t = only_trial(s)
    assert (t.state, t.value, t.user_attrs[RAY_ID]) == (State.COMPLETE, 0.8, "old")
