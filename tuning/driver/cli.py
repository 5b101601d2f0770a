"""The one path of `python -m tuning.grid` and `python -m tuning.optuna`:

prepare (flags, checks, folder, data, Ray) -> fit (Ray Tune) -> tables -> the kind's own step ->
best -> retrain (and committee) -> report. A grid and an Optuna search differ only in their
`SearchKind`. Everything is written under results/<name>/; a crash or Ctrl-C loses nothing that
--resume needs.
"""
from __future__ import annotations

import argparse
import dataclasses
import shutil
import signal
import sys
import time
from pathlib import Path
from typing import Any, Callable

from tqdm import tqdm

from common.atomic import atomic_write, write_json
from common.cli import ArgumentParser, add_dataclass_args, from_args
from common.errors import InputError
from common.folders import SEARCH_MARKER, STATE_FINISHED, STATE_INTERRUPTED, STATE_RUNNING, Claim
from common.interrupts import Interrupted, StopOnSignal
from common.outputs import check_output_folder
from data.source import DataConfig, load_splits
from model.config import TrainConfig
from tuning.driver.bar import TrialBar, as_callback
from tuning.driver.preflight import claim_folder, results_folder
from tuning.driver.ray_env import check_address, init_ray, search_environment
from tuning.driver.runner import (EXPERIMENT, Search, SearchConfig, build_tuner, finished_results, scheduler_name,
                                  storage_dir, unfinished_trials)
from tuning.results.reading import best_trial, result_trial_id, tables, write_best, write_tables
from tuning.results.summary import finished_count
from tuning.search.budget import first_rung, rung_note
from tuning.search.limits import fitting, largest_batch
from tuning.search.space import SearchSpace, apply_params, load_space


@dataclasses.dataclass
class Finished:
    """What a finished search hands to its kind's own step after the tables (Optuna: study upkeep, Pareto)."""

    out: Path
    cfg: SearchConfig
    data: DataConfig
    base: TrainConfig
    results: list  # Ray `Result`s of every experiment of the search
    trials: Any
    space: SearchSpace


@dataclasses.dataclass(frozen=True)
class SearchKind:
    """What makes a search a grid or an Optuna one; the driver below is the same for both."""

    name: str
    """Its default results folder and search.json's `kind`."""
    doc: str
    """--help's text (the command module's docstring)."""
    defaults: SearchConfig
    """Its flags (the dataclass's fields) and their defaults."""
    build: Callable[[SearchConfig, SearchSpace, TrainConfig, Path], Search]
    """The Search of one Ray experiment (search algorithm, trial count, halving cohort)."""
    check: Callable[[Any, Path], None] | None = None
    """Checks of its own inputs, made before anything is written (Optuna: the study's storage)."""
    after: Callable[[Finished], None] | None = None
    """Its step after the tables, before the best is retrained."""
    extendable: bool = False
    """Counted in trials: a search that ran fewer than planned (--resume, chunks) gets the rest in
    further Ray experiments."""


@dataclasses.dataclass
class Prepared:
    """A search ready to fit: its settings, its claimed folder, its data and its search.json."""

    kind: SearchKind
    cfg: SearchConfig
    data: DataConfig
    space: SearchSpace
    base: TrainConfig
    out: Path
    claim: Claim
    earlier: list[Path]  # on --resume: the Ray experiments already in the folder
    splits: Any
    search: Search
    info: dict  # search.json
    stop: StopOnSignal
    t0: float  # when the command started (search.json's wall_s)


@dataclasses.dataclass
class Fitted:
    """What Ray Tune's fit left: every trial's `Result` and what it cost."""

    results: list  # of every experiment of the search, earlier ones' too
    unfinished: set[str]  # trials an interrupt cut short (their rows say interrupted)
    fit_s: float  # wall seconds inside Tuner.fit
    fit_cpu_s: float  # this process's CPU seconds meanwhile (benchmarks/scale.py)


def make_parser(kind: SearchKind) -> argparse.ArgumentParser:
    """Flags of the search config (grid's or Optuna's) and of the data source."""
    p = ArgumentParser(prog=f"python -m tuning.{kind.name}", description=kind.doc,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    add_dataclass_args(p, type(kind.defaults), "search")
    add_dataclass_args(p, DataConfig, "data", skip=("split_seed",))
    return p


def run_search(kind: SearchKind, argv: list[str] | None = None) -> int:
    """The search, its tables, the best trial retrained and tested, the report; the exit status.

    Every input is checked before anything is written. SIGINT/SIGTERM leave partial tables marked
    interrupted (exit 130/143), which --resume continues.
    """
    cfg, dcfg, space, base = settings(kind, argv)
    with StopOnSignal() as stop, search_environment(cfg.ray_output):  # both put back as they were
        run = prepare(kind, cfg, dcfg, space, base, stop)
        try:
            fitted = fit(run)  # the first signal ends Ray Tune's loop with its state saved
            trials = write_trial_tables(run, fitted)
            search_s = time.perf_counter() - run.t0
            if stop.signum is not None:  # --resume finishes the trials
                return interrupted(run, trials, stop.signum)
            try:
                if kind.after is not None:
                    kind.after(Finished(run.out, run.cfg, run.data, run.base, fitted.results, trials, run.space))
                best = best_trial(trials)
                if best is None:
                    return no_best(run)
                best_cfg = write_best_trial(run, fitted.results, best)
                if run.cfg.retrain:
                    retrain(run.out, best_cfg, run.data, run.cfg, run.space,
                            others=next_best(fitted.results, trials, run.base, run.cfg))
            except Interrupted as e:  # the trials are all done: --resume redoes what follows them
                (run.out / "best.json").unlink(missing_ok=True)
                return interrupted(run, trials, e.signum)
            return report(run, fitted, search_s)
        finally:
            run.claim.release()  # in-process callers (tests, notebooks) may run the same name again


def settings(kind: SearchKind, argv: list[str] | None) -> tuple[SearchConfig, DataConfig, SearchSpace, TrainConfig]:
    """The flags, checked: the search's and the data's configs, the space, and the trials' base config."""
    args = make_parser(kind).parse_args(argv)
    cfg = from_args(type(kind.defaults), args, base=kind.defaults).validate()
    dcfg = dataclasses.replace(from_args(DataConfig, args), split_seed=cfg.seed)
    space = load_space(cfg.space)
    threads = max(1, int(cfg.cpus_per_trial))
    base = space.base_config(**({"epochs": cfg.epochs} if cfg.epochs else {}), seed=cfg.seed, threads=threads)
    if cfg.deterministic and base.precision == "auto":  # auto times fp32 against bf16: timing decides
        base = dataclasses.replace(base, precision="fp32")
    base.validate()
    return cfg, dcfg, space, base


def prepare(kind: SearchKind, cfg: SearchConfig, dcfg: DataConfig, space: SearchSpace, base: TrainConfig,
            stop: StopOnSignal) -> Prepared:
    """Check every input, then claim the folder, load the data (read once: trials get it through Ray's
    object store), start Ray, build the Search and write search.json."""
    t0 = time.perf_counter()
    out = results_folder(cfg.results_dir, kind.name if cfg.name is None else cfg.name)
    files, folders = dcfg.inputs()
    check_output_folder("--results-dir", cfg.results_dir, out, files, folders)
    if cfg.storage_path:  # Ray's trial folders
        check_output_folder("--storage-path", cfg.storage_path, Path(cfg.storage_path).expanduser(), files, folders)
    if cfg.address:
        check_address(cfg.address)

    def start_ray() -> None:
        init_ray(cfg.address, cfg.ray_output, cfg.gpus_per_trial)
        stop.install()  # ray.init put its own SIGTERM handler in place

    claim, earlier, splits = claim_folder(cfg, kind.name, out, lambda: fitting(load_splits(dcfg), space, base),
                                          kind.check, start=start_ray)
    try:
        cfg = with_data_rungs(cfg, space, base, len(splits.train_y))
        info = {"kind": kind.name, "state": STATE_RUNNING, "search": dataclasses.asdict(cfg),
                "data": dataclasses.asdict(dcfg), "space": {"path": space.path, "fixed": space.fixed,
                "params": space.names, "retrain": {"stretch": space.stretch}}, "base_config": base.to_dict()}
        search = build_search(kind, cfg, space, base, out, claim, info)
        info["planned"] = search.planned or search.num_samples
        write_json(out / SEARCH_MARKER, info)
    except BaseException:
        claim.release()
        raise
    return Prepared(kind, cfg, dcfg, space, base, out, claim, earlier, splits, search, info, stop, t0)


def with_data_rungs(cfg: SearchConfig, space: SearchSpace, base: TrainConfig, train_images: int) -> SearchConfig:
    """`cfg` with its first rung moved as late as a small data set needs (tuning/search/budget.py), said in one line."""
    batch = largest_batch(space, base)
    grace = first_rung(cfg.grace_period, train_images, batch, cfg.min_rung_steps)
    if grace == cfg.grace_period or scheduler_name(cfg) == "fifo":
        return cfg
    print(rung_note(grace, train_images, batch, base.epochs, cfg.min_rung_steps))
    return dataclasses.replace(cfg, grace_period=grace)


def build_search(kind: SearchKind, cfg: SearchConfig, space: SearchSpace, base: TrainConfig, out: Path,
                 claim: Claim, info: dict) -> Search:
    """The kind's Search, with search.json written first; a refusal leaves the disk as it was: a new
    folder removed, a refused --resume's search.json put back."""
    marker = (out / SEARCH_MARKER).read_bytes() if (out / SEARCH_MARKER).is_file() else None
    write_json(out / SEARCH_MARKER, info)
    try:
        return kind.build(cfg, space, base, out)
    except InputError:
        if claim.fresh:  # nothing ran: leave no folder behind for the next run to trip over
            claim.release()
            shutil.rmtree(out, ignore_errors=True)
        elif marker is not None:
            atomic_write(out / SEARCH_MARKER, lambda p: p.write_bytes(marker))
        raise


def fit(run: Prepared) -> Fitted:
    """Ray Tune's run of the search (on --resume, the rest of it).

    A search counted in trials that ran fewer than planned gets the rest in a further experiment
    (tune-2/, ...): after a --resume, or when --trials is larger than --chunk-trials.
    """
    cfg, search, stop = run.cfg, run.search, run.stop
    total = run.info["planned"]
    bar = TrialBar(total, run.base.epochs)
    results = [r for path in run.earlier[:-1] for r in finished_results(path)]  # earlier top-ups, all finished
    bar.progress.done_before = len(results)
    tuner = build_tuner(cfg, run.out, run.splits, run.base, search,
                        restore=run.earlier[-1] if run.earlier else None, callbacks=[as_callback(bar)])
    print(f"{run.kind.name} search '{run.out.name}': {total} trials of up to {run.base.epochs} epochs, "
          f"scheduler {'none' if search.pareto else scheduler_name(cfg)}{', deterministic' if cfg.deterministic else ''}, "
          f"{cfg.cpus_per_trial:g} CPU / {cfg.gpus_per_trial:g} GPU per trial, data {run.splits.sizes()}")
    start, cpu = time.perf_counter(), time.process_time()
    count, asked = max(len(run.earlier), 1), None if run.earlier else search.num_samples
    try:
        while True:
            with stop.tune_loop():
                grid = tuner.fit()
            results += list(grid)
            if not run.kind.extendable or stop.signum is not None or (nxt := next_chunk(
                    cfg, total - len(results), len(grid), asked, time.perf_counter() - start)) is None:
                break
            bar.set_done(len(results))
            more = run.kind.build(nxt, run.space, run.base, run.out)
            count, asked = count + 1, more.num_samples
            name = f"{EXPERIMENT}-{count}"
            print(f"adding {more.num_samples} trial(s) to the {len(results)} already run (Ray experiment {name}/)")
            tuner = build_tuner(cfg, run.out, run.splits, run.base, more, experiment=name,
                                callbacks=[as_callback(bar)])
    finally:
        bar.close()
    unfinished = unfinished_trials(Path(grid.experiment_path)) if stop.signum is not None else set()
    return Fitted(results, unfinished, time.perf_counter() - start, time.process_time() - cpu)


def write_trial_tables(run: Prepared, fitted: Fitted) -> Any:
    """trials.csv/.parquet and epochs.csv of every trial (partial ones marked, on an interrupt)."""
    trials, epochs = tables(fitted.results, run.base.epochs, fitted.unfinished)
    write_tables(run.out, trials, epochs)
    return trials


def write_best_trial(run: Prepared, results: list, best: Any) -> TrainConfig:
    """best.json, and the best trial's configuration at the epochs it ran."""
    best_cfg = apply_params(run.base, params_of(results, best["trial_id"]))
    best_cfg = dataclasses.replace(best_cfg, epochs=int(best["epochs_run"]))
    write_best(run.out, best, best_cfg.to_dict(), run.kind.name, run.out.name)
    return best_cfg


def next_chunk(cfg: SearchConfig, left: int, ran: int, asked: int | None, elapsed_s: float) -> SearchConfig | None:
    """The flags of the next Ray experiment of a search counted in trials, or None when it is done.

    More trials run when some are missing and the last experiment ran all it was asked (`asked`;
    None: a restored one, whose plan --resume extends), within what --timeout leaves.
    """
    timeout = getattr(cfg, "timeout", None)
    if left <= 0 or (asked is not None and ran < asked) or (timeout is not None and elapsed_s >= timeout):
        return None
    more = {"trials": left, "overwrite": False}  # (a later experiment adds to the study; it never replaces it)
    return dataclasses.replace(cfg, **more, **({} if timeout is None else {"timeout": timeout - elapsed_s}))


def interrupted(run: Prepared, trials: Any, signum: int) -> int:
    """search.json says interrupted; no best.json or retrain; one line says how to go on."""
    (run.out / "best.json").unlink(missing_ok=True)
    run.info["state"] = STATE_INTERRUPTED
    run.info["signal"] = signal.Signals(signum).name
    write_json(run.out / SEARCH_MARKER, run.info)
    print(f"interrupted ({run.info['signal']}): {finished_count(trials)} of {run.info['planned']} trials finished; "
          f"partial tables in {run.out}/; run the same command with --resume to finish the search", file=sys.stderr)
    return 128 + signum


def no_best(run: Prepared) -> int:
    """Every trial diverged or failed: the search is finished, with its tables and no retrain."""
    run.info["state"] = STATE_FINISHED
    write_json(run.out / SEARCH_MARKER, run.info)
    print(f"no trial finished without diverging or failing; tables in {run.out}/")
    return 1


def params_of(results: Any, trial_id: str) -> dict:
    for r in results:
        if result_trial_id(r) == trial_id:
            return dict(r.config)
    raise RuntimeError(f"trial {trial_id} not in the ResultGrid")


def retrain(out: Path, best_cfg: Any, dcfg: DataConfig, cfg: SearchConfig, space: SearchSpace,
            suffix: str = "", others: list[TrainConfig] | None = None) -> dict:
    """The best trial's configuration, as the space's `retrain` setting says, trained and tested per seed
    (and with --ensemble, the committee: `others` are the next-best trials' configurations)."""
    from model.card import save as save_model, save_committee
    from tuning.driver.retrain import retrain_and_test

    trial_epochs = best_cfg.epochs
    best_cfg = space.retrain_config(best_cfg)
    others = [space.retrain_config(c) for c in others or []]
    if cfg.ensemble_of == "configs" and cfg.ensemble > 1 and len(others) < cfg.ensemble - 1:
        print(f"--ensemble {cfg.ensemble}: the search has {len(others) + 1} usable trial(s); the committee has "
              f"{len(others) + 1} net(s)")
    n_seeds = max(cfg.retrain_seeds, cfg.ensemble if cfg.ensemble_of == "seeds" else 1)
    seeds = [cfg.seed + k for k in range(n_seeds)]
    bar = tqdm(total=len(seeds) * best_cfg.epochs + sum(c.epochs for c in others), desc="retrain best", unit="epoch")

    def progress(phase: str, done: int, total: int) -> None:
        bar.set_postfix_str(phase)
        bar.update(done - bar.n)

    try:
        report, run, card, members = retrain_and_test(best_cfg, dcfg, seeds, threads=0, progress=progress,
                                                      ensemble=cfg.ensemble, others=others)
    finally:
        bar.close()
    report["retrain"] = {"stretch": space.stretch, "trial_epochs": trial_epochs, "epochs": best_cfg.epochs}
    save_model(out, run.model, card, stem=f"model{suffix}")
    if members:
        save_committee(out, members, card, stem=f"committee{suffix}")
    write_json(out / f"test_report{suffix}.json", report)
    return report


def next_best(results: Any, trials: Any, base: TrainConfig, cfg: SearchConfig) -> list[TrainConfig]:
    """With --ensemble-of configs, the configurations of the 2nd to K-th best trials, each at the epochs
    it ran; none otherwise."""
    from tuning.results.tables import ranked

    if cfg.ensemble_of != "configs":
        return []
    return [dataclasses.replace(apply_params(base, params_of(results, t["trial_id"])), epochs=int(t["epochs_run"]))
            for _, t in ranked(trials).iloc[1:max(cfg.ensemble, 1)].iterrows()]


def report(run: Prepared, fitted: Fitted, search_s: float) -> int:
    """search.json finished with its wall times; the plots, the summary and the list of files."""
    from tuning.results.figures import redraw
    from tuning.results.summary import summary_text
    from tuning.results.tables import load_tables

    out, info = run.out, run.info
    info["state"] = STATE_FINISHED
    wall = {"fit": fitted.fit_s, "search": search_s, "all": time.perf_counter() - run.t0}
    info["wall_s"] = wall
    info["driver_cpu_s"] = {"fit": fitted.fit_cpu_s}
    write_json(out / SEARCH_MARKER, info)
    t = load_tables(out)
    paths = redraw(out, t)
    print(summary_text(t))
    print(f"\nwall time: Ray Tune {wall['fit']:.0f} s, search {wall['search']:.0f} s (with data and tables), "
          f"all {wall['all']:.0f} s")
    print(f"wrote {out}/: trials.csv trials.parquet epochs.csv best.json"
          + (" test_report.json model.pt model.json" if (out / "test_report.json").exists() else "")
          + (" committee.pt committee.json" if (out / "committee.pt").exists() else "")
          + f" plots/ ({len(paths)} plots)")
    print(f"TensorBoard: tensorboard --logdir {storage_dir(run.cfg, out)}")
    return 0
