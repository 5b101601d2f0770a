"""A photo or scan of one handwritten character -> an image made the way MNIST's were.

MNIST's digits were size-normalised to fit a 20x20 box (aspect ratio kept, anti-aliased), then
placed in a 28x28 image so that their centre of mass sits at the centre, white ink on black. A
photo of a digit on paper is dark ink on a light, noisy, unevenly lit page, of any size, anywhere
in the frame. `prepare` undoes that, step by step:

1. greyscale, as data.image_file.decode reads every image file (16-bit samples, transparency and
   colour are mapped there, the same way as for training data);
2. invert when the border (the page) is lighter than the ink;
3. flatten the light: a plane fitted to the border is subtracted, so a gradient across the page
   does not read as ink; the border's spread sets a noise floor, and what is not clearly above it
   (and specks far smaller than the largest stroke) is background;
4. crop to the ink's bounding box and scale its longer side to the box (20/28 of the image);
5. paste it so its centre of mass is at the centre (moved back inside if that would cut it).

For another data set the same steps run at its image shape; they assume what MNIST assumes:
one light-on-dark (after step 2) object per image, centred by mass, filling about 70 % of the
frame. The result is mapped onto the training pixels' range (0-255 for MNIST).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from common.errors import DataError

BOX = 20 / 28  # the share of the image MNIST's box takes
WORK_SIDE = 256  # larger photos are shrunk to this before the search for ink (speed; 20 px is the goal)
NOISE_SIGMAS = 4.0  # ink is this many border standard deviations above the page...
MIN_CONTRAST = 0.2  # ...and at least this share of the way from the page to the darkest ink
MIN_SPECK = 0.05  # ink blobs smaller than this share of the largest are noise
CROSS = np.array([[0, 1, 0], [1, 1, 1], [0, 1, 0]], bool)  # 4-connected neighbours


def _border(x: np.ndarray) -> np.ndarray:
    """A mask of the outer band (1/16 of the smaller side, at least one pixel)."""
    band = max(1, min(x.shape) // 16)
    mask = np.zeros(x.shape, bool)
    mask[:band], mask[-band:], mask[:, :band], mask[:, -band:] = True, True, True, True
    return mask


def _shrink(grey: np.ndarray) -> np.ndarray:
    """Area-average a large photo down to WORK_SIDE on its longer side."""
    from PIL import Image

    h, w = grey.shape
    if max(h, w) <= WORK_SIDE:
        return grey.astype(np.float32)
    k = WORK_SIDE / max(h, w)
    size = (max(1, round(w * k)), max(1, round(h * k)))
    return np.asarray(Image.fromarray(grey.astype(np.float32), "F").resize(size, Image.Resampling.BOX))


def _page(x: np.ndarray, edge: np.ndarray, rounds: int = 3) -> np.ndarray:
    """The page's light as a plane a + b*row + c*col, fitted to the border; border pixels far from
    the fit (ink that reaches the edge) are dropped and the fit repeated."""
    values = x[edge]
    if values.min() == values.max():  # a flat page (a clean digital image): nothing to fit
        return np.full(x.shape, values[0], np.float32)
    rows, cols = np.nonzero(edge)
    design = np.c_[rows, cols, np.ones(len(rows))]
    use = np.ones(len(values), bool)
    for _ in range(rounds):
        coef, *_ = np.linalg.lstsq(design[use], values[use], rcond=None)
        resid = values - design @ coef
        spread = 1.4826 * float(np.median(np.abs(resid[use] - np.median(resid[use]))))
        keep = np.abs(resid - np.median(resid[use])) <= 3 * spread + 1e-3
        if keep.sum() < 3 or (keep == use).all():
            break
        use = keep
    yy, xx = np.mgrid[: x.shape[0], : x.shape[1]]
    return (coef[0] * yy + coef[1] * xx + coef[2]).astype(np.float32)


def ink(grey: np.ndarray) -> np.ndarray:
    """Steps 2-3: float32 ink strength in [0, 1] (0 = page), same shape as `grey`."""
    from scipy import ndimage

    x = grey.astype(np.float32)
    edge = _border(x)
    r = x - _page(x, edge)
    flat = not r[edge].any()  # a clean page: no noise to filter
    smooth = r if flat else ndimage.median_filter(r, size=3)  # single noisy pixels cannot decide anything below
    if -smooth.min() > smooth.max():  # the strongest departure from the page is darker: dark ink
        r, smooth = -r, -smooth
    spread = 0.0 if flat else 1.4826 * float(np.median(np.abs(r[edge] - np.median(r[edge]))))  # robust std
    peak = float(smooth.max()) if smooth.max() > 0 else float(r.max())
    floor = max(NOISE_SIGMAS * spread, MIN_CONTRAST * peak, 1e-6)
    strong = r > floor
    labels, n = ndimage.label(strong, CROSS)
    if n > 1:
        sizes = np.bincount(labels.ravel())
        sizes[0] = 0
        strong = (sizes >= MIN_SPECK * sizes.max())[labels]  # a lookup per blob: np.isin is slower
    if not strong.any():
        return np.zeros_like(x)
    # hysteresis: fainter ink connected to the kept strokes (their anti-aliased rims) stays, within
    # a few pixels of them, so uneven light cannot creep in through it
    weak, m = ndimage.label(r > NOISE_SIGMAS * spread + 1e-6, CROSS)
    reach = ndimage.binary_dilation(strong, CROSS, iterations=max(1, round(max(x.shape) / 64)))
    linked = np.zeros(m + 1, bool)
    linked[weak[strong]] = True
    linked[0] = False
    near = linked[weak] & reach
    ink_values = r[strong]
    k = int(0.99 * (len(ink_values) - 1))
    top = float(np.partition(ink_values, k)[k])  # the 99th percentile, without np.percentile's overhead
    return np.clip((r - NOISE_SIGMAS * spread) / max(top - NOISE_SIGMAS * spread, 1e-6), 0.0, 1.0) * near


def place(strength: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Steps 4-5: crop, scale into the box, centre by mass; float32 (H, W) in [0, 1]."""
    from PIL import Image

    h, w = shape
    out = np.zeros(shape, np.float32)
    rows, cols = np.nonzero(strength > 0)
    if not len(rows):
        return out
    crop = strength[rows.min(): rows.max() + 1, cols.min(): cols.max() + 1]
    box_h, box_w = max(1, round(h * BOX)), max(1, round(w * BOX))
    k = min(box_h / crop.shape[0], box_w / crop.shape[1])
    size = (max(1, round(crop.shape[1] * k)), max(1, round(crop.shape[0] * k)))
    method = Image.Resampling.BOX if k < 1 else Image.Resampling.BILINEAR
    patch = np.clip(np.asarray(Image.fromarray(crop.astype(np.float32), "F").resize(size, method)), 0, 1)
    if patch.max() <= 0:
        return out
    patch = patch / patch.max()  # resampling blurs; the strongest ink is full ink again, as in MNIST
    ph, pw = patch.shape
    total = float(patch.sum())
    cy = float((patch.sum(1) * np.arange(ph)).sum() / total)
    cx = float((patch.sum(0) * np.arange(pw)).sum() / total)
    top = int(np.clip(round(h / 2 - cy), 0, h - ph))  # MNIST: the centre of mass at (14.0, 14.0)
    left = int(np.clip(round(w / 2 - cx), 0, w - pw))
    out[top: top + ph, left: left + pw] = patch
    return out


def prepare(grey: np.ndarray, shape: tuple[int, int], pixel_range: tuple[float, float] = (0.0, 255.0)
            ) -> np.ndarray:
    """A greyscale photo (any size, uint8 or float 0-255) -> float32 (H, W) in the training pixels' range."""
    lo, hi = pixel_range
    return lo + place(ink(_shrink(np.asarray(grey))), shape) * (hi - lo)


PARALLEL_FROM = 2000  # below this many files, one process (a worker pool costs ~0.3 s to start)
CHUNK = 250  # files per task handed to a worker


def read_photo(path: str | Path, shape: tuple[int, int], pixel_range: tuple[float, float], as_is: bool = False
               ) -> np.ndarray:
    """One image file as the model's input: prepared like MNIST, or (as_is) only resized to `shape`.

    The file is decoded by data.image_file.decode, the reader --image-dir training data goes through,
    so --as-is sees exactly the pixels the model was trained on; a file it refuses is a DataError.
    """
    from data.image_file import decode

    if as_is:
        return decode(path, shape).astype(np.float32)
    return prepare(decode(path), shape, pixel_range)


def _read_chunk(task: tuple) -> list[np.ndarray | str]:
    """A worker's share: each file's array, or the one-line error that names it."""
    paths, shape, pixel_range, as_is = task
    out: list[np.ndarray | str] = []
    for p in paths:
        try:
            out.append(read_photo(p, shape, pixel_range, as_is))
        except DataError as e:
            out.append(str(e))
    return out


def read_photos(paths: list[str], shape: tuple[int, int], pixel_range: tuple[float, float], as_is: bool = False,
                workers: int | None = None) -> list[np.ndarray | str]:
    """Every file's input array (or its one-line error naming the file, as text: unreadable, too
    large, gone, a broken link), in order, so one bad file never stops the others; many files go to
    a process pool (preparing a photo is Python-bound: threads would not help)."""
    import os

    workers = workers or len(os.sched_getaffinity(0))
    tasks = [(paths[i: i + CHUNK], shape, pixel_range, as_is) for i in range(0, len(paths), CHUNK)]
    if len(paths) < PARALLEL_FROM or workers < 2:
        return [a for t in tasks for a in _read_chunk(t)]
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    # forkserver: the workers start clean, not as forks of a process that holds torch's threads
    with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("forkserver")) as pool:
        return [a for chunk in pool.map(_read_chunk, tasks) for a in chunk]
