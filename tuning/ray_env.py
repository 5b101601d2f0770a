"""What Ray is told through its environment variables: console output, and which loggers it adds."""
from __future__ import annotations

import logging
import os

AUTO_LOGGERS = "TUNE_DISABLE_AUTO_CALLBACK_LOGGERS"  # "1": Ray adds none of its CSV, JSON, TensorBoard loggers


def no_json_logger() -> None:
    """Ray adds its JSON logger unless told not to; build_tuner passes its CSV logger instead.

    Why: at the end of every fit Ray reads each trial's result.json back through
    pandas.json_normalize, a fifth of the driver's CPU in a 300-trial Optuna search (py-spy); from
    progress.csv (pandas.read_csv) the same table costs a fraction of that, and the JSON lines are
    no longer written on every result. Tables and --resume read the epoch history saved with each
    checkpoint where Ray's file falls short (tuning/checkpoints.py).
    """
    os.environ[AUTO_LOGGERS] = "1"


def quiet_ray_env(show: bool) -> None:
    """Ray's console output is off unless --ray-output (our own bar reports progress).

    Ray saves its experiment state at its own pace (at most 5 % of the driver's time, every 10 s or
    more): each save rewrites every trial's state, so saving on every step grew as N². What a
    killed driver's state lacks, --resume reads from trials.jsonl (tuning/ledger.py) and from the
    trials' own checkpoints (tuning/checkpoints.py).
    """
    if not show:
        logging.getLogger("ray").setLevel(logging.ERROR)
        os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")
        os.environ.setdefault("TUNE_WARN_EXCESSIVE_EXPERIMENT_CHECKPOINT_SYNC_THRESHOLD_S", "0")
