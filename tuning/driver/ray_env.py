"""Starting or joining Ray, and what it is told through its environment variables: console output,
and which loggers it adds."""
from __future__ import annotations

import contextlib
import logging
import os
import signal
import socket
from typing import Any, Iterator

from common.errors import InputError

AUTO_LOGGERS = "TUNE_DISABLE_AUTO_CALLBACK_LOGGERS"  # "1": Ray adds none of its CSV, JSON, TensorBoard loggers
MAX_PENDING = "TUNE_MAX_PENDING_TRIALS_PG"  # trials Ray creates (asking the searcher) ahead of free slots
STATE_SAVE = "TUNE_GLOBAL_CHECKPOINT_S"  # seconds between Ray's saves of its experiment state ("auto": Ray's own)
STATE_SAVE_S = 60  # ours, unless the variable is set: see state_saves
QUIET = {"RAY_AIR_NEW_OUTPUT": "0", "TUNE_WARN_EXCESSIVE_EXPERIMENT_CHECKPOINT_SYNC_THRESHOLD_S": "0"}
"""Ray's console output off (quiet_ray_env), unless the user set them."""
SEARCH_VARIABLES = (AUTO_LOGGERS, MAX_PENDING, STATE_SAVE, *QUIET)
"""Every variable a search sets; search_environment puts them back."""


def no_json_logger() -> None:
    """Ray adds its JSON logger unless told not to; build_tuner passes its CSV logger instead.

    Why: one result file per trial instead of two, at no cost in driver CPU (benchmarks/README.md,
    Scale). Ray's ResultGrid reads progress.csv instead; tables and --resume read the epoch history
    saved with each checkpoint where Ray's file falls short (tuning/resume/checkpoints.py).
    """
    os.environ[AUTO_LOGGERS] = "1"


def pending_trials(n: int) -> None:
    """At most `n` trials asked ahead of a free slot (0: Ray's own choice), read when a fit starts.

    Why: Ray asks a searcher for as many trials ahead as its concurrency limit allows. Under sync
    halving that limit is the whole experiment (paused trials must not hold new ones back), so every
    trial was asked before any had ended, and TPE, with no result to learn from, sampled them all at
    random (benchmarks/README.md, Scale).
    """
    if n:
        os.environ[MAX_PENDING] = str(n)
    else:
        os.environ.pop(MAX_PENDING, None)


def state_saves() -> None:
    """Ray saves its experiment state at most every STATE_SAVE_S seconds (a user's own setting wins).

    Why: each save rewrites every changed trial's state and pickles the searcher, and Ray's "auto"
    aims at 5 % of the driver's time, a share of every trial's driver CPU (benchmarks/README.md,
    Scale); saving on every step grew as N². --resume does not need the state to be fresh: trials
    that ended after the last save are in trials.jsonl (tuning/resume/ledger.py), and trials started
    after it are handed out again with their parameters and go on from their own checkpoints
    (tuning/search/searcher.py, tuning/resume/checkpoints.py). --chunk-trials bounds a state to
    2,000 trials, so a save stays short of the period.
    """
    os.environ.setdefault(STATE_SAVE, str(STATE_SAVE_S))


def quiet_ray_env(show: bool) -> None:
    """Ray's console output is off unless --ray-output (our own bar reports progress)."""
    if not show:
        logging.getLogger("ray").setLevel(logging.ERROR)
        for name, value in QUIET.items():
            os.environ.setdefault(name, value)


@contextlib.contextmanager
def search_environment(ray_output: bool) -> Iterator[None]:
    """The environment variables of one search, put back as they were on exit (removed where they
    were unset), an exception included: a search run in-process (a test, a benchmark, a notebook)
    leaves its caller's environment as it found it.

    On entry: Ray's console output is quiet unless `ray_output` (quiet_ray_env, the "ray" logger's
    level included, which is not put back: ray.init sets it too), and no_json_logger and state_saves.
    pending_trials depends on the search (its max_pending) and is set when the tuner is built
    (tuning/driver/runner.py); its variable is put back too, as is any of SEARCH_VARIABLES set inside.
    """
    before = {name: os.environ.get(name) for name in SEARCH_VARIABLES}
    try:
        quiet_ray_env(ray_output)
        no_json_logger()
        state_saves()
        yield
    finally:
        for name, value in before.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def check_address(address: str, timeout: float = 5.0) -> None:
    """Fail fast on an unreachable HOST:PORT instead of waiting on Ray's long retries."""
    if address in ("auto", "local") or address.startswith("ray://"):
        return
    host, _, port = address.rpartition(":")
    try:
        with socket.create_connection((host or "127.0.0.1", int(port)), timeout=timeout):
            pass
    except (OSError, ValueError) as e:
        raise InputError(f"--address {address}: cannot reach a Ray head there ({e})") from None


def init_ray(address: str | None, ray_output: bool = False, gpus_per_trial: float = 0) -> None:
    """Join the cluster at --address, or start a local Ray on this machine's CPUs/GPUs."""
    import ray

    if ray.is_initialized():
        return
    kw: dict[str, Any] = dict(include_dashboard=False, log_to_driver=ray_output,
                              logging_level=logging.INFO if ray_output else logging.ERROR)
    if address:  # run_search has checked that it is reachable
        try:
            ray.init(address=address, **kw)
        except (ConnectionError, RuntimeError, ValueError) as e:
            raise InputError(f"--address {address}: cannot join the Ray cluster ({str(e).splitlines()[0]})") from None
    else:
        # Ray's processes inherit this thread's signal mask: with SIGTERM blocked while they start, a
        # SIGTERM sent to the whole process group (kill -TERM -PGID, a batch system) reaches only
        # this driver, which stops the search cleanly instead of losing its Ray under it.
        # (Ray blocks SIGINT in them itself.) Ray's shutdown still ends them (SIGKILL after 1 s).
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM})
        try:
            ray.init(**kw)
        finally:
            signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGTERM})
    gpus = ray.cluster_resources().get("GPU", 0)
    if gpus_per_trial > 0 and gpus == 0:
        raise InputError(f"--gpus-per-trial {gpus_per_trial}: no GPU in this Ray cluster")
