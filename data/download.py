"""Fetch the MNIST IDX files from public mirrors, verified and safe to run from many trials at once.

Each file is checked against the published MD5 of its decompressed bytes
before it is moved into place, and an exclusive lock on the data folder makes
parallel trials wait for one download instead of each fetching their own.
"""

from __future__ import annotations

import fcntl
import functools
import http.client
import logging
import shutil
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from pathlib import Path

from common.errors import DataError
from data.idx import MNIST_FILES, atomic_write_shared, find_idx, md5_of_idx

logger = logging.getLogger(__name__)

# The usual public mirrors (yann.lecun.com itself now often refuses or needs a login).
DEFAULT_MIRRORS: list[str] = [
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "https://storage.googleapis.com/cvdf-datasets/mnist/",
]

LOCK_NAME = ".download.lock"
_CHUNK = 1 << 20
_USER_AGENT = "digit-tune (python urllib)"


class _BadFile(Exception):
    """A mirror answered, but with something that is not the expected file."""


def _present(data_dir: Path, name: str) -> bool:
    """True when name.gz or the raw name is already in data_dir."""
    return (data_dir / f"{name}.gz").is_file() or (data_dir / name).is_file()


def _reason(exc: BaseException, timeout: float) -> str:
    """One short, single-line reason for a failed mirror, for the log and the final error."""
    if isinstance(exc, urllib.error.HTTPError):
        text = f"HTTP {exc.code} {exc.reason}"
    elif isinstance(exc, urllib.error.URLError):
        reason = exc.reason
        text = f"timed out after {timeout:g} s" if isinstance(reason, TimeoutError) else str(reason)
    elif isinstance(exc, TimeoutError):
        text = f"timed out after {timeout:g} s"
    else:
        text = str(exc) or type(exc).__name__
    return " ".join(text.split())


def _fetch_verified(url: str, md5: str, timeout: float, tmp: Path) -> None:
    """Stream url into tmp, then raise _BadFile unless its decompressed bytes have the expected MD5."""
    request = urllib.request.Request(url, headers={"User-Agent": _USER_AGENT})
    with urllib.request.urlopen(request, timeout=timeout) as response, tmp.open("wb") as out:
        shutil.copyfileobj(response, out, _CHUNK)  # streamed: no whole-file buffering
    try:
        actual = md5_of_idx(tmp)
    except DataError as e:
        raise _BadFile(str(e).removeprefix(f"{tmp}: ")) from e
    if actual != md5.lower():
        raise _BadFile(f"checksum mismatch: md5 {actual}, expected {md5}")


def _download_one(data_dir: Path, name: str, md5: str, mirrors: Sequence[str], timeout: float) -> None:
    """Try each mirror in order until one gives a verified file; else one DataError listing all failures."""
    target = data_dir / f"{name}.gz"
    failures: list[str] = []
    for mirror in mirrors:
        url = f"{mirror.rstrip('/')}/{name}.gz"
        logger.info("downloading %s", url)
        try:  # the temp file is removed on any failure, and only a verified file is moved into place
            atomic_write_shared(target, functools.partial(_fetch_verified, url, md5, timeout))
        except (OSError, http.client.HTTPException, ValueError, _BadFile) as e:
            reason = _reason(e, timeout)
            logger.warning("%s: %s; trying the next mirror", url, reason)
            failures.append(f"{mirror}: {reason}")
            continue
        logger.info("saved %s (md5 verified)", target)
        return
    tried = "; ".join(failures) if failures else "no mirrors given"
    raise DataError(f"{target}: download failed from every mirror ({tried})")


def download_mnist(
    data_dir: Path,
    mirrors: Sequence[str] = DEFAULT_MIRRORS,
    files: Mapping[str, str] = MNIST_FILES,
    timeout: float = 30.0,
) -> list[Path]:
    """Make sure every file in `files` (base name -> MD5 of decompressed bytes) is in data_dir.

    Missing ones are fetched as <mirror><name>.gz under an exclusive lock on
    data_dir/.download.lock, so concurrent trials download each file once.
    Returns the paths now present, in the order of `files`.
    """
    data_dir = Path(data_dir)
    missing = [name for name in files if not _present(data_dir, name)]
    if missing:
        made = [d for d in (data_dir, *data_dir.parents) if not d.exists()]  # deepest first
        had_lock = (data_dir / LOCK_NAME).exists()
        try:
            data_dir.mkdir(parents=True, exist_ok=True)
            lock = (data_dir / LOCK_NAME).open("a")
        except OSError as e:
            raise DataError(f"{data_dir}: cannot create the download folder or lock: {e.strerror or e}") from e
        saved = 0
        try:
            with lock:
                logger.debug("waiting for %s", data_dir / LOCK_NAME)
                try:
                    fcntl.flock(lock.fileno(), fcntl.LOCK_EX)  # released when the file is closed
                except OSError as e:  # e.g. a network file system without flock support
                    raise DataError(f"{data_dir / LOCK_NAME}: cannot lock: {e.strerror or e}") from e
                for name in missing:
                    if _present(data_dir, name):  # another process fetched it while we waited
                        logger.debug("%s: already downloaded by another process", name)
                        continue
                    _download_one(data_dir, name, files[name], mirrors, timeout)
                    saved += 1
        except DataError:
            if not saved:  # nothing fetched: leave the disk as it was (verified files are kept for next time)
                _undo(data_dir / LOCK_NAME, had_lock, made)
            raise
    return [find_idx(data_dir, name) for name in files]


def _undo(lock: Path, had_lock: bool, made: list[Path]) -> None:
    """Remove the lock file and the folders a failed download created, where nothing else arrived in them."""
    try:
        if not had_lock:
            lock.unlink(missing_ok=True)
        for d in made:
            d.rmdir()  # fails, and stops, at a folder that is not empty
    except OSError:
        pass
