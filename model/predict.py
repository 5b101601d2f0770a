"""`python -m model.predict MODEL FILES...`: classify photos, folders of scans, CSV or IDX files.

MODEL is a run folder (results/runs/<name>), a search folder (results/<name>: its retrained best)
or the .pt or .json file of a pair (model.pt and its card model.json; a committee's committee.pt
predicts with the mean probability of its members). Image files are prepared
the way MNIST's digits were (data.photo; --as-is skips that for images already like the training
data); CSV and IDX rows are used as they are. Prints a table (or --json lines) of file, predicted class, probability and top 3;
--csv OUT and --show OUT.png save them. A file that cannot be read is named on stderr, the rest
are still predicted, and the exit code is 1.
"""
from __future__ import annotations

import argparse
import csv
import json
import sys
import time
from pathlib import Path

import numpy as np

from common.atomic import atomic_write, save_figure
from common.cli import ArgumentParser, run_cli
from common.errors import InputError
from common.outputs import check_output, check_outputs
from data.csv import LABEL

SHOW_MAX = 64  # --show draws at most this many inputs
COLUMNS = ("file", "prediction", "probability", "top3")  # --csv's header
SUFFIXES = {"--show": ".png"}  # output flags whose file type is fixed


def parser() -> argparse.ArgumentParser:
    p = ArgumentParser(prog="python -m model.predict", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog="\n\n".join(__doc__.split("\n\n")[1:]))
    p.add_argument("model", metavar="MODEL", help="run folder, search folder, or a model's .pt or .json file")
    p.add_argument("files", metavar="FILES", nargs="+", help="image files (PNG, JPEG, BMP, GIF), folders of "
                   "them, CSV files (one image per row) or IDX image files")
    p.add_argument("--csv", metavar="OUT", help="also write file,prediction,probability,top3 here")
    p.add_argument("--json", action="store_true", help="print JSON lines instead of the table")
    p.add_argument("--show", metavar="OUT.png", help=f"draw the first {SHOW_MAX} inputs as the model saw them, "
                   "titled by prediction")
    p.add_argument("--as-is", action="store_true", help="use image files as they are (greyscale, resized to "
                   "the model's shape), for images already like the training data; default: prepare each "
                   "as MNIST's digits were (invert, crop, scale to the box, centre by mass)")
    p.add_argument("--label-column", default=LABEL, help="a CSV's label column, ignored when present "
                   "(default: %(default)s)")
    p.add_argument("--top", type=int, default=3, help="classes listed per input (default: %(default)s)")
    p.add_argument("--batch-size", type=int, default=4096, help="inputs per forward pass (default: %(default)s)")
    p.add_argument("--workers", type=int, default=0, help="processes preparing image files (default: one per "
                   "CPU, for 2,000 files or more)")
    return p


def top_text(top: list[tuple[str, float]]) -> str:
    return " ".join(f"{name}:{p:.3f}" for name, p in top)


def table(rows: list[dict]) -> str:
    width = max([len("file")] + [len(r["file"]) for r in rows])
    cls = max([len("prediction")] + [len(r["prediction"]) for r in rows])
    lines = [f"{'file':<{width}}  {'prediction':<{cls}}  probability  top"]
    lines += [f"{r['file']:<{width}}  {r['prediction']:<{cls}}  {r['probability']:11.3f}  {top_text(r['top'])}"
              for r in rows]
    return "\n".join(lines)


def write_csv(path: Path, rows: list[dict]) -> None:
    def write(tmp: Path) -> None:
        with open(tmp, "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(COLUMNS)
            w.writerows([r["file"], r["prediction"], f"{r['probability']:.6f}", top_text(r["top"])] for r in rows)

    atomic_write(path, write)


def check_flags(args: argparse.Namespace) -> None:
    """Refuse, before any work, flags whose values cannot work."""
    for flag, value, least in (("--top", args.top, 1), ("--batch-size", args.batch_size, 1),
                               ("--workers", args.workers, 0)):
        if value < least:
            raise InputError(f"{flag} {value}: must be at least {least}")
    check_outputs(output_flags(args), suffixes=SUFFIXES)  # their form; against the inputs once those are known


def output_flags(args: argparse.Namespace) -> list[tuple[str, str | None]]:
    return [("--csv", args.csv), ("--show", args.show)]


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    check_flags(args)
    from model.card import load, model_files
    from model.inference import expand, probabilities, read_inputs, records

    weights, card_path = model_files(args.model)
    files, missing = expand(args.files)
    outputs = check_outputs(output_flags(args), [weights, card_path, *files], suffixes=SUFFIXES)
    if "--show" in outputs:  # a picture in a folder of inputs would be predicted next time
        given = [Path(f).expanduser() for f in args.files]
        check_output("--show", args.show, folders=[p for p in given if p.is_dir()])
    loaded = load(args.model)
    card = loaded.card
    t0 = time.perf_counter()
    inputs = read_inputs(files, card, args.label_column, args.as_is, args.workers or None)
    inputs.errors[:0] = missing
    for e in inputs.errors:
        print(f"error: {e}", file=sys.stderr)
    if not inputs.arrays:
        print("error: nothing to predict", file=sys.stderr)
        return 1
    images = np.stack(inputs.arrays)
    probs = probabilities(loaded.model, card, images, args.batch_size)
    rows = records(inputs.names, probs, card.classes, min(args.top, len(card.classes)))
    seconds = time.perf_counter() - t0
    if args.json:
        for r in rows:
            print(json.dumps({**{k: r[k] for k in ("file", "prediction", "probability")},
                              "top3": [{"class": c, "probability": p} for c, p in r["top"]]}))
    else:
        print(table(rows))
    if "--csv" in outputs:
        write_csv(outputs["--csv"], rows)
    if "--show" in outputs:
        from data.plots import sample_grid

        n = min(SHOW_MAX, len(rows))
        shown = probs[:n].argmax(1)
        save_figure(sample_grid(images[:n], shown, classes=card.classes,
                                title=f"as {loaded.weights.parent.name} saw them: prediction"), outputs["--show"])
    print(f"predicted {len(rows)} input(s) in {seconds:.1f} s with {loaded.weights}"
          + (f"; {len(inputs.errors)} file(s) could not be read" if inputs.errors else ""), file=sys.stderr)
    return 1 if inputs.errors else 0


if __name__ == "__main__":
    run_cli(main)
