"""Read and write MNIST-style IDX files (images and labels; unsigned bytes as MNIST, or any IDX number type).

The loader checks everything a damaged or mismatched file can get wrong
(gzip wrapper, magic, dimensions, length, checksum) so that a bad file stops
a tuning run at once with a one-line DataError instead of poisoning trials.
"""

from __future__ import annotations

import gzip
import hashlib
import logging
import os
import time
import zlib
from pathlib import Path
from typing import Callable

import numpy as np

from common.atomic import atomic_write
from common.errors import DataError

logger = logging.getLogger(__name__)

# Published MD5s of the *decompressed* files (see data/raw/README.md): the gzip
# wrappers differ between mirrors, the payload does not.
MNIST_FILES: dict[str, str] = {
    "train-images-idx3-ubyte": "6bbc9ace898e44ae57da46a324031adb",
    "train-labels-idx1-ubyte": "a25bea736e30d166cdddb491f175f624",
    "t10k-images-idx3-ubyte": "2646ac647ad5339dbf082846283269ea",
    "t10k-labels-idx1-ubyte": "27ae3e4e09519cfbb04c329615203637",
}

GZIP_MAGIC = b"\x1f\x8b"
UBYTE = 0x08
LABELS_MAGIC = 0x00000801  # 2049: ubyte, 1 dim
IMAGES_MAGIC = 0x00000803  # 2051: ubyte, 3 dims
_KNOWN_MAGIC = {LABELS_MAGIC: "labels", IMAGES_MAGIC: "images"}
# IDX's number types (third header byte) and their big-endian numpy dtypes.
IDX_TYPES: dict[int, str] = {0x08: "u1", 0x09: "i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def atomic_write_shared(path: str | Path, write: Callable[[Path], object]) -> Path:
    """common.atomic.atomic_write, plus mode 0644: mkstemp makes 0600 files, but datasets are shared."""

    def write_then_chmod(tmp: Path) -> None:
        write(tmp)
        os.chmod(tmp, 0o644)

    return atomic_write(path, write_then_chmod)


def _load_bytes(path: Path) -> bytes:
    """Return the file's content, gunzipped when it starts with the gzip magic."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError as e:
        raise DataError(f"{path}: file not found") from e
    except IsADirectoryError as e:
        raise DataError(f"{path}: is a directory, expected a file") from e
    except OSError as e:
        raise DataError(f"{path}: cannot read: {e.strerror or e}") from e
    if not raw:
        raise DataError(f"{path}: empty file (0 bytes)")
    if raw[:2] != GZIP_MAGIC:
        return raw
    try:
        data = gzip.decompress(raw)
    except (OSError, EOFError, zlib.error) as e:
        raise DataError(f"{path}: corrupt gzip data ({e})") from e
    if not data:
        raise DataError(f"{path}: empty file (gzip holds 0 bytes)")
    return data


def md5_of_idx(path: str | Path) -> str:
    """MD5 of the decompressed bytes: the value published for MNIST, whatever the gzip wrapper."""
    return hashlib.md5(_load_bytes(Path(path))).hexdigest()


def _expected_magic(path: Path) -> tuple[int, ...]:
    """Guess the intended kind from the file name, so the error can say what was expected."""
    name = path.name.lower()
    if "images" in name:
        return (IMAGES_MAGIC,)
    if "labels" in name:
        return (LABELS_MAGIC,)
    return (LABELS_MAGIC, IMAGES_MAGIC)


def _parse(path: Path, data: bytes) -> np.ndarray:
    """Check the header against the payload length and return the payload as a uint8 array."""
    if len(data) < 4:
        raise DataError(f"{path}: truncated header ({len(data)} bytes, need at least 4)")
    magic = int.from_bytes(data[:4], "big")
    expected = _expected_magic(path)
    kind = data[2] if data[:2] == b"\0\0" and data[2] in IDX_TYPES else UBYTE
    if (magic & ~0xFF00) | (UBYTE << 8) not in expected:  # the dimension count, whatever the number type
        want = " or ".join(f"{m} for {_KNOWN_MAGIC[m]}" for m in expected)
        hint = ""
        if data[:2] == b"\0\0" and data[2] not in IDX_TYPES:
            hint = f"; data type 0x{data[2]:02X} unknown (IDX has 0x08, 0x09, 0x0B, 0x0C, 0x0D, 0x0E)"
        raise DataError(f"{path}: wrong magic number {magic} (expected {want}{hint})")
    ndim = data[3]
    header_len = 4 + 4 * ndim
    if len(data) < header_len:
        raise DataError(
            f"{path}: truncated header ({len(data)} bytes, need {header_len} for {ndim} dims)"
        )
    dims = tuple(int(d) for d in np.frombuffer(data, dtype=">i4", count=ndim, offset=4))
    if any(d < 0 for d in dims):
        raise DataError(f"{path}: negative dimension in header {dims}")
    item = np.dtype(IDX_TYPES[kind]).itemsize
    need = int(np.prod(dims, dtype=np.int64)) * item
    have = len(data) - header_len
    shape = " x ".join(map(str, dims))
    if have < need:
        raise DataError(f"{path}: truncated data (header says {shape} = {need} bytes, found {have})")
    if have > need:
        raise DataError(f"{path}: {have - need} trailing bytes after the {need} data bytes ({shape})")
    # Copy once (into native byte order) so callers get an ordinary writable array, not a view of bytes.
    raw = np.frombuffer(data, dtype=IDX_TYPES[kind], offset=header_len).reshape(dims)
    return raw.astype(raw.dtype.newbyteorder("="))


def read_idx(path: str | Path, *, expected_md5: str | None = None) -> np.ndarray:
    """Read an IDX file (gzipped or raw) as (N,) labels or (N, rows, cols) images, uint8 for MNIST's
    unsigned bytes and the matching numpy type for IDX's other number types.

    Gzip is detected by content, not suffix, so renamed files still load.
    `expected_md5` is compared with the decompressed bytes.
    """
    path = Path(path)
    start = time.perf_counter()
    data = _load_bytes(path)
    array = _parse(path, data)
    if expected_md5 is not None:
        actual = hashlib.md5(data).hexdigest()
        if actual != expected_md5.lower():
            raise DataError(f"{path}: checksum mismatch: md5 {actual}, expected {expected_md5}")
    logger.debug("read %s: shape %s in %.3f s", path, array.shape, time.perf_counter() - start)
    return array


def write_idx(path: str | Path, array: np.ndarray, *, gzip_compress: bool | None = None) -> None:
    """Write an array of ndim 1 (labels) or 3 (images) as IDX, atomically, in its IDX number type.

    Gzipped when the path ends with .gz unless `gzip_compress` says otherwise;
    lets tests and users build their own datasets in the format read_idx reads.
    """
    path = Path(path)
    array = np.asarray(array)
    codes = {np.dtype(t).newbyteorder("="): k for k, t in IDX_TYPES.items()}
    if array.dtype.newbyteorder("=") not in codes:
        raise DataError(f"{path}: cannot write IDX from dtype {array.dtype}, expected uint8, int8, int16, int32, "
                        "float32 or float64")
    code = codes[array.dtype.newbyteorder("=")]
    if array.ndim not in (1, 3):
        raise DataError(f"{path}: cannot write IDX with {array.ndim} dims, expected 1 or 3")
    if gzip_compress is None:
        gzip_compress = path.name.endswith(".gz")
    header = bytes([0, 0, code, array.ndim]) + np.asarray(array.shape, dtype=">i4").tobytes()
    payload = header + np.ascontiguousarray(array, dtype=IDX_TYPES[code]).tobytes()
    if gzip_compress:
        payload = gzip.compress(payload, compresslevel=6, mtime=0)
    try:
        atomic_write_shared(path, lambda tmp: tmp.write_bytes(payload))
    except OSError as e:
        raise DataError(f"{path}: cannot write: {e.strerror or e}") from e
    logger.debug("wrote %s: shape %s", path, array.shape)


def find_idx(data_dir: str | Path, base_name: str) -> Path:
    """Return data_dir/base_name.gz, else data_dir/base_name: users may keep either form."""
    data_dir = Path(data_dir)
    for candidate in (data_dir / f"{base_name}.gz", data_dir / base_name):
        if candidate.is_file():
            return candidate
    raise DataError(f"{data_dir}: neither {base_name}.gz nor {base_name} found in this folder")
