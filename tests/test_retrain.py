"""tuning/retrain.py: what a test report records about where it came from."""
from __future__ import annotations

import platform
import subprocess
from importlib import metadata

from tests.conftest import ROOT
from common.provenance import git_commit, versions


def test_versions_are_the_installed_ones():
    # Rule: versions() gives Python's version and each package's installed version, read from its metadata.
    v = versions()
    assert (v["python"], v["torch"], v["optuna"]) == (platform.python_version(), metadata.version("torch"),
                                                      metadata.version("optuna"))


def test_git_commit_is_the_checked_out_commit():
    # Rule: inside a git checkout, git_commit() is `git rev-parse HEAD` there.
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True).stdout.strip()
    assert git_commit(ROOT) == (head or "unknown")


def test_git_commit_outside_a_checkout_is_unknown(tmp_path):
    # Rule: a folder that is no git checkout gives "unknown", not an error.
    assert git_commit(tmp_path) == "unknown"
