"""common/atomic.py: files written whole, readable as a plain open() would leave them."""
from __future__ import annotations

import os

from common.atomic import atomic_write, write_json


def test_a_written_file_gets_the_umask_mode_not_0600(tmp_path):
    old = os.umask(0o022)
    try:
        import importlib

        import common.atomic as atomic

        importlib.reload(atomic)
        atomic.write_json(tmp_path / "r.json", {"a": 1})
        assert (tmp_path / "r.json").stat().st_mode & 0o777 == 0o644
    finally:
        os.umask(old)
        importlib.reload(atomic)


def test_a_failed_write_leaves_nothing(tmp_path):
    def fail(_):
        raise RuntimeError("boom")

    try:
        atomic_write(tmp_path / "x.txt", fail)
    except RuntimeError:
        pass
    assert list(tmp_path.iterdir()) == []


def test_nan_is_written_as_null(tmp_path):
    write_json(tmp_path / "n.json", {"v": float("nan")})
    assert (tmp_path / "n.json").read_text().split() == ["{", '"v":', "null", "}"]
