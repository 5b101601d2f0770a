"""`python -m tuning.grid`: Ray Tune grid search with ASHA early stopping, then retrain-and-test.

The default space (search_spaces/grid.yaml) is the seed's learning-rate x batch-size study
plus dropout and hidden widths. Results land in results/<name>/ (see README).
"""
from __future__ import annotations

import argparse
from pathlib import Path

from data.cli import run_cli
from tuning.cli import make_parser, run_search
from tuning.runner import SearchConfig
from tuning.space import SearchSpace, grid_points


def grid_search(cfg: SearchConfig, space: SearchSpace, base, out: Path, args: argparse.Namespace) -> dict:
    """Every grid point once, those nearest the seed's best first (see grid_points)."""
    from ray import tune
    from ray.tune.search import BasicVariantGenerator

    points = grid_points(space, cfg.seed)
    return {"param_space": {n: tune.choice(sorted({str(pt[n]): pt[n] for pt in points}.values(), key=str))
                            for n in space.params},
            "search_alg": BasicVariantGenerator(points_to_evaluate=points, max_concurrent=cfg.max_concurrent),
            "num_samples": len(points), "total": len(points)}


def main(argv: list[str] | None = None) -> int:
    defaults = SearchConfig(space="grid")
    return run_search("grid", argv, make_parser("python -m tuning.grid", __doc__, SearchConfig), grid_search,
                      defaults=defaults)


if __name__ == "__main__":
    run_cli(main)
