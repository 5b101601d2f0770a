"""benchmarks/scale.py: --runs is read into rows, and a bad item is named before anything starts."""
from __future__ import annotations

import argparse
import subprocess
import sys

import pytest

from benchmarks.scale import parse_runs


def test_runs_are_read_with_their_switches():
    # Rule: search, N, K, then the switches json, slow-tpe, all-running as booleans in that order.
    assert parse_runs("grid:100:8,optuna:1000:64:all-running:json") == [
        ("grid", 100, 8, False, False, False), ("optuna", 1000, 64, True, False, True)]


@pytest.mark.parametrize("item, says", [
    ("optuna:abc:8", "whole numbers"),
    ("optuna:10", "whole numbers"),
    ("foo:10:8", "the search is 'foo'"),
    ("grid:0:8", "at least 1"),
    ("optuna:10:8:all-runing", "unknown switch 'all-runing'"),
])
def test_a_bad_item_is_named(item, says):
    with pytest.raises(argparse.ArgumentTypeError) as e:
        parse_runs(f"grid:10:8,{item}")
    assert repr(item) in str(e.value) and says in str(e.value)


def test_the_cli_rejects_a_bad_item_with_one_line_and_exit_2():
    # Rule: through the real CLI, argparse's usage error (exit 2) names the item; no traceback, no Ray started.
    r = subprocess.run([sys.executable, "-m", "benchmarks.scale", "--runs", "grid:10:8:fast"],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 2
    assert "'grid:10:8:fast': unknown switch 'fast'" in r.stderr and "Traceback" not in r.stderr
