"""`python -m tuning.grid`: Ray Tune grid search with ASHA early stopping, then retrain-and-test.

The default space (search_spaces/grid.yaml) is the notebook's learning-rate x batch-size study
plus dropout and hidden widths. Results land in results/<name>/ (see README).
"""
from __future__ import annotations

import itertools
import math
import random
from pathlib import Path
from typing import Any

from common.cli import run_cli
from tuning.driver.cli import SearchKind, run_search
from model.config import TrainConfig
from tuning.driver.runner import Search, SearchConfig
from tuning.search.space import NOTEBOOK_BEST, SearchSpace, SpaceError, encode_sizes


def grid_search(cfg: SearchConfig, space: SearchSpace, base: TrainConfig, out: Path) -> Search:
    """Every grid point once, those nearest the notebook's best first (see grid_points)."""
    from ray import tune
    from ray.tune.search import BasicVariantGenerator

    points = grid_points(space, cfg.seed)
    return Search(
        search_alg=BasicVariantGenerator(points_to_evaluate=points, max_concurrent=cfg.max_concurrent),
        num_samples=len(points),
        cohort=cfg.max_concurrent,  # sync halving: live trials (paused ones too) never exceed the cap
        param_space={n: tune.choice(sorted({str(pt[n]): pt[n] for pt in points}.values(), key=str))
                     for n in space.params})


def grid_points(space: SearchSpace, seed: int) -> list[dict[str, Any]]:
    """Every combination of the parameters' `values`, those nearest the notebook's best first.

    Asynchronous ASHA judges a trial against the trials that reached its rung before it. Strong
    trials early set a high bar, so weak ones stop at the first rung; weak ones early get promoted
    for lack of company, so this order spends fewer trial-epochs than a random one does
    (benchmarks/README.md, "ASHA against FIFO"). Nearness is in log learning rate and log batch
    size; ties, and the parameters the notebook did not tune, go in a seeded random order.
    """
    missing = [n for n, p in space.params.items() if p.values is None]
    if missing:
        raise SpaceError(f"{space.path}: params.{missing[0]}: a grid search needs 'values'")
    names = list(space.params)
    # Ray reads a list inside a preset point as nested keys: lists (hidden_sizes) go as "512-256"
    values = [[encode_sizes(v) for v in space.params[n].values] for n in names]
    points = [dict(zip(names, combo)) for combo in itertools.product(*values)]
    random.Random(seed).shuffle(points)
    points.sort(key=distance_to_notebook_best)  # a stable sort: the shuffle orders the ties
    return points


def distance_to_notebook_best(point: dict[str, Any]) -> float:
    """Squared distance in log space from NOTEBOOK_BEST over the parameters the point sets."""
    return sum(math.log(point[k] / v) ** 2 for k, v in NOTEBOOK_BEST.items()
               if isinstance(point.get(k), (int, float)) and point[k] > 0)


GRID = SearchKind("grid", __doc__, SearchConfig(space="grid"), grid_search)


def main(argv: list[str] | None = None) -> int:
    return run_search(GRID, argv)


if __name__ == "__main__":
    run_cli(main)
