"""`python -m benchmarks.suggest STUDY_LOG`: what one TPE suggestion costs as a study grows.

From a search's study (`results/<name>/study.log`), for each n in --at: an in-memory study gets the
first n finished trials, --running trials are asked and left running (the constant liar counts
them, as in a search with that many slots busy), and --repeats more asks are timed. Each ask goes
through the search's own sampler (tuning.search.study.make_sampler: multivariate, grouped TPE, bounded
past tuning.search.sampler.THRESHOLD finished trials) and its define-by-run space, as in
`tuning.optuna`. The driver pays one such ask per trial, inside Ray Tune's loop. `--ab` also
times each count with Optuna's own log Φ (one element at a time in Python) instead of SciPy's
(tuning.search.sampler.vectorised_log_ndtr), in the same process. Run it on a quiet machine; write `lscpu`'s model beside it.
"""
from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import optuna
from optuna.trial import FrozenTrial, TrialState

from tuning.compat import restore_log_ndtr
from tuning.search.space import DefineByRun, load_space
from tuning.search.study import journal_storage, make_sampler


def finished_trials(path: Path) -> list[FrozenTrial]:
    """The study's completed and pruned trials, in trial order."""
    study = optuna.load_study(study_name=None, storage=journal_storage(path))
    return [t for t in study.trials if t.state in (TrialState.COMPLETE, TrialState.PRUNED)]


def ask_ms(trials: list[FrozenTrial], n: int, space: DefineByRun, running: int, repeats: int, seed: int,
           optunas_log_ndtr: bool = False) -> float:
    """Median milliseconds of one ask (sampling every parameter) with the first n trials finished."""
    study = optuna.create_study(direction="maximize", sampler=make_sampler("tpe", seed, False))
    if optunas_log_ndtr:
        restore_log_ndtr()
    study.add_trials(trials[:n])
    times = []
    for i in range(running + repeats):
        t0 = time.perf_counter()
        space(study.ask())
        if i >= running:
            times.append(1000 * (time.perf_counter() - t0))
    return statistics.median(times)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("study", type=Path, help="a search's study.log")
    p.add_argument("--space", default="optuna", help="the space the search ran (a name or a YAML file)")
    p.add_argument("--at", default="100,300,1000", help="comma-separated finished-trial counts")
    p.add_argument("--running", type=int, default=8, help="trials left running while timing (the busy slots)")
    p.add_argument("--repeats", type=int, default=9, help="asks timed at each count")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--ab", action="store_true", help="also time each count with Optuna's own log Φ")
    args = p.parse_args()
    if not args.study.is_file():  # Optuna's journal backend would create an empty one
        p.error(f"{args.study}: no such study file")
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    trials = finished_trials(args.study)
    space = DefineByRun(load_space(args.space))
    for n in (int(a) for a in args.at.split(",")):
        if n > len(trials):
            print(f"{n} finished trials: the study has only {len(trials)}")
            continue
        for own in ([True, False] if args.ab else [False]):
            ms = ask_ms(trials, n, space, args.running, args.repeats, args.seed, own)
            print(f"{n} finished trials, {args.running} running, {'Optuna' if own else 'SciPy'}'s log Φ: "
                  f"{ms:.1f} ms per ask", flush=True)


if __name__ == "__main__":
    main()
