"""Shared fixtures: the real MNIST loaded once per session, and small slices of it."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session", autouse=True)
def image_cache(tmp_path_factory) -> Path:
    """Decoded image folders are cached here, never in the user's ~/.cache (subprocesses inherit it)."""
    from data.images import CACHE_ENV

    folder = tmp_path_factory.mktemp("image-cache")
    os.environ[CACHE_ENV] = str(folder)
    return folder


@pytest.fixture(scope="session")
def mnist_arrays():
    """(train images, labels, test images, labels) of the packaged MNIST, as its IDX files hold them."""
    from data.idx import find_idx, read_idx
    from data.source import PACKAGED_DIR, TEST_IMAGES, TEST_LABELS, TRAIN_IMAGES, TRAIN_LABELS

    return tuple(read_idx(find_idx(PACKAGED_DIR, n)) for n in (TRAIN_IMAGES, TRAIN_LABELS, TEST_IMAGES, TEST_LABELS))


@pytest.fixture(scope="session")
def small_splits():
    """A stratified 2,000-image slice split 80/20: fast enough for real training in tests."""
    from data.source import DataConfig, load_splits

    return load_splits(DataConfig(subset=2000))


def run_cli(*args: str, cwd: Path | None = None, timeout: float = 300) -> subprocess.CompletedProcess:
    """Run `python -m ...` as a user would, from the repo root unless told."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "TQDM_DISABLE": "1"}
    return subprocess.run([sys.executable, "-m", *args], cwd=cwd or ROOT, env=env,
                          capture_output=True, text=True, timeout=timeout)


def call_cli(module: str, *args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    """`python -m module args` in this process: the same main() and run_cli() (one-line errors, exit
    codes), without a new interpreter's seconds of imports. For commands that stop before any
    training or Ray; the signal handlers a search installs are put back afterwards."""
    import contextlib
    import importlib
    import io
    import logging
    import signal

    from common.cli import LOG_FORMAT
    from common.cli import run_cli as run_main

    main = importlib.import_module(module if module != "data" else "data.__main__").main
    out, err = io.StringIO(), io.StringIO()
    handlers = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    log = logging.StreamHandler(err)  # warnings reach stderr as run_cli's logging set-up prints them
    log.setFormatter(logging.Formatter(LOG_FORMAT))
    log.setLevel(logging.WARNING)
    logging.getLogger().addHandler(log)
    code = 0
    try:
        with contextlib.chdir(cwd or ROOT), contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            run_main(main, list(args))
    except SystemExit as e:
        code = e.code if isinstance(e.code, int) else 1
    finally:
        logging.getLogger().removeHandler(log)
        for s, h in handlers.items():
            signal.signal(s, h)
    return subprocess.CompletedProcess([module, *args], code, out.getvalue(), err.getvalue())


@pytest.fixture(scope="session")
def ray_session():
    """One real local Ray with 2 CPUs for the whole test session (the CLIs reuse it)."""
    import ray

    os.environ.setdefault("TUNE_WARN_EXCESSIVE_EXPERIMENT_CHECKPOINT_SYNC_THRESHOLD_S", "0")
    if not ray.is_initialized():
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield ray
    ray.shutdown()


def write_space(path: Path, params: dict, **fixed) -> Path:
    """A small search-space YAML for tests."""
    import yaml

    path.write_text(yaml.safe_dump({"fixed": {"hidden_sizes": [32], **fixed}, "params": params}))
    return path


def tree(root: Path, skip: Path | None = None) -> list[str]:
    """Every path under root (but under `skip`), relative, sorted: a snapshot to prove nothing changed."""
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if skip is None or not p.is_relative_to(skip))


def one_error(r: subprocess.CompletedProcess) -> str:
    """The single stderr line of a CLI that refused its input (exit 2), without its 'error: ' prefix."""
    assert r.returncode == 2, r.stdout + r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), r.stderr
    return lines[0].removeprefix("error: ")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Every test that starts Ray (through the ray_session fixture, directly or via another fixture) is
    slow: the fast tier, `pytest -m "not slow"`, never starts Ray."""
    for item in items:
        if "ray_session" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.slow)


TRAINED_SLICE = 30_000  # images the trained_model fixture learns from: one epoch, ~96 % test accuracy


@pytest.fixture(scope="session")
def trained_splits():
    from data.source import DataConfig, load_splits

    return load_splits(DataConfig(subset=TRAINED_SLICE))


@pytest.fixture(scope="session")
def trained_model(trained_splits, tmp_path_factory) -> Path:
    """A run folder as model.train leaves it (model.pt + model.json): one epoch on a 30,000-image slice
    (a model weaker than that flips on the half-pixel differences any resampling of a photo brings)."""
    from model.card import card_for, save
    from model.config import TrainConfig
    from model.loop import build_run, fit, setup, to_device

    cfg = TrainConfig(epochs=1, batch_size=64, threads=1)
    device = setup(cfg)
    data = to_device(trained_splits, device)
    run = build_run(cfg, data, device)
    fit(run, data)
    folder = tmp_path_factory.mktemp("runs") / "one-epoch"
    save(folder, run.model.eval(), card_for(run.model, trained_splits, {"subset": TRAINED_SLICE}))
    return folder
