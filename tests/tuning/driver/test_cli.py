"""tuning/driver/cli.py's pure pieces: when a search counted in trials runs another Ray experiment."""
from __future__ import annotations

import pytest

from tuning.driver.cli import next_chunk
from tuning.optuna import OptunaConfig


def test_next_chunk_asks_for_the_missing_trials():
    # Rule: after a chunk that ran all it was asked, the next one gets every trial still missing.
    nxt = next_chunk(OptunaConfig(trials=5000), left=3000, ran=2000, asked=2000, elapsed_s=10.0)
    assert nxt is not None and nxt.trials == 3000 and nxt.timeout is None


def test_next_chunk_is_none_when_nothing_is_missing():
    assert next_chunk(OptunaConfig(trials=50), left=0, ran=50, asked=50, elapsed_s=1.0) is None


def test_next_chunk_is_none_after_a_chunk_cut_short():
    # Rule: a chunk that created fewer trials than asked (its --timeout ran out) ends the search.
    assert next_chunk(OptunaConfig(trials=50), left=20, ran=30, asked=50, elapsed_s=1.0) is None


def test_next_chunk_continues_a_restored_experiment():
    # Rule: a restored experiment's plan is unknown (asked None): --resume adds whatever is missing.
    nxt = next_chunk(OptunaConfig(trials=8, resume=True), left=3, ran=5, asked=None, elapsed_s=1.0)
    assert nxt is not None and nxt.trials == 3


def test_next_chunk_spends_only_what_the_timeout_leaves():
    nxt = next_chunk(OptunaConfig(trials=10, timeout=100.0), left=4, ran=6, asked=6, elapsed_s=40.0)
    assert nxt is not None and nxt.timeout == pytest.approx(60.0)
    assert next_chunk(OptunaConfig(trials=10, timeout=100.0), left=4, ran=6, asked=6, elapsed_s=100.0) is None
