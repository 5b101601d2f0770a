"""Training-time augmentation of whole batches on the batch's device: pixel shifts, and distortions
(a random affine map and Simard's elastic field), each image with its own draw every epoch.

Shifts of a pixel or two lift an MLP's test accuracy (benchmarks/README.md).
Distortions are what closes the gap to the literature's fully connected nets (99.3 % with elastic
distortions, Simard et al. 2003; 99.65 %, Ciresan et al. 2010); they pay only with long training.

Why not torchvision or kornia: torchvision's ElasticTransform draws one field per call (a batch
gets one warp) with alpha in normalised units, and kornia's defaults are for large images. Here a
batch is one affine sampling grid + `grid_sample` (the elastic field added to the grid), the field
smoothed by two matrix products (a separable Gaussian): a few batched ops, no Python per image, random numbers from
the caller's generator (seeded; on CUDA the device's, so a captured graph replays new draws).
"""
from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F

AFFINE = ("distort_rotate", "distort_scale", "distort_shear", "distort_translate")  # TrainConfig fields


def random_shift(x: torch.Tensor, max_shift: int, background: float, generator: torch.Generator | None,
                 image_shape: tuple[int, int]) -> torch.Tensor:
    """Shift each image of a (B, H*W) or (B, H, W) batch by its own (dy, dx) in [-k, k].

    Pixels shifted in take `background` (the normalised value of a zero pixel).
    """
    if max_shift <= 0:
        return x
    shape = x.shape
    b = len(x)
    h, w = image_shape
    img = x.reshape(b, h, w)
    k = max_shift
    padded = F.pad(img, (k, k, k, k), value=background)
    shifts = _draw((2, b), generator, x.device, lambda s, g, d: torch.randint(0, 2 * k + 1, s, generator=g, device=d))
    rows = (shifts[0][:, None] + torch.arange(h, device=x.device))[:, :, None]  # (B, H, 1)
    cols = (shifts[1][:, None] + torch.arange(w, device=x.device))[:, None, :]  # (B, 1, W)
    out = padded[torch.arange(b, device=x.device)[:, None, None], rows, cols]
    return out.reshape(shape)


def _draw(size: tuple[int, ...], generator: torch.Generator | None, device: torch.device, fn: Any = None
          ) -> torch.Tensor:
    """Random numbers (uniform in [0, 1) by default) made where the generator lives (the CPU's
    seeded one), or on `device` when there is none: a CUDA graph holds only numbers made on the GPU."""
    where = generator.device if generator is not None else device
    fn = fn or (lambda s, g, d: torch.rand(s, generator=g, device=d))
    return fn(size, generator, where).to(device)


def affine_matrices(u: torch.Tensor, rotate: float, scale: float, shear: float, translate: float,
                    image_shape: tuple[int, int]) -> torch.Tensor:
    """(B, 2, 3) maps for affine_grid (normalised coordinates, align_corners=False) from uniform
    draws u (B, 6) in [0, 1): rotation in [-rotate, rotate] degrees, width and height scaled by
    factors in [1 - scale, 1 + scale], shear in [-shear, shear] degrees, a shift of up to
    `translate` pixels each way. Built in pixel units and carried over, so a non-square image turns
    as a picture does, not stretched."""
    h, w = image_shape
    v = 2 * u - 1  # [-1, 1)
    angle, shear_a = v[:, 0] * math.radians(rotate), v[:, 1] * math.radians(shear)
    sx, sy = 1 + v[:, 2] * scale, 1 + v[:, 3] * scale
    cos, sin, tan = torch.cos(angle), torch.sin(angle), torch.tan(shear_a)
    # A = R(angle) @ [[1, tan], [0, 1]] @ diag(sx, sy), in pixels
    a00, a01 = cos * sx, (cos * tan - sin) * sy
    a10, a11 = sin * sx, (sin * tan + cos) * sy
    # to normalised units: D A D^-1 with D = diag(2/W, 2/H); the shift D t
    ratio = w / h
    row0 = torch.stack([a00, a01 / ratio, v[:, 4] * translate * 2 / w], dim=1)
    row1 = torch.stack([a10 * ratio, a11, v[:, 5] * translate * 2 / h], dim=1)
    return torch.stack([row0, row1], dim=1)


def gaussian_kernel(sigma: float, device: torch.device) -> torch.Tensor:
    """A normalised 1-D Gaussian of `sigma` pixels, cut at 3 sigma (at least 3 taps)."""
    radius = max(1, math.ceil(3 * sigma))
    t = torch.arange(-radius, radius + 1, device=device, dtype=torch.float32)
    k = torch.exp(-0.5 * (t / sigma) ** 2)
    return k / k.sum()


def smoothing_matrix(n: int, sigma: float, device: torch.device) -> torch.Tensor:
    """(n, n): M @ v is v convolved with gaussian_kernel(sigma), zero beyond the edge. As a matrix
    product the smoothing of a batch of fields is two batched matmuls, far cheaper on a CPU than
    depthwise convolutions with 25-tap kernels (benchmarks/README.md, Distortions)."""
    k = gaussian_kernel(sigma, device)
    radius = len(k) // 2
    offset = torch.arange(n, device=device)[None, :] - torch.arange(n, device=device)[:, None]  # j - i
    inside = offset.abs() <= radius
    return torch.where(inside, k[(offset + radius).clamp(0, 2 * radius)], torch.zeros((), device=device))


def elastic_field(u: torch.Tensor, alpha: float, sigma: float) -> torch.Tensor:
    """Simard's displacement field in pixels from uniform draws u (B, 2, H, W) in [0, 1): uniform
    [-1, 1] per pixel, smoothed by a Gaussian of `sigma` pixels (zero beyond the edge), scaled by `alpha`."""
    h, w = u.shape[-2:]
    rows, cols = smoothing_matrix(h, sigma, u.device), smoothing_matrix(w, sigma, u.device)
    return (alpha * rows) @ (2 * u - 1) @ cols.T


def sampling_grid(theta: torch.Tensor, h: int, w: int) -> torch.Tensor:
    """F.affine_grid(theta, (B, 1, h, w), align_corners=False), as broadcast products: twice as fast on
    a CPU for small images, where affine_grid's batched matmul has an inner size of 3."""
    xs = (torch.arange(w, device=theta.device, dtype=theta.dtype) * 2 + 1) / w - 1  # pixel centres
    ys = ((torch.arange(h, device=theta.device, dtype=theta.dtype) * 2 + 1) / h - 1)[:, None]
    t = theta[:, :, :, None, None]  # (B, 2, 3, 1, 1)
    gx = torch.addcmul(t[:, 0, 2] + t[:, 0, 0] * xs, t[:, 0, 1], ys)
    gy = torch.addcmul(t[:, 1, 2] + t[:, 1, 0] * xs, t[:, 1, 1], ys)
    return torch.stack([gx, gy], dim=-1)


def distort(x: torch.Tensor, cfg: Any, background: float, generator: torch.Generator | None,
            image_shape: tuple[int, int]) -> torch.Tensor:
    """Each image of a (B, H*W) or (B, H, W) batch through its own random affine map and elastic
    field (cfg's distort_* and elastic_* fields); pixels from outside the image take `background`."""
    affine = any(getattr(cfg, f) for f in AFFINE)
    elastic = cfg.elastic_alpha > 0
    if not (affine or elastic):
        return x
    shape, b = x.shape, len(x)
    h, w = image_shape
    if affine:
        theta = affine_matrices(_draw((b, 6), generator, x.device), cfg.distort_rotate, cfg.distort_scale,
                                cfg.distort_shear, cfg.distort_translate, image_shape)
    else:
        theta = torch.eye(2, 3, device=x.device).expand(b, 2, 3)
    grid = sampling_grid(theta.to(x.dtype), h, w)  # (B, H, W, 2): x, y
    if elastic:
        field = elastic_field(_draw((b, 2, h, w), generator, x.device), cfg.elastic_alpha, cfg.elastic_sigma)
        scale = torch.tensor([2 / w, 2 / h], device=x.device, dtype=x.dtype)
        grid = grid + field.permute(0, 2, 3, 1).to(x.dtype) * scale
    img = x.reshape(b, 1, h, w) - background  # zero padding then reads as the background
    out = F.grid_sample(img, grid, mode="bilinear", padding_mode="zeros", align_corners=False) + background
    return out.reshape(shape)


def augment(x: torch.Tensor, cfg: Any, background: float, generator: torch.Generator | None,
            image_shape: tuple[int, int]) -> torch.Tensor:
    """A training batch as cfg (TrainConfig) augments it: shifted, then distorted."""
    if cfg.augment_shift:
        x = random_shift(x, cfg.augment_shift, background, generator, image_shape)
    return distort(x, cfg, background, generator, image_shape)
