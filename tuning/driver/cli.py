"""The shared path of `python -m tuning.grid` and `python -m tuning.optuna`:

flags -> search space -> data -> Ray Tune -> trial tables -> retrain and test -> report.
Everything is written under results/<name>/; a crash or Ctrl-C loses nothing that --resume needs.
"""
from __future__ import annotations

import argparse
import dataclasses
import logging
import shutil
import signal
import sys
import time
from pathlib import Path
from typing import Any, Callable

from tqdm import tqdm

from common.folders import STATE_FINISHED, STATE_INTERRUPTED, STATE_RUNNING
from common.interrupts import Interrupted, StopOnSignal
from common.atomic import atomic_write, write_json
from common.cli import ArgumentParser, add_dataclass_args, from_args
from common.errors import InputError
from common.outputs import check_output_folder
from data.source import DataConfig, load_splits
from model.config import TrainConfig
from tuning.search.budget import first_rung, rung_note
from tuning.search.limits import fitting, largest_batch
from common.folders import SEARCH_MARKER
from tuning.driver.preflight import claim_folder, results_folder
from tuning.driver.bar import TrialBar, as_callback
from tuning.results.summary import finished_count
from tuning.results.reading import best_trial, result_trial_id, tables, write_best, write_tables
from tuning.driver.runner import (EXPERIMENT, Search, SearchConfig, build_tuner, experiments, scheduler_name,
                           finished_results, storage_dir, unfinished_trials)
from tuning.driver.ray_env import check_address, init_ray, quiet_ray_env
from tuning.search.space import SearchSpace, apply_params, load_space

log = logging.getLogger(__name__)


def make_parser(prog: str, doc: str, config_cls: type[SearchConfig]) -> argparse.ArgumentParser:
    """Flags of the search config (grid's or Optuna's) and of the data source."""
    p = ArgumentParser(prog=prog, description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_dataclass_args(p, config_cls, "search")
    add_dataclass_args(p, DataConfig, "data", skip=("split_seed",))
    return p


def run_search(kind: str, argv: list[str] | None, parser: argparse.ArgumentParser,
               make_search: Callable[[SearchConfig, SearchSpace, TrainConfig, Path], Search],
               after: Callable[["Finished"], None] | None = None,
               defaults: SearchConfig | None = None, extendable: bool = False,
               check: Callable[[Any, Path], None] | None = None) -> int:
    """Parse flags, run the search, write tables, retrain the best, print the summary.

    With --resume the interrupted Ray experiment is finished first; a search that is `extendable`
    (Optuna's, counted in trials) then gets the trials still missing from --trials in a new one.
    Every input is checked before anything is written; SIGINT/SIGTERM leave partial tables marked
    interrupted (exit 130/143) that --resume continues.
    """
    args = parser.parse_args(argv)
    defaults = defaults or SearchConfig(space=kind)
    cfg = from_args(type(defaults), args, base=defaults).validate()
    dcfg = dataclasses.replace(from_args(DataConfig, args), split_seed=cfg.seed)
    space = load_space(cfg.space)
    threads = max(1, int(cfg.cpus_per_trial))
    base = space.base_config(**({"epochs": cfg.epochs} if cfg.epochs else {}), seed=cfg.seed, threads=threads)
    if cfg.deterministic and base.precision == "auto":  # auto times fp32 against bf16: timing decides
        base = dataclasses.replace(base, precision="fp32")
    base.validate()
    out = results_folder(cfg.results_dir, kind if cfg.name is None else cfg.name)
    files, folders = dcfg.inputs()
    check_output_folder("--results-dir", cfg.results_dir, out, files, folders)
    if cfg.storage_path:  # Ray's trial folders
        check_output_folder("--storage-path", cfg.storage_path, Path(cfg.storage_path).expanduser(), files, folders)
    if cfg.address:
        check_address(cfg.address)
    stop = StopOnSignal().install()
    t0 = time.perf_counter()
    # the data is read once here; trials get it through Ray's object store
    def start_ray() -> None:
        quiet_ray_env(cfg.ray_output)
        init_ray(cfg.address, cfg.ray_output, cfg.gpus_per_trial)
        stop.install()  # ray.init put its own SIGTERM handler in place

    claim, earlier, splits = claim_folder(cfg, kind, out, lambda: fitting(load_splits(dcfg), space, base), check,
                                          start=start_ray)
    try:
        grace = first_rung(cfg.grace_period, len(splits.train_y), largest_batch(space, base), cfg.min_rung_steps)
        if grace != cfg.grace_period and scheduler_name(cfg) != "fifo":
            print(rung_note(grace, len(splits.train_y), largest_batch(space, base), base.epochs, cfg.min_rung_steps))
            cfg = dataclasses.replace(cfg, grace_period=grace)
        info = {"kind": kind, "state": STATE_RUNNING, "search": dataclasses.asdict(cfg), "data": dataclasses.asdict(dcfg),
                "space": {"path": space.path, "fixed": space.fixed, "params": space.names,
                          "retrain": {"stretch": space.stretch}}, "base_config": base.to_dict()}
        marker = (out / SEARCH_MARKER).read_bytes() if (out / SEARCH_MARKER).is_file() else None
        write_json(out / SEARCH_MARKER, info)
        try:
            search = make_search(cfg, space, base, out)
        except InputError:
            if claim.fresh:  # nothing ran: leave no folder behind for the next run to trip over
                claim.release()
                shutil.rmtree(out, ignore_errors=True)
            elif marker is not None:  # a refused --resume: search.json as it was
                atomic_write(out / SEARCH_MARKER, lambda p: p.write_bytes(marker))
            raise
        total = search.planned or search.num_samples
        info["planned"] = total
        write_json(out / SEARCH_MARKER, info)
        bar = TrialBar(total, base.epochs)
        results = [r for path in earlier[:-1] for r in finished_results(path)]  # earlier top-ups, all finished
        bar.progress.done_before = len(results)
        tuner = build_tuner(cfg, out, splits, base, search, restore=earlier[-1] if earlier else None,
                            callbacks=[as_callback(bar)])
        print(f"{kind} search '{out.name}': {total} trials of up to {base.epochs} epochs, "
              f"scheduler {'none' if search.pareto else scheduler_name(cfg)}"
              f"{', deterministic' if cfg.deterministic else ''}, "
              f"{cfg.cpus_per_trial:g} CPU / {cfg.gpus_per_trial:g} GPU per trial, data {splits.sizes()}")
        fit_start, fit_cpu = time.perf_counter(), time.process_time()
        unfinished: set[str] = set()
        try:
            with stop.tune_loop():
                grid = tuner.fit()
            results += list(grid)
            count, asked = max(len(earlier), 1), None if earlier else search.num_samples
            while extendable and stop.signum is None and (nxt := next_chunk(
                    cfg, total - len(results), len(grid), asked, time.perf_counter() - fit_start)) is not None:
                bar.set_done(len(results))
                more = make_search(nxt, space, base, out)
                count, asked = count + 1, more.num_samples
                name = f"{EXPERIMENT}-{count}"
                print(f"adding {more.num_samples} trial(s) to the {len(results)} already run (Ray experiment {name}/)")
                tuner = build_tuner(cfg, out, splits, base, more, experiment=name, callbacks=[as_callback(bar)])
                with stop.tune_loop():
                    grid = tuner.fit()
                results += list(grid)
            if stop.signum is not None:
                unfinished = unfinished_trials(Path(grid.experiment_path))
        finally:
            bar.close()
        fit_s, fit_cpu_s = time.perf_counter() - fit_start, time.process_time() - fit_cpu
        trials, epochs = tables(results, base.epochs, unfinished)
        write_tables(out, trials, epochs)
        search_s = time.perf_counter() - t0
        if stop.signum is not None:
            return interrupted(out, info, trials, stop.signum)
        try:
            if after is not None:
                after(Finished(out, cfg, dcfg, base, results, trials, space))
            best = best_trial(trials)
            if best is None:
                info["state"] = STATE_FINISHED
                write_json(out / SEARCH_MARKER, info)
                print(f"no trial finished without diverging or failing; tables in {out}/")
                return 1
            best_cfg = apply_params(base, params_of(results, best["trial_id"]))
            best_cfg = dataclasses.replace(best_cfg, epochs=int(best["epochs_run"]))
            write_best(out, best, best_cfg.to_dict(), kind, out.name)
            if cfg.retrain:
                retrain(out, best_cfg, dcfg, cfg, space, others=next_best(results, trials, base, cfg.ensemble))
        except Interrupted as e:  # during the retrain: --resume redoes it (the trials are all done)
            (out / "best.json").unlink(missing_ok=True)
            return interrupted(out, info, trials, e.signum)
        info["state"] = STATE_FINISHED
        info["wall_s"] = {"fit": fit_s, "search": search_s, "all": time.perf_counter() - t0}
        info["driver_cpu_s"] = {"fit": fit_cpu_s}  # this process's CPU while Ray Tune ran (benchmarks/scale.py)
        write_json(out / SEARCH_MARKER, info)
        finish(out, cfg, info["wall_s"])
        return 0

    finally:
        claim.release()  # in-process callers (tests, notebooks) may run the same name again

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


def interrupted(out: Path, info: dict, trials: Any, signum: int) -> int:
    """search.json says interrupted; no best.json or retrain; one line says how to go on."""
    info["state"] = STATE_INTERRUPTED
    info["signal"] = signal.Signals(signum).name
    write_json(out / SEARCH_MARKER, info)
    done = finished_count(trials)
    print(f"interrupted ({info['signal']}): {done} of {info['planned']} trials finished; partial tables in "
          f"{out}/; run the same command with --resume to finish the search", file=sys.stderr)
    return 128 + signum


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
    others = [space.retrain_config(c) for c in others or []] if cfg.ensemble_of == "configs" else []
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


def next_best(results: Any, trials: Any, base: TrainConfig, k: int) -> list[TrainConfig]:
    """The configurations of the 2nd to k-th best trials, each at the epochs it ran."""
    from tuning.results.tables import ranked

    return [dataclasses.replace(apply_params(base, params_of(results, t["trial_id"])), epochs=int(t["epochs_run"]))
            for _, t in ranked(trials).iloc[1:max(k, 1)].iterrows()]


def finish(out: Path, cfg: SearchConfig, wall: dict[str, float]) -> None:
    from tuning.results.figures import redraw
    from tuning.results.summary import summary_text
    from tuning.results.tables import load_tables

    t = load_tables(out)
    paths = redraw(out, t)
    print(summary_text(t))
    print(f"\nwall time: Ray Tune {wall['fit']:.0f} s, search {wall['search']:.0f} s (with data and tables), "
          f"all {wall['all']:.0f} s")
    print(f"wrote {out}/: trials.csv trials.parquet epochs.csv best.json"
          + (" test_report.json model.pt model.json" if (out / "test_report.json").exists() else "")
          + (" committee.pt committee.json" if (out / "committee.pt").exists() else "")
          + f" plots/ ({len(paths)} plots)")
    print(f"TensorBoard: tensorboard --logdir {storage_dir(cfg, out)}")
