"""Rules for download_mnist, against a real local HTTP server with a bad and a good mirror."""

from __future__ import annotations

import functools
import gzip
import http.server
import logging
import shutil
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest

from data.download import LOCK_NAME, download_mnist
from common.errors import DataError
from data.idx import MNIST_FILES, md5_of_idx, read_idx, write_idx

RAW = Path(__file__).resolve().parents[1] / "data" / "raw"
REAL_LABELS = "t10k-labels-idx1-ubyte"
SLOW_SECONDS = 0.5


class _Server(http.server.ThreadingHTTPServer):
    """Counts requests; stays quiet when a client (a timed-out download) hangs up."""

    requests: list[str]
    lock: threading.Lock
    delay: float

    def handle_error(self, request: object, client_address: object) -> None:
        pass


class _Handler(http.server.SimpleHTTPRequestHandler):
    server: _Server

    def do_GET(self) -> None:
        with self.server.lock:
            self.server.requests.append(self.path)
        if self.path.startswith("/slow/"):
            time.sleep(SLOW_SECONDS)
        time.sleep(self.server.delay)
        super().do_GET()

    def log_message(self, format: str, *args: object) -> None:
        pass


@dataclass
class Mirrors:
    root: Path
    url: str
    server: _Server
    files: dict[str, str] = field(default_factory=dict)

    @property
    def good(self) -> str:
        return f"{self.url}/good/"

    @property
    def bad(self) -> str:
        return f"{self.url}/bad/"

    def requests(self, prefix: str = "/") -> list[str]:
        with self.server.lock:
            return [p for p in self.server.requests if p.startswith(prefix)]


def _flip(data: bytes) -> bytes:
    """Damage the deflate stream of a gzip so it can no longer be decompressed."""
    damaged = bytearray(data)
    for k in range(20, min(60, len(damaged) - 8)):
        damaged[k] ^= 0xFF
    return bytes(damaged)


@pytest.fixture()
def mirrors(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Mirrors]:
    """Serve good/ (correct files) and bad/ (wrong content, corrupt gzip, or missing) on 127.0.0.1."""
    root = tmp_path_factory.mktemp("www")  # apart from tmp_path, where the downloads land
    good, bad = root / "good", root / "bad"
    good.mkdir()
    bad.mkdir()
    images = read_idx(RAW / "t10k-images-idx3-ubyte.gz")[:100]
    labels = read_idx(RAW / f"{REAL_LABELS}.gz")[:100]
    write_idx(good / "small-images-idx3-ubyte.gz", images)
    write_idx(good / "small-labels-idx1-ubyte.gz", labels)
    write_idx(good / "tiny-labels-idx1-ubyte.gz", labels[:10])
    shutil.copy(RAW / f"{REAL_LABELS}.gz", good / f"{REAL_LABELS}.gz")
    # bad/: a valid gzip of the wrong images, two damaged gzips, and no tiny-labels at all (HTTP 404).
    write_idx(bad / "small-images-idx3-ubyte.gz", images[::-1].copy())
    (bad / "small-labels-idx1-ubyte.gz").write_bytes(_flip((good / "small-labels-idx1-ubyte.gz").read_bytes()))
    (bad / f"{REAL_LABELS}.gz").write_bytes(_flip((RAW / f"{REAL_LABELS}.gz").read_bytes()))
    files = {n: md5_of_idx(good / f"{n}.gz") for n in ("small-images-idx3-ubyte", "small-labels-idx1-ubyte", "tiny-labels-idx1-ubyte")}

    server = _Server(("127.0.0.1", 0), functools.partial(_Handler, directory=str(root)))
    server.requests, server.lock, server.delay = [], threading.Lock(), 0.0
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield Mirrors(root, f"http://127.0.0.1:{server.server_address[1]}", server, files)
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def _leftovers(folder: Path, files: dict[str, str]) -> set[str]:
    """Anything in folder besides the expected .gz files and the lock: temp files, partial files."""
    return {p.name for p in folder.iterdir()} - {f"{n}.gz" for n in files} - {LOCK_NAME}


# Rule: with [bad, good] every file ends up present and verified, bad tried first, no temp files left.
def test_bad_mirror_then_good(tmp_path: Path, mirrors: Mirrors) -> None:
    dest = tmp_path / "new" / "data"  # also: the folder is created
    paths = download_mnist(dest, [mirrors.bad, mirrors.good], files=mirrors.files, timeout=5)
    assert paths == [dest / f"{n}.gz" for n in mirrors.files]
    for name, md5 in mirrors.files.items():
        assert md5_of_idx(dest / f"{name}.gz") == md5
        asked = [p for p in mirrors.requests() if p.endswith(f"/{name}.gz")]
        assert asked == [f"/bad/{name}.gz", f"/good/{name}.gz"]
    assert _leftovers(dest, mirrors.files) == set()


# Rule: the real t10k labels download from a local mirror and pass MNIST's published MD5.
def test_real_labels_file(tmp_path: Path, mirrors: Mirrors) -> None:
    files = {REAL_LABELS: MNIST_FILES[REAL_LABELS]}
    [path] = download_mnist(tmp_path, [mirrors.bad, mirrors.good], files=files, timeout=5)
    labels = read_idx(path, expected_md5=MNIST_FILES[REAL_LABELS])
    assert labels.shape == (10000,)
    assert mirrors.requests() == [f"/bad/{REAL_LABELS}.gz", f"/good/{REAL_LABELS}.gz"]


# Rule: when every mirror fails, one one-line DataError names the file and each mirror's reason.
@pytest.mark.parametrize(
    "name, reason",
    [
        ("small-images-idx3-ubyte", "checksum mismatch"),
        ("small-labels-idx1-ubyte", "corrupt gzip"),
        ("tiny-labels-idx1-ubyte", "HTTP 404"),
    ],
)
def test_only_bad_mirror_fails(tmp_path: Path, mirrors: Mirrors, name: str, reason: str) -> None:
    with pytest.raises(DataError) as info:
        download_mnist(tmp_path, [mirrors.bad], files={name: mirrors.files[name]}, timeout=5)
    message = str(info.value)
    assert f"{name}.gz" in message and mirrors.bad in message and reason in message
    assert "\n" not in message
    assert _leftovers(tmp_path, {}) == set()  # nothing saved, no temp file left


# Rule: an unreachable mirror (closed port) is logged and skipped, and the next one is used.
def test_unreachable_mirror_skipped(tmp_path: Path, mirrors: Mirrors, caplog: pytest.LogCaptureFixture) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{s.getsockname()[1]}/mnist/"
    with caplog.at_level(logging.WARNING, logger="data.download"):
        paths = download_mnist(tmp_path, [closed, mirrors.good], files=mirrors.files, timeout=5)
    assert all(p.is_file() for p in paths)
    assert sorted(mirrors.requests()) == sorted(f"/good/{n}.gz" for n in mirrors.files)
    assert any(closed in r.getMessage() for r in caplog.records)


# Rule: a mirror slower than the timeout counts as failed and the next mirror is tried.
def test_timeout_mirror_skipped(tmp_path: Path, mirrors: Mirrors) -> None:
    shutil.copytree(mirrors.root / "good", mirrors.root / "slow")
    files = {"tiny-labels-idx1-ubyte": mirrors.files["tiny-labels-idx1-ubyte"]}
    with pytest.raises(DataError, match="timed out"):
        download_mnist(tmp_path / "a", [f"{mirrors.url}/slow/"], files=files, timeout=0.1)
    [path] = download_mnist(tmp_path / "b", [f"{mirrors.url}/slow/", mirrors.good], files=files, timeout=0.1)
    assert md5_of_idx(path) == files["tiny-labels-idx1-ubyte"]


# Rule: files already present (gz or raw) are not downloaded again: no request at all.
def test_present_files_not_redownloaded(tmp_path: Path, mirrors: Mirrors) -> None:
    names = list(mirrors.files)
    shutil.copy(mirrors.root / "good" / f"{names[0]}.gz", tmp_path / f"{names[0]}.gz")
    for name in names[1:]:  # raw, decompressed form counts as present too
        (tmp_path / name).write_bytes(gzip.decompress((mirrors.root / "good" / f"{name}.gz").read_bytes()))
    paths = download_mnist(tmp_path, [mirrors.good], files=mirrors.files, timeout=5)
    assert mirrors.requests() == []
    assert paths == [tmp_path / f"{names[0]}.gz"] + [tmp_path / n for n in names[1:]]


# Rule: concurrent calls (4 threads) all succeed and fetch each file exactly once: the lock works.
def test_concurrent_downloads_fetch_once(tmp_path: Path, mirrors: Mirrors) -> None:
    mirrors.server.delay = 0.05  # make the downloads slow enough to overlap
    barrier = threading.Barrier(4)
    results: list[list[Path]] = []
    errors: list[BaseException] = []

    def trial() -> None:
        barrier.wait()
        try:
            results.append(download_mnist(tmp_path, [mirrors.bad, mirrors.good], files=mirrors.files, timeout=5))
        except BaseException as e:  # collected and asserted below
            errors.append(e)

    threads = [threading.Thread(target=trial) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert errors == [] and len(results) == 4
    assert all(r == results[0] for r in results)
    for name in mirrors.files:
        assert mirrors.requests(f"/good/{name}.gz") == [f"/good/{name}.gz"]
    assert _leftovers(tmp_path, mirrors.files) == set()
    assert np.array_equal(read_idx(results[0][0]), read_idx(mirrors.root / "good" / "small-images-idx3-ubyte.gz"))


# Rule: a download that fetched nothing leaves the disk as it was: no data folder, no lock file.
def test_a_failed_download_leaves_no_folder_or_lock(tmp_path: Path, mirrors: Mirrors) -> None:
    name = "tiny-labels-idx1-ubyte"
    with pytest.raises(DataError, match="download failed from every mirror"):
        download_mnist(tmp_path / "new" / "data", [mirrors.bad], files={name: mirrors.files[name]}, timeout=5)
    assert list(tmp_path.iterdir()) == []
    (tmp_path / "old").mkdir()
    with pytest.raises(DataError, match="download failed from every mirror"):
        download_mnist(tmp_path / "old", [mirrors.bad], files={name: mirrors.files[name]}, timeout=5)
    assert list((tmp_path / "old").iterdir()) == []
