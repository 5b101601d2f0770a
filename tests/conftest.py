"""Shared fixtures: the real MNIST loaded once per session, and small slices of it."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def mnist_arrays():
    from data.mnist import DataConfig, load_arrays

    return load_arrays(DataConfig())


@pytest.fixture(scope="session")
def small_splits():
    """A stratified 2,000-image slice split 80/20: fast enough for real training in tests."""
    from data.mnist import DataConfig, load_splits

    return load_splits(DataConfig(subset=2000))


def run_cli(*args: str, cwd: Path | None = None, timeout: float = 300) -> subprocess.CompletedProcess:
    """Run `python -m ...` as a user would, from the repo root unless told."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "TQDM_DISABLE": "1"}
    return subprocess.run([sys.executable, "-m", *args], cwd=cwd or ROOT, env=env,
                          capture_output=True, text=True, timeout=timeout)
