"""`python -m benchmarks.small_sets`: the tuned searches against simple baselines on two small sets.

Why this exists (issue 29): on a small set, a short search must never lose to an untuned run. This
script measures that end to end, through the real CLIs (`python -m model.train`, `tuning.optuna`,
`tuning.grid`, each a subprocess of this interpreter), on two sets generated into a work folder:

- digits: scikit-learn's 8x8 digits (1,797 images, 10 classes) as one CSV, a `label` column and 64
  pixel columns (0..16 scaled to 0..255); the project holds a test set out of it;
- glyphs: a folder of 32x32 greyscale PNGs, the letters A-Z drawn with Pillow and randomly
  distorted (font, size, stroke, rotation, shift, blur, noise) from a seeded numpy generator,
  DIR/<letter>/*.png; the project holds a test set out of it.

Every method is scored on the same test images: the project's held-out test set (data.dataset's
fixed TEST_SPLIT_SEED, --test-fraction). The baselines are scikit-learn's LogisticRegression on the
project's own train+validation images (data.source.load_splits, in this process) and the default
`python -m model.train`; against them: the default Optuna search, the default grid search, and a
short Optuna search (--trials 4 --epochs 12). Test accuracy is read from the files each CLI writes:
model.train's results/runs/<name>/metrics.json (`test_accuracy`, the model after its last epoch,
trained on the training split only) and a search's <results>/<name>/test_report.json
(`test_accuracy.mean`, the best configuration retrained on train+validation).

Output: the CPU model, then a Markdown table (set, method, test accuracy %, wall s), also written as
JSON and Markdown (--out). `--quick` shrinks everything for tests. Each command's output is kept in
<work>/logs/.
"""
from __future__ import annotations

import argparse
import functools
import json
import os
import platform
import shutil
import string
import subprocess
import sys
import tempfile
import time
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
SETS = ("digits", "glyphs")
METHODS = ("logreg", "train", "optuna", "grid", "optuna_short")
TEST_FRACTION = 0.2  # the project's default, passed explicitly so the baselines' split is the CLIs'
DIGITS_SHAPE = "8x8"
GLYPH_CLASSES = tuple(string.ascii_uppercase)
GLYPH_SIZE = 32
GLYPHS_PER_CLASS = 60
QUICK_GLYPHS_PER_CLASS = 20  # the fewest that still split 80/20 twice with 2+ images per class per part
GLYPH_SEED = 0
FONT_DIRS = ("/usr/share/fonts", "/usr/local/share/fonts", "/Library/Fonts", "C:/Windows/Fonts")
QUICK_SEARCH = ("--trials", "2", "--epochs", "2")
QUICK_GRID_SPACE = {  # two trials from the default grid space, for --quick
    "extends": "grid",
    "params": {"lr": {"values": [0.03, 0.1]}, "batch_size": {"values": [64]}, "dropout": {"values": [0.1]},
               "hidden_sizes": {"values": [[256]]}},
}


# ---- The two data sets: pure functions that return arrays or write files, nothing else.


def digits_arrays() -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's 8x8 digits as (images (1797, 8, 8) uint8 in 0..255, labels (1797,) int64)."""
    from sklearn.datasets import load_digits

    d = load_digits()
    images = np.rint(d.images * (255 / 16)).astype(np.uint8)
    return images, d.target.astype(np.int64)


def write_digits_csv(path: Path) -> Path:
    """The digits as one CSV: a `label` column, then pixel0..pixel63 (the project's own writer)."""
    from data.csv import write_csv

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_csv(path, *digits_arrays())
    return path


def find_fonts(dirs: Sequence[str] = FONT_DIRS) -> list[str]:
    """TrueType fonts on this machine that draw distinct Latin capitals, sorted; [] when none."""
    from PIL import ImageFont

    found = sorted({str(p) for d in dirs if Path(d).is_dir() for p in Path(d).rglob("*") if p.suffix.lower() == ".ttf"})
    usable = []
    for path in found:
        try:
            font = ImageFont.truetype(path, 24)
        except OSError:
            continue
        masks = [np.asarray(font.getmask(c)) for c in "AB"]
        if all(m.size and m.any() for m in masks) and not np.array_equal(*masks):  # skips symbol fonts
            usable.append(path)
    return usable


@functools.lru_cache(maxsize=512)
def _font(path: str | None, size: int):
    """A Pillow font at `size` px: the TTF at `path`, or Pillow's built-in font when path is None."""
    from PIL import ImageFont

    return ImageFont.load_default(size) if path is None else ImageFont.truetype(path, size)


def glyph_image(letter: str, font: str | None, rng: np.random.Generator, size: int = GLYPH_SIZE) -> np.ndarray:
    """One randomly distorted glyph, white on black, (size, size) uint8.

    Drawn at twice the size, then turned, shrunk, blurred and noised; every random number comes from
    `rng`, in a fixed order, so the same generator state gives the same pixels.
    """
    from PIL import Image, ImageDraw, ImageFilter

    big = 2 * size
    font_px = int(round(rng.uniform(0.5, 0.85) * big))  # scale
    stroke = int(rng.integers(0, 3))  # stroke width at 2x: 0, 1 or 2 px
    angle = float(rng.uniform(-15, 15))  # degrees
    dx, dy = rng.uniform(-0.1, 0.1, size=2) * big  # shift
    blur = float(rng.uniform(0.0, 0.8))  # px, after shrinking
    sigma = float(rng.uniform(0.0, 20.0))  # noise, in 0..255 units
    noise = rng.normal(0.0, 1.0, size=(size, size))

    canvas = Image.new("L", (big, big), 0)
    draw = ImageDraw.Draw(canvas)
    f = _font(font, font_px)
    x0, y0, x1, y1 = draw.textbbox((0, 0), letter, font=f, stroke_width=stroke)
    xy = ((big - (x1 - x0)) / 2 - x0 + dx, (big - (y1 - y0)) / 2 - y0 + dy)
    draw.text(xy, letter, fill=255, font=f, stroke_width=stroke, stroke_fill=255)
    canvas = canvas.rotate(angle, resample=Image.Resampling.BICUBIC, fillcolor=0)
    small = canvas.resize((size, size), Image.Resampling.LANCZOS)
    if blur > 0:
        small = small.filter(ImageFilter.GaussianBlur(blur))
    pixels = np.asarray(small, dtype=np.float64) + sigma * noise
    return np.clip(np.rint(pixels), 0, 255).astype(np.uint8)


def glyph_arrays(per_class: int = GLYPHS_PER_CLASS, seed: int = GLYPH_SEED, classes: Sequence[str] = GLYPH_CLASSES,
                 fonts: Sequence[str | None] | None = None, size: int = GLYPH_SIZE) -> tuple[np.ndarray, np.ndarray]:
    """(images (N, size, size) uint8, labels (N,) str): `per_class` distorted glyphs of each class.

    `fonts`: TTF paths (None = Pillow's built-in font) picked at random per image; default: the
    machine's fonts (find_fonts), else the built-in one. Same seed and fonts, same arrays.
    """
    fonts = list(fonts) if fonts is not None else (find_fonts() or [None])
    rng = np.random.default_rng(seed)
    images, labels = [], []
    for letter in classes:
        for _ in range(per_class):
            font = fonts[int(rng.integers(len(fonts)))]
            images.append(glyph_image(letter, font, rng, size))
            labels.append(letter)
    return np.stack(images), np.asarray(labels, dtype=str)


def write_image_folder(root: Path, images: np.ndarray, labels: np.ndarray) -> Path:
    """Write images as greyscale PNGs in the layout --image-dir reads: root/<label>/<label>_<k>.png."""
    from PIL import Image

    root = Path(root)
    counts: dict[str, int] = {}
    for image, label in zip(images, labels):
        label = str(label)
        k = counts.get(label, 0)
        counts[label] = k + 1
        folder = root / label
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray(np.ascontiguousarray(image), mode="L").save(folder / f"{label}_{k:04d}.png")
    return root


# ---- The runner: one row per (set, method).


@dataclass
class Row:
    """One measurement: test accuracy (0..1, None when the command failed) and wall seconds."""

    set: str
    method: str
    test_accuracy: float | None
    wall_s: float
    source: str  # where the accuracy was read from
    command: list[str] | None = None
    note: str = ""


@dataclass
class DataSet:
    """A generated set: the data flags every CLI gets, and what load_splits made of it."""

    name: str
    flags: list[str]
    info: dict = field(default_factory=dict)


def data_config(flags: list[str]):
    """The DataConfig the CLIs build from `flags` (only the flags this script passes)."""
    from data.source import DataConfig

    opts = dict(zip(flags[::2], flags[1::2]))
    return DataConfig(train_csv=opts.get("--train-csv"), image_dir=opts.get("--image-dir"),
                      image_shape=opts.get("--image-shape"), test_fraction=float(opts.get("--test-fraction", 0.2)))


def make_set(name: str, work: Path, quick: bool) -> DataSet:
    """Generate set `name` under work/data/ and return its data flags."""
    if name == "digits":
        path = write_digits_csv(work / "data" / "digits.csv")
        flags = ["--train-csv", str(path), "--image-shape", DIGITS_SHAPE]
        info = {"source": "sklearn.datasets.load_digits", "pixels": "0..16 scaled to 0..255"}
    else:
        fonts = find_fonts() or [None]
        per_class = QUICK_GLYPHS_PER_CLASS if quick else GLYPHS_PER_CLASS
        root = work / "data" / "glyphs"
        if root.is_dir():  # this script's own folder from an earlier run: start afresh, no stale images
            shutil.rmtree(root)
        write_image_folder(root, *glyph_arrays(per_class, GLYPH_SEED, fonts=fonts))
        flags = ["--image-dir", str(root)]
        info = {"per_class": per_class, "seed": GLYPH_SEED, "fonts": [f or "Pillow built-in" for f in fonts]}
    return DataSet(name, [*flags, "--test-fraction", str(TEST_FRACTION)], info)


def logreg(ds: DataSet) -> Row:
    """LogisticRegression on the project's train+validation images, scored on its test images.

    load_splits with val_fraction 0 is what the searches' retrain uses: the same test set, the
    training pool whole (train + validation), normalised by that pool's mean and std.
    """
    import dataclasses

    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import LogisticRegression

    from data.source import load_splits
    from data.splits import normalise

    t0 = time.perf_counter()
    splits = load_splits(dataclasses.replace(data_config(ds.flags), val_fraction=0.0))
    x, y = normalise(splits.train_x, splits.mean, splits.std).numpy(), splits.train_y.numpy()
    tx, ty = normalise(splits.test_x, splits.mean, splits.std).numpy(), splits.test_y.numpy()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ConvergenceWarning)
        clf = LogisticRegression(max_iter=5000).fit(x, y)
    acc = float(clf.score(tx, ty))
    converged = not any(issubclass(w.category, ConvergenceWarning) for w in caught)
    note = f"{len(y)} train+val / {len(ty)} test images" + ("" if converged else "; did NOT converge")
    return Row(ds.name, "logreg", acc, time.perf_counter() - t0, "in process (data.source.load_splits)", None, note)


def commands(ds: DataSet, results: Path, quick: bool, quick_grid: Path) -> dict[str, tuple[list[str], Path]]:
    """method -> (argv after `python -m`, the file its test accuracy is read from)."""
    d = ds.flags
    train_name = f"{ds.name}-train"
    k = 2
    while (results / "runs" / train_name).exists():  # model.train never reuses a run folder
        train_name = f"{ds.name}-train-{k}"
        k += 1
    search = ["--results-dir", str(results), "--overwrite"]
    short = list(QUICK_SEARCH) if quick else ["--trials", "4", "--epochs", "12"]
    return {
        "train": (["model.train", "--results-dir", str(results), "--name", train_name, "--quiet", *d,
                   *(["--epochs", "2"] if quick else [])], results / "runs" / train_name / "metrics.json"),
        "optuna": (["tuning.optuna", *search, "--name", f"{ds.name}-optuna", *d, *(QUICK_SEARCH if quick else ())],
                   results / f"{ds.name}-optuna" / "test_report.json"),
        "grid": (["tuning.grid", *search, "--name", f"{ds.name}-grid", *d,
                  *(["--space", str(quick_grid), "--epochs", "2"] if quick else [])],
                 results / f"{ds.name}-grid" / "test_report.json"),
        "optuna_short": (["tuning.optuna", *search, "--name", f"{ds.name}-optuna-short", *d, *short],
                         results / f"{ds.name}-optuna-short" / "test_report.json"),
    }


def read_accuracy(path: Path) -> tuple[float, str]:
    """(test accuracy, how its model computed) from model.train's metrics.json or a search's
    test_report.json (`precision: auto` picks bf16 or fp32 by a timed probe, so say which)."""
    report = json.loads(path.read_text())
    value = report["test_accuracy"]
    if isinstance(value, dict):  # a search: mean over the retrain seeds
        return float(value["mean"]), f"retrain {report.get('autocast', '?')} on {report.get('device', '?')}"
    return float(value), f"precision {report.get('config', {}).get('precision', '?')}"


def run_cli(ds: DataSet, method: str, argv: list[str], report: Path, logs: Path) -> Row:
    """Run `python -m argv`, time it, keep its output in logs/, read its test accuracy."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
           "TQDM_DISABLE": "1"}
    cmd = [sys.executable, "-m", *argv]
    t0 = time.perf_counter()
    r = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    logs.mkdir(parents=True, exist_ok=True)
    (logs / f"{ds.name}-{method}.log").write_text(f"$ {' '.join(cmd)}\n# exit {r.returncode}\n{r.stdout}\n{r.stderr}")
    if r.returncode != 0 or not report.is_file():
        last = (r.stderr.strip() or r.stdout.strip() or "no output").splitlines()[-1]
        return Row(ds.name, method, None, wall, str(report), cmd, f"failed (exit {r.returncode}): {last}")
    acc, how = read_accuracy(report)
    note = "last epoch, trained on the train split" if method == "train" else "best config retrained on train+val"
    return Row(ds.name, method, acc, wall, str(report), cmd, f"{note}; {how}")


def cpu_model() -> str:
    """lscpu's "Model name", else what platform knows."""
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.SubprocessError):
        out = ""
    for line in out.splitlines():
        if line.startswith("Model name:"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine() or "unknown"


def table(rows: list[Row]) -> str:
    """The results as a Markdown table."""
    lines = ["| set | method | test accuracy % | wall s | note |", "| --- | --- | ---: | ---: | --- |"]
    for r in rows:
        acc = "-" if r.test_accuracy is None else f"{100 * r.test_accuracy:.2f}"
        lines.append(f"| {r.set} | {r.method} | {acc} | {r.wall_s:.1f} | {r.note} |")
    return "\n".join(lines)


def choices(text: str, allowed: Sequence[str], flag: str) -> list[str]:
    """'a,b' -> ['a', 'b'], each one of `allowed`."""
    picked = [t.strip() for t in text.split(",") if t.strip()]
    bad = [t for t in picked if t not in allowed]
    if bad or not picked:
        raise argparse.ArgumentTypeError(f"{flag} {text}: choose from {','.join(allowed)}")
    return picked


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m benchmarks.small_sets", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sets", default=",".join(SETS), type=lambda s: choices(s, SETS, "--sets"),
                   help=f"comma-separated, from {','.join(SETS)} (default: all)")
    p.add_argument("--methods", default=",".join(METHODS), type=lambda s: choices(s, METHODS, "--methods"),
                   help=f"comma-separated, from {','.join(METHODS)} (default: all)")
    p.add_argument("--quick", action="store_true",
                   help="tiny settings for tests: searches --trials 2 --epochs 2 (grid: a 2-trial space), "
                        f"model.train --epochs 2, {QUICK_GLYPHS_PER_CLASS} glyphs per class")
    p.add_argument("--work", type=Path, default=None,
                   help="folder for the data, results and logs (default: a new temp dir)")
    p.add_argument("--out", type=Path, default=None,
                   help="JSON file to write, with a .md beside it (default: <work>/small_sets.json)")
    return p


def main(argv: list[str] | None = None) -> int:
    """Generate the sets, run every method on each, print and write the table; 1 when any command failed."""
    args = parser().parse_args(argv)
    work = (args.work or Path(tempfile.mkdtemp(prefix="small-sets-"))).resolve()
    work.mkdir(parents=True, exist_ok=True)
    out = (args.out or work / "small_sets.json").resolve()
    from data.images import CACHE_ENV

    os.environ.setdefault(CACHE_ENV, str(work / "image-cache"))  # decoded folders: here, not ~/.cache
    cpu = cpu_model()
    print(f"CPU: {cpu}, {os.cpu_count()} cores; work folder {work}", flush=True)
    results, logs = work / "results", work / "logs"
    quick_grid = work / "quick_grid.yaml"
    if args.quick:
        import yaml

        quick_grid.write_text(yaml.safe_dump(QUICK_GRID_SPACE))
    rows: list[Row] = []
    sets = []
    for name in args.sets:
        ds = make_set(name, work, args.quick)
        from data.source import load_splits

        s = load_splits(data_config(ds.flags))
        ds.info.update({"classes": len(s.classes), "image_shape": list(s.image_shape), **s.sizes()})
        sets.append(ds)
        print(f"{name}: {ds.info['classes']} classes of {s.image_shape[0]}x{s.image_shape[1]}, {s.sizes()}", flush=True)
        cmds = commands(ds, results, args.quick, quick_grid)
        for method in args.methods:
            row = logreg(ds) if method == "logreg" else run_cli(ds, method, *cmds[method], logs)
            rows.append(row)
            acc = "failed" if row.test_accuracy is None else f"{100 * row.test_accuracy:.2f} %"
            print(f"  {method}: {acc} in {row.wall_s:.1f} s {row.note}", flush=True)
    md = table(rows)
    print(f"\nCPU: {cpu}\n\n{md}")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({
        "cpu": cpu, "cores": os.cpu_count(), "python": sys.version.split()[0], "quick": args.quick,
        "work": str(work), "test_fraction": TEST_FRACTION, "sets": {d.name: {"flags": d.flags, **d.info} for d in sets},
        "results": [asdict(r) for r in rows],
    }, indent=2))
    out.with_suffix(".md").write_text(f"CPU: {cpu}{' (--quick)' if args.quick else ''}\n\n{md}\n")
    print(f"\nwrote {out} and {out.with_suffix('.md')}")
    return 1 if any(r.test_accuracy is None for r in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
