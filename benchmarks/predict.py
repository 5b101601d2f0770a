"""model.predict: accuracy on photo-like renderings of MNIST test digits, and speed on a folder of PNGs.

1. Accuracy. The model (--model, or one trained here: 3 epochs of the default MLP on MNIST) is
   scored on the first --photos test digits as they are, and on photo-like renderings of the same
   digits saved as JPEG: dark ink on a light page with a lighting gradient and noise, the digit
   36-270 px tall anywhere on a 100-300 px page (benchmarks/photos.py). The photos go through
   `model.predict` itself (--csv), so the preparation, batching and output are what a user gets.
2. Speed. --images test digits are written as 28x28 PNG files into one folder, and `model.predict
   MODEL FOLDER --csv OUT` is timed with one worker process and with the default pool.
Run: python -m benchmarks.predict [--model DIR] [--photos 2000] [--images 10000] [--json PATH]
"""
from __future__ import annotations

import argparse
import contextlib
import csv
import io
import json
import os
import tempfile
import time
from pathlib import Path

import numpy as np


def train_model(folder: Path) -> Path:
    from data.source import DataConfig, load_splits
    from model.card import card_for, save
    from model.config import TrainConfig
    from model.loop import build_run, fit, setup, to_device

    cfg = TrainConfig(epochs=3)
    device = setup(cfg)
    splits = load_splits(DataConfig())
    data = to_device(splits, device)
    run = build_run(cfg, data, device)
    fit(run, data)
    save(folder, run.model.eval(), card_for(run.model, splits, {}))
    return folder


def predict_cli(*args: str) -> tuple[dict[str, str], float]:
    """model.predict's main() in this process: {file: prediction} from its --csv, and the seconds it took."""
    from model.predict import main

    with tempfile.TemporaryDirectory() as d:
        out = Path(d) / "p.csv"
        t0 = time.perf_counter()
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            code = main([*args, "--csv", str(out)])
        seconds = time.perf_counter() - t0
        assert code == 0, f"model.predict exited {code}"
        with open(out, newline="") as f:
            return {r["file"]: r["prediction"] for r in csv.DictReader(f)}, seconds


def main(argv: list[str] | None = None) -> None:
    from PIL import Image

    from benchmarks.images import write_tree
    from data.source import DataConfig, load_dataset
    from model.card import load
    from model.inference import probabilities
    from benchmarks.photos import render

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", help="a run or search folder; default: train one here (3 epochs)")
    p.add_argument("--photos", type=int, default=2000, help="test digits rendered as photos")
    p.add_argument("--images", type=int, default=10000, help="28x28 PNG files in the timed folder")
    p.add_argument("--json", metavar="PATH", help="also write the numbers here as JSON")
    a = p.parse_args(argv)
    data = load_dataset(DataConfig())
    results: dict = {"cpus": len(os.sched_getaffinity(0))}
    with tempfile.TemporaryDirectory() as d:
        root = Path(d)
        model = Path(a.model) if a.model else train_model(root / "model")
        loaded = load(model)
        digits, truth = data.test_x[:a.photos], data.test_y[:a.photos]
        own = probabilities(loaded.model, loaded.card, digits.astype(np.float32)).argmax(1)
        rng = np.random.default_rng(0)
        photos = root / "photos"
        photos.mkdir()
        for i, x in enumerate(digits):
            Image.fromarray(render(x, rng)).save(photos / f"{i:05d}.jpg", quality=90)
        got, photo_s = predict_cli(str(model), str(photos))
        pred = np.array([int(got[str(photos / f"{i:05d}.jpg")]) for i in range(len(digits))])
        results["accuracy"] = {"digits": len(digits), "originals": float((own == truth).mean()),
                               "photos": float((pred == truth).mean()), "agreement": float((pred == own).mean()),
                               "photo_seconds": photo_s}
        folder = root / "pngs"
        write_tree(folder, data.test_x[:a.images] if a.images <= 10000 else
                   np.concatenate([data.test_x, data.train_x])[:a.images],
                   np.concatenate([data.test_y, data.train_y])[:a.images])
        predict_cli(str(model), str(folder), "--workers", "1")  # warm the page cache
        speed = {}
        for label, workers in (("1 process", "1"), ("default pool", "0")):
            _, s = predict_cli(str(model), str(folder), "--workers", workers)
            speed[label] = {"seconds": s, "images_per_s": a.images / s}
        results["speed"] = {"images": a.images, **speed}
    acc = results["accuracy"]
    print(f"{acc['digits']} MNIST test digits: {100 * acc['originals']:.2f} % as they are, "
          f"{100 * acc['photos']:.2f} % as photos ({100 * acc['agreement']:.2f} % agree; "
          f"{acc['photo_seconds']:.1f} s for the photos)")
    print(f"{a.images} PNG files of 28x28, {results['cpus']} CPUs:")
    for label, r in speed.items():
        print(f"  {label:<13} {r['seconds']:6.2f} s  {r['images_per_s']:8,.0f} images/s")
    if a.json:
        Path(a.json).write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
