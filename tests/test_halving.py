"""tuning/halving.py: synchronous successive halving, decided by results alone."""
from __future__ import annotations

import math

import pytest

from tuning.halving import promoted, rung_epochs


@pytest.mark.parametrize("max_t, grace, eta, rungs", [
    (60, 3, 4, [3, 12, 48]), (20, 1, 3, [1, 3, 9]), (3, 1, 3, [1]), (3, 3, 3, []), (10, 2, 2.5, [2, 5]),
])
def test_rungs_are_grace_times_powers_of_eta_below_max_t(max_t, grace, eta, rungs):
    assert rung_epochs(max_t, grace, eta) == rungs


def test_the_best_fraction_goes_on():
    scores = {0: 0.90, 1: 0.95, 2: 0.80, 3: 0.97, 4: 0.85, 5: 0.96, 6: 0.10, 7: 0.50}
    assert promoted(scores, 4) == {3, 5}
    assert promoted(scores, 3) == {3, 5}
    assert promoted(scores, 2) == {1, 3, 5, 0}


def test_at_least_one_goes_on():
    assert promoted({4: 0.5, 2: 0.6}, 4) == {2}


def test_ties_go_to_the_earlier_trial_whatever_the_arrival_order():
    assert promoted({7: 0.9, 3: 0.9, 5: 0.9}, 3) == {3}
    assert promoted(dict(reversed(list({7: 0.9, 3: 0.9, 5: 0.9}.items()))), 3) == {3}


def test_nan_ranks_last():
    assert promoted({0: math.nan, 1: 0.2, 2: 0.1}, 3) == {1}
    assert promoted({0: math.nan, 1: math.nan}, 2) == {0}
