"""`python -m tuning.report`: read a search's results folder, print its summary, redraw its plots.

Works from the files alone (no Ray), so a finished search can be re-read anywhere.
"""
from __future__ import annotations

import argparse
from pathlib import Path

from common.atomic import save_figure
from common.cli import ArgumentParser, run_cli
from common.errors import InputError
from common.outputs import check_output_folder
from tuning.results.summary import compare_rows, compare_text, summary_text
from tuning.results.figures import redraw
from tuning.results.tables import Tables, load_tables


def parser() -> argparse.ArgumentParser:
    p = ArgumentParser(prog="python -m tuning.report", description=__doc__)
    p.add_argument("folders", nargs="+", metavar="FOLDER", help="results/<name>/ folder(s) of a search")
    p.add_argument("--compare", action="store_true", help="one side-by-side table (and compare.png) of all FOLDERs")
    p.add_argument("--top", type=int, default=5, help="trials in the top table")
    p.add_argument("--no-plots", action="store_true", help="print only; draw nothing")
    p.add_argument("--out", default=None, help="write plots here instead of FOLDER/plots/")
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    if args.top < 1:
        raise InputError(f"--top {args.top}: must be >= 1")
    tables = [load_tables(f) for f in args.folders]
    if args.out and not args.no_plots:  # pictures written into a training image folder would be read as data
        from tuning.results.figures import search_data

        for t in tables:
            check_output_folder("--out", args.out, Path(args.out).expanduser(), folders=search_data(t).inputs()[1])
    try:
        return _print_and_draw(args, tables)
    except OSError as e:  # an unwritable plots/ or --out folder
        raise InputError(f"{e.filename or args.out}: cannot write plots ({e.strerror or e})") from e


def _print_and_draw(args: argparse.Namespace, tables: list[Tables]) -> int:
    if args.compare:
        print(compare_text(tables))
        if not args.no_plots:
            from tuning.results.plots import compare_accuracy

            out = Path(args.out) if args.out else tables[0].folder / "plots"
            print(f"wrote {save_figure(compare_accuracy(compare_rows(tables)), out / 'compare.png')}")
        return 0
    for i, t in enumerate(tables):
        print(("\n" if i else "") + summary_text(t, args.top))
        if not args.no_plots:
            out = None if args.out is None else Path(args.out) / (t.folder.name if len(tables) > 1 else "")
            paths = redraw(t.folder, t, out)
            print(f"wrote {len(paths)} plots to {paths[0].parent if paths else '-'}/: {' '.join(p.name for p in paths)}")
    return 0


if __name__ == "__main__":
    run_cli(main)
