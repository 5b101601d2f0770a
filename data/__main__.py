"""`python -m data`: image shape, class names and images per class of a data source, plus two pictures.

Writes results/data/samples.png (a grid of training images) and results/data/classes.png.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from common.folders import check_writable
from common.atomic import save_figure
from common.cli import ArgumentParser, add_dataclass_args, from_args, run_cli
from common.errors import DataError
from common.outputs import check_output_folder
from data.source import DataConfig, load_splits
from data.plots import class_distribution, sample_grid
from data.splits import Splits

PICTURES = ("samples.png", "classes.png")


def check_writable_dir(folder: Path, flag: str, value: str, files: tuple[str, ...] = ()) -> None:
    """Fail before any work if `folder` (and `files` in it) cannot be created and written."""
    check_writable(folder, flag, value)
    for name in files:
        if (folder / name).is_dir():
            raise DataError(f"{flag} {value}: {folder / name} is a folder, expected a file")


def parts(splits: Splits) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    return {"train": (splits.train_x, splits.train_y), "validation": (splits.val_x, splits.val_y),
            "test": (splits.test_x, splits.test_y)}


def counts_text(splits: Splits) -> str:
    """Shapes, normalisation, the class names and a table of images per class and split."""
    h, w = splits.image_shape
    lines = [f"images {h}x{w} (height x width), {len(splits.classes)} classes"]
    for name, (x, y) in parts(splits).items():
        lines.append(f"{name:<10} images {tuple(x.shape)} {x.dtype}, labels {tuple(y.shape)} {y.dtype}")
    lines.append(f"normalisation (training split): mean {splits.mean:.4f}, std {splits.std:.4f} (pixel units)")
    counts = {name: np.bincount(y.numpy(), minlength=len(splits.classes)) for name, (_, y) in parts(splits).items()}
    width = max(5, *(len(c) for c in splits.classes))
    lines.append(f"{'class':<{width}} " + " ".join(f"{name:>10}" for name in counts))
    for k, c in enumerate(splits.classes):
        lines.append(f"{c:<{width}} " + " ".join(f"{int(v[k]):>10}" for v in counts.values()))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = ArgumentParser(prog="python -m data", description=__doc__)
    p.add_argument("--results-dir", default="results", help="pictures go to <results-dir>/data/")
    add_dataclass_args(p, DataConfig, "data")
    args = p.parse_args(argv)
    out = Path(args.results_dir) / "data"
    check_output_folder("--results-dir", args.results_dir, out, *from_args(DataConfig, args).inputs())
    check_writable_dir(out, "--results-dir", args.results_dir, PICTURES)
    splits = load_splits(from_args(DataConfig, args))
    print(counts_text(splits))
    counts = {name: np.bincount(y.numpy(), minlength=len(splits.classes)) for name, (_, y) in parts(splits).items()}
    draw = {"samples.png": lambda: sample_grid(splits.train_x[:32].numpy(), splits.train_y[:32].numpy(),
                                               classes=splits.classes, title="training samples"),
            "classes.png": lambda: class_distribution(counts, splits.classes)}
    for name in PICTURES:
        try:
            save_figure(draw[name](), out / name)
        except OSError as e:  # checked above, but the disk can still fill up or change under us
            raise DataError(f"--results-dir {args.results_dir}: cannot write {out / name}: {e.strerror or e}") from e
    print(f"wrote {out}/samples.png, {out}/classes.png")
    return 0


if __name__ == "__main__":
    run_cli(main)
