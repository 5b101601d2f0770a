"""Files written whole or not at all (write a temp file beside the target, then rename).

A crash mid-write never leaves a half-written table or report behind.
"""
from __future__ import annotations

import json
import math
import os
import tempfile
from pathlib import Path
from typing import Any, Callable


def _file_mode() -> int:
    """What open() would give a new file under this process's umask (mkstemp's files are 0600)."""
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


FILE_MODE = _file_mode()


def atomic_write(path: str | Path, write: Callable[[Path], Any], suffix: str = ".tmp") -> Path:
    """Call write(tmp_path) then os.replace(tmp_path, path); the temp file is removed on failure.

    `suffix` ends the temp file's name, for writers that choose a format by it (ONNX's ".onnx").

    The file gets the mode a plain open() would (0644 under the usual umask), not mkstemp's 0600:
    results and models are meant to be read by others, a service's user among them.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=suffix)
    os.close(fd)
    try:
        write(Path(tmp))
        os.chmod(tmp, FILE_MODE)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def write_json(path: str | Path, obj: Any) -> Path:
    """Strict JSON: NaN and infinities become null (strict readers reject a bare NaN)."""
    text = json.dumps(strict(obj), indent=2, allow_nan=False)
    return atomic_write(path, lambda p: p.write_text(text + "\n"))


def strict(o: Any) -> Any:
    """`o` as plain JSON values: arrays/tensors as lists, paths as strings, non-finite floats as None."""
    if isinstance(o, dict):
        return {str(k): strict(v) for k, v in o.items()}
    if isinstance(o, (list, tuple)):
        return [strict(v) for v in o]
    if isinstance(o, float) or (hasattr(o, "dtype") and getattr(o, "ndim", 1) == 0 and hasattr(o, "item")):
        v = o.item() if hasattr(o, "item") else o
        return None if isinstance(v, float) and not math.isfinite(v) else v
    if o is None or isinstance(o, (str, int, bool)):
        return o
    return strict(_default(o))


def save_figure(fig: Any, path: str | Path, dpi: int = 110) -> Path:
    """Save a matplotlib Figure atomically and close it (figures hold memory until closed)."""
    from common.plotting import plt

    fmt = Path(path).suffix.lstrip(".") or "png"
    try:
        return atomic_write(path, lambda p: fig.savefig(p, dpi=dpi, format=fmt))
    finally:
        plt.close(fig)


def _default(o: Any) -> Any:
    if hasattr(o, "tolist"):
        return o.tolist()
    if isinstance(o, Path):
        return str(o)
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")
