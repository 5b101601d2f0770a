"""`python -m tuning.optuna` on real Ray and real Optuna: the study's states, conditional depth,
warm start, divergence, and the Pareto mode."""
from __future__ import annotations

import json

import optuna
import pandas as pd
import pytest

from tests.conftest import call_cli, write_space
from tuning.optuna import main as optuna_main
from tuning.search.study import RAY_ID, load_study

STATE_OF_STATUS = {"completed": "COMPLETE", "stopped_early": "PRUNED", "diverged": "FAIL", "error": "FAIL"}
SMALL = ["--subset", "1500", "--no-retrain", "--min-rung-steps", "0"]  # rungs as asked, on 1,500 images


@pytest.fixture(scope="module")
def study_run(ray_session, tmp_path_factory):
    """4 trials of a conditional-depth space with ASHA (grace 1, rf 2) for up to 3 epochs."""
    tmp = tmp_path_factory.mktemp("optuna")
    space = write_space(tmp / "space.yaml", {
        "lr": {"distribution": "loguniform", "low": 0.0003, "high": 0.3},
        "batch_size": {"distribution": "categorical", "choices": [16, 64]},
        "n_layers": {"distribution": "int", "low": 1, "high": 3},
        "width": {"distribution": "int", "low": 16, "high": 64, "log": True},
    }, epochs=3)
    code = optuna_main(["--space", str(space), "--trials", "4", "--results-dir", str(tmp), "--name", "o",
                        "--grace-period", "1", "--reduction-factor", "2", *SMALL])
    assert code == 0
    return tmp / "o"


def test_study_states_match_trials_table(study_run):
    # Rule: the study holds one trial per row of trials.csv, its state following the row's status.
    study = load_study(study_run)
    trials = pd.read_csv(study_run / "trials.csv")
    assert len(study.trials) == 4 == len(trials)
    state = {t.user_attrs[RAY_ID]: t.state.name for t in study.trials}
    for _, row in trials.iterrows():
        assert state[row["trial_id"]] == STATE_OF_STATUS[row["status"]], row["trial_id"]


def test_study_is_readable_by_optuna_with_intermediate_values(study_run):
    # Rule: optuna.load_study reads study.log; every trial that trained has per-epoch intermediate values.
    from optuna.storages.journal import JournalFileBackend

    storage = optuna.storages.JournalStorage(JournalFileBackend(str(study_run / "study.log")))
    study = optuna.load_study(study_name="o", storage=storage)
    epochs = pd.read_csv(study_run / "epochs.csv")
    for t in study.trials:
        if t.state.name in ("COMPLETE", "PRUNED"):
            ep = epochs[epochs["trial_id"] == t.user_attrs[RAY_ID]]
            assert sorted(t.intermediate_values) == ep["epoch"].tolist()
            assert t.intermediate_values[1] == pytest.approx(ep["val_accuracy"].iloc[0])


def test_warm_start_is_trial_zero(study_run):
    # Rule: the notebook's best configuration (lr 0.1, batch 16) is the study's first trial.
    t0 = load_study(study_run).trials[0]
    assert t0.number == 0 and t0.params["lr"] == 0.1 and t0.params["batch_size"] == 16


def test_warm_start_is_a_whole_sensible_point():
    # Rule: trial 0 sets every searched parameter: the notebook's SGD at lr 0.1 where the space allows
    # it (batch 16 only where it is a choice), the rest from the space's base config, clipped into the
    # space (weight decay 0 -> the range's low end; no distortions); depth and widths from base.hidden_sizes.
    from tuning.optuna import _warm_start
    from tuning.search.space import load_space

    rest = {"dropout": 0.2, "weight_decay": 1e-06, "momentum": 0.9, "optimizer": "sgd", "schedule": "cosine"}
    assert _warm_start(load_space("optuna")) == {"lr": 0.1, "batch_size": 128, **rest, "augment_shift": 0,
                                                 "elastic_alpha": 0.0, "distort_rotate": 0.0, "distort_scale": 0.0,
                                                 "n_layers": 2, "width_1": 512, "width_2": 256}
    assert _warm_start(load_space("optuna_plain")) == {"lr": 0.1, "batch_size": 128, **rest, "n_layers": 2,
                                                       "width_1": 512, "width_2": 256}
    assert _warm_start(load_space("grid")) == {"lr": 0.1, "batch_size": 16, "dropout": 0.1, "hidden_sizes": "512-256"}


def test_warm_start_never_pairs_lr_0_1_with_adamw(tmp_path):
    # Rule: where SGD is not a choice, trial 0 is AdamW at torch's default rate, never lr 0.1; an int
    # range with a step takes the nearest step (512 -> 288, the top of 64..300 by 16; 256 stays).
    from tuning.optuna import _warm_start
    from tuning.search.space import parse_space

    space = parse_space({"params": {"optimizer": {"distribution": "categorical", "choices": ["adamw"]},
                                    "lr": {"distribution": "loguniform", "low": 1e-4, "high": 0.3},
                                    "width": {"distribution": "int", "low": 64, "high": 300, "step": 16},
                                    "n_layers": {"distribution": "int", "low": 1, "high": 3}}}, "s.yaml")
    assert _warm_start(space) == {"optimizer": "adamw", "lr": 0.001, "n_layers": 2, "width_1": 288,
                                  "width_2": 256}


def test_conditional_widths_follow_depth(study_run):
    # Rule: a trial has width_i exactly for i <= n_layers, and trained that many hidden layers.
    study = load_study(study_run)
    trials = pd.read_csv(study_run / "trials.csv", dtype={"hidden_sizes": str}).set_index("trial_id")
    for t in study.trials:
        n = t.params["n_layers"]
        assert {k for k in t.params if k.startswith("width_")} == {f"width_{i}" for i in range(1, n + 1)}
        assert trials.loc[t.user_attrs[RAY_ID], "hidden_sizes"] == "-".join(str(t.params[f"width_{i}"])
                                                                           for i in range(1, n + 1))


def test_optuna_plots_come_from_the_study(study_run):
    # Rule: the Optuna plots are drawn into plots/ from the study.
    for name in ("optuna_history.png", "optuna_intermediate.png", "optuna_parallel.png", "optuna_slices.png"):
        assert (study_run / "plots" / name).stat().st_size > 1000, name


def test_diverged_trial_is_failed_and_study_finishes(ray_session, tmp_path):
    # Rule: a trial with an absurd learning rate is FAILED in the study, diverged in the table,
    # and the remaining trials still run to the end.
    space = write_space(tmp_path / "s.yaml", {"lr": {"distribution": "categorical", "choices": [0.05, 1.0e5]}},
                        epochs=2, batch_size=64)
    code = optuna_main(["--space", str(space), "--trials", "4", "--results-dir", str(tmp_path), "--name", "d",
                        "--sampler", "random", "--scheduler", "fifo", "--no-warm-start", *SMALL])
    assert code == 0
    trials = pd.read_csv(tmp_path / "d" / "trials.csv")
    study = load_study(tmp_path / "d")
    assert len(trials) == 4 and len(study.trials) == 4
    bad = trials[trials["lr"] == 1.0e5]
    assert len(bad) >= 1 and (bad["status"] == "diverged").all()
    failed = {t.user_attrs[RAY_ID] for t in study.trials if t.state.name == "FAIL"}
    assert failed == set(bad["trial_id"])
    assert (trials[trials["lr"] == 0.05]["status"] == "completed").all()


def test_multi_objective_writes_pareto_front(ray_session, tmp_path):
    # Rule: --objectives accuracy,params runs a Pareto search (no ASHA) and writes pareto.csv whose
    # rows are non-dominated in (accuracy up, parameters down).
    space = write_space(tmp_path / "s.yaml", {
        "lr": {"distribution": "loguniform", "low": 0.01, "high": 0.2},
        "n_layers": {"distribution": "int", "low": 1, "high": 2},
        "width": {"distribution": "int", "low": 8, "high": 64, "log": True},
    }, epochs=1, batch_size=64)
    code = optuna_main(["--space", str(space), "--trials", "4", "--results-dir", str(tmp_path), "--name", "m",
                        "--objectives", "accuracy,params", *SMALL])
    assert code == 0
    front = pd.read_csv(tmp_path / "m" / "pareto.csv")
    assert len(front) >= 1 and {"val_accuracy", "params"} <= set(front.columns)
    for _, a in front.iterrows():
        for _, b in front.iterrows():
            dominated = b["val_accuracy"] >= a["val_accuracy"] and b["params"] <= a["params"] and \
                (b["val_accuracy"] > a["val_accuracy"] or b["params"] < a["params"])
            assert not dominated
    trials = pd.read_csv(tmp_path / "m" / "trials.csv")
    assert (trials["status"] == "completed").all()  # no early stopping in a Pareto search
    assert len(load_study(tmp_path / "m").directions) == 2
    assert json.loads((tmp_path / "m" / "best.json").read_text())["search"] == "optuna"


def test_resume_adds_trials_to_a_finished_study(ray_session, tmp_path):
    # Rule: --resume --trials N on a finished study of M < N trials runs only the N - M missing ones:
    # the first M rows keep their epochs untouched, no configuration repeats, the study agrees.
    space = write_space(tmp_path / "s.yaml", {"lr": {"distribution": "loguniform", "low": 0.01, "high": 0.2}},
                        epochs=1, batch_size=64)
    args = ["--space", str(space), "--results-dir", str(tmp_path), "--name", "x", "--sampler", "random",
            "--scheduler", "fifo", *SMALL]
    assert optuna_main([*args, "--trials", "3"]) == 0
    first = pd.read_csv(tmp_path / "x" / "epochs.csv")
    assert optuna_main([*args, "--trials", "5", "--resume"]) == 0
    trials = pd.read_csv(tmp_path / "x" / "trials.csv")
    epochs = pd.read_csv(tmp_path / "x" / "epochs.csv")
    assert len(trials) == 5 and trials["trial_id"].is_unique and trials["lr"].is_unique
    kept = epochs[epochs["trial_id"].isin(first["trial_id"])].sort_values("trial_id", ignore_index=True)
    assert kept["timestamp"].tolist() == first.sort_values("trial_id", ignore_index=True)["timestamp"].tolist()
    study = load_study(tmp_path / "x")
    assert len(study.trials) == 5 and {t.user_attrs[RAY_ID] for t in study.trials} == set(trials["trial_id"])
    assert (tmp_path / "x" / "tune-2").is_dir()  # the added trials are a second Ray experiment
    # and a third call with the same --trials has nothing left to add
    assert optuna_main([*args, "--trials", "5", "--resume"]) == 0
    assert len(pd.read_csv(tmp_path / "x" / "trials.csv")) == 5 and not (tmp_path / "x" / "tune-3").exists()


def test_chunked_search_runs_several_experiments_on_one_study(ray_session, tmp_path):
    # Rule: --trials 5 --chunk-trials 2 runs tune/, tune-2/ and tune-3/ (2 + 2 + 1 trials) on one study:
    # every trial once, the warm start only as trial 0, and the tables and the study cover all of them.
    space = write_space(tmp_path / "s.yaml", {"lr": {"distribution": "loguniform", "low": 0.01, "high": 0.2},
                                              "batch_size": {"distribution": "categorical", "choices": [16, 64]}},
                        epochs=1)
    code = optuna_main(["--space", str(space), "--results-dir", str(tmp_path), "--name", "c", "--trials", "5",
                        "--chunk-trials", "2", "--scheduler", "fifo", *SMALL])
    assert code == 0
    out = tmp_path / "c"
    assert sorted(p.name for p in out.glob("tune*")) == ["tune", "tune-2", "tune-3"]
    trials = pd.read_csv(out / "trials.csv")
    study = load_study(out)
    assert len(trials) == 5 and trials["trial_id"].is_unique
    assert [t.number for t in study.trials] == [0, 1, 2, 3, 4]
    assert {t.user_attrs[RAY_ID] for t in study.trials} == set(trials["trial_id"])
    assert [(t.params["lr"], t.params["batch_size"]) == (0.1, 16) for t in study.trials].count(True) == 1
    assert json.loads((out / "search.json").read_text())["planned"] == 5


def test_study_in_a_storage_url(ray_session, tmp_path):
    # Rule: --storage URL keeps the study in that database (none in the folder), search.json records the
    # URL, and load_study finds the study there by the folder's name.
    url = f"sqlite:///{tmp_path / 'shared.db'}"
    space = write_space(tmp_path / "s.yaml", {"lr": {"distribution": "loguniform", "low": 0.01, "high": 0.2}},
                        epochs=1, batch_size=64)
    code = optuna_main(["--space", str(space), "--results-dir", str(tmp_path), "--name", "u", "--trials", "2",
                        "--storage", url, "--scheduler", "fifo", *SMALL])
    assert code == 0
    assert not (tmp_path / "u" / "study.log").exists()
    assert json.loads((tmp_path / "u" / "search.json").read_text())["search"]["storage"] == url
    assert optuna.get_all_study_names(url) == ["u"]
    assert len(load_study(tmp_path / "u").trials) == 2 == len(pd.read_csv(tmp_path / "u" / "trials.csv"))


def test_sync_trials_are_asked_as_slots_free_up(ray_session, tmp_path):
    # Rule: under sync halving, trials are asked as slots free up, not all at the start, so later
    # suggestions see results: at least 6 of 16 are asked after the first trial ends (before the fix,
    # none). With cohorts of 3 and 2 slots, the first trials end once the first cohort has reported
    # at rung 1; by then the cohort, the 2 slots and Ray's 2 pending ones are asked, and a few more as
    # timing allows (a trial of the next cohort may reach the rung first; 8 in all, seen here and in CI).
    space = write_space(tmp_path / "space.yaml", {"lr": {"distribution": "loguniform", "low": 0.001, "high": 0.3}},
                        epochs=3)
    code = optuna_main(["--space", str(space), "--trials", "16", "--suggest-batch", "3", "--scheduler", "sync",
                        "--grace-period", "1", "--reduction-factor", "3", "--results-dir", str(tmp_path),
                        "--name", "s", *SMALL])
    assert code == 0
    trials = load_study(tmp_path / "s").trials
    first_end = min(t.datetime_complete for t in trials if t.datetime_complete is not None)
    asked_after = sum(t.datetime_start > first_end for t in trials)
    assert len(trials) == 16 and asked_after >= 6


def test_the_warm_start_is_protected_from_the_rungs(ray_session, tmp_path):
    # Rule: the search hands sync halving trial 0 as protected (kept at every rung, tests/tuning/search/test_halving.py)
    # exactly when trial 0 is the warm start.
    from tuning.optuna import OptunaConfig, optuna_search
    from tuning.search.space import load_space

    space = load_space("optuna")
    for warm, protected in ((True, frozenset({0})), (False, frozenset())):
        out = tmp_path / f"w{warm}"
        out.mkdir()
        search = optuna_search(OptunaConfig(trials=4, warm_start=warm), space, space.base_config(), out)
        assert search.protected == protected


def test_timeout_with_sync_halving_keeps_what_finished(ray_session, tmp_path):
    # Rule: --timeout ends a sync-halving search at the deadline: exit 0, no trial ran all its epochs,
    # trials cut mid-way keep their epochs, none is stopped_early without an epoch (a trial asked but
    # not run is interrupted), and the best so far is retrained.
    space = write_space(tmp_path / "s.yaml", {"lr": {"distribution": "loguniform", "low": 0.01, "high": 0.3}},
                        epochs=5000, batch_size=64)  # no trial can end before the deadline
    r = call_cli("tuning.optuna", "--space", str(space), "--trials", "30", "--timeout", "30", "--subset", "1500",
                 "--min-rung-steps", "0", "--results-dir", str(tmp_path), "--name", "t")
    assert r.returncode == 0, r.stdout + r.stderr
    t = pd.read_csv(tmp_path / "t" / "trials.csv")
    assert t["epochs_run"].sum() > 0 and (t["epochs_run"] < 5000).all()
    assert not ((t["status"] == "stopped_early") & (t["epochs_run"] == 0)).any()
    assert (t.loc[t["epochs_run"] == 0, "status"] == "interrupted").all()
    assert json.loads((tmp_path / "t" / "test_report.json").read_text())["test_accuracy"]["mean"] > 0.5
