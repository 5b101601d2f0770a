"""Reading an image folder: decoding every PNG against a read from the decoded-array cache.

The first N packaged MNIST digits (training then test) are written as DIR/<digit>/<i>.png (28x28
greyscale), then `data.images.read_image_folder` reads the tree with the cache off (every file
decoded) and with it on and warm (what every read after the first gets). Each case runs `--repeats`
times from a warm page cache; the best time is reported, with images/s and the ratio to decoding.
Run: python -m benchmarks.images [--images 10000] [--repeats 3] [--json PATH]
"""
from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

import numpy as np


def write_tree(root: Path, images: np.ndarray, labels: np.ndarray) -> None:
    from PIL import Image

    for i, (x, y) in enumerate(zip(images, labels)):
        folder = root / str(int(y))
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray(x).save(folder / f"{i:05d}.png")


def best_time(fn, repeats: int) -> float:
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def main(argv: list[str] | None = None) -> None:
    from data.images import CACHE_ENV, read_image_folder
    from data.source import DataConfig, load_dataset

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--images", type=int, default=10000, help="PNG files to write and read (at most 70,000)")
    p.add_argument("--repeats", type=int, default=3, help="timed reads per case; the best is reported")
    p.add_argument("--json", metavar="PATH", help="also write the numbers here as JSON")
    a = p.parse_args(argv)
    data = load_dataset(DataConfig())
    images = np.concatenate([data.train_x, data.test_x])[:a.images]
    labels = np.concatenate([data.train_y, data.test_y])[:a.images]
    with tempfile.TemporaryDirectory() as d:
        root = Path(d) / "digits"
        os.environ[CACHE_ENV] = str(Path(d) / "cache")
        t0 = time.perf_counter()
        write_tree(root, images, labels)
        write_s = time.perf_counter() - t0
        read_image_folder(root)  # warm the page cache, Pillow's plugins and the decoded-array cache
        rows = {}
        for label, cache in (("decode", False), ("from cache", True)):
            s = best_time(lambda: read_image_folder(root, cache=cache), a.repeats)
            rows[label] = {"seconds": s, "images_per_s": a.images / s}
        check = read_image_folder(root)
        assert np.array_equal(np.sort(check.images.reshape(len(check.images), -1).sum(1)),
                              np.sort(images.reshape(len(images), -1).sum(1, dtype=np.int64)))
    cpus = len(os.sched_getaffinity(0))
    print(f"{a.images} PNG files of 28x28 (written in {write_s:.1f} s), {cpus} CPUs, best of {a.repeats}:")
    for label, r in rows.items():
        ratio = rows["decode"]["seconds"] / r["seconds"]
        print(f"  {label:<13} {r['seconds']:6.2f} s  {r['images_per_s']:8,.0f} images/s  x{ratio:.2f}")
    if a.json:
        Path(a.json).write_text(json.dumps({"images": a.images, "cpus": cpus, "rows": rows}, indent=2))


if __name__ == "__main__":
    main()
