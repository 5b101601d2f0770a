"""Output paths checked against a command's inputs before any work: an output never replaces an input.

A user who types `model.export RUN --onnx RUN/model.pt` or `model.predict RUN d.csv --csv d.csv`
means another file; writing there would destroy the model or the data. Paths are compared after
resolving symlinks (and as the same inode, for hard links), and a refusal is one InputError naming
the flag, raised before anything is read, trained or written.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Iterable, Sequence

from common.errors import InputError


def same_file(a: Path, b: Path) -> bool:
    """`a` and `b` name one file: the same path once symlinks are resolved, or the same inode."""
    if a.resolve() == b.resolve():
        return True
    try:
        return os.path.samefile(a, b)
    except OSError:  # one of them does not exist (yet): different files
        return False


def inside(path: Path, folder: Path) -> bool:
    """`path` is `folder` or lies below it, symlinks resolved."""
    return path.resolve().is_relative_to(folder.resolve())


def check_output(flag: str, value: str, inputs: Iterable[Path] = (), suffix: str | None = None,
                 folders: Iterable[Path] = ()) -> Path:
    """The path `value` of output flag `flag`, once it is known to be writable as a new or replaced
    file that is none of `inputs` and lies in none of the input `folders` (whose every file is read,
    so a file written there would be read back next time as data); else one InputError naming the flag."""
    path = Path(value).expanduser()
    target = path.resolve()
    if suffix and path.suffix.lower() != suffix:
        raise InputError(f"{flag} {value}: give a {suffix} file")
    if target.is_dir():
        raise InputError(f"{flag} {value}: is a folder; give a file name (in it, or elsewhere)")
    if not target.parent.is_dir():
        raise InputError(f"{flag} {value}: the folder {path.parent} does not exist")
    for given in inputs:
        if same_file(path, Path(given)):
            raise InputError(f"{flag} {value}: is one of this command's inputs ({given}); writing it would "
                             "replace it: give another file")
    _outside_data(flag, value, path, folders, "", "it")
    return path


def check_outputs(outputs: Sequence[tuple[str, str | None]], inputs: Iterable[Path] = (),
                  suffixes: dict[str, str] | None = None, folders: Iterable[Path] = ()) -> dict[str, Path]:
    """check_output for each given (flag, value) pair, and no two outputs on one file; {flag: path}."""
    inputs, folders = list(inputs), list(folders)
    checked: dict[str, Path] = {}
    for flag, value in outputs:
        if not value:
            continue
        path = check_output(flag, value, inputs, (suffixes or {}).get(flag), folders)
        for other, seen in checked.items():
            if same_file(path, seen):
                raise InputError(f"{flag} {value}: {other} writes the same file; give two different files")
        checked[flag] = path
    return checked


def check_output_folder(flag: str, value: str, out: Path, inputs: Iterable[Path] = (),
                        folders: Iterable[Path] = ()) -> None:
    """The folder `out` that output flag `flag` chose holds none of `inputs` (it is written into, and
    --overwrite empties it) and lies in none of the input `folders` (read whole as data)."""
    for given in inputs:
        if inside(Path(given), out):
            raise InputError(f"{flag} {value}: its folder {out} would hold the input {given}, which this command "
                             "reads: write the results elsewhere")
    _outside_data(flag, value, out, folders, f"{out} ", "the results")


def _outside_data(flag: str, value: str, path: Path, folders: Iterable[Path], named: str, what: str) -> None:
    """`path` lies in none of the input `folders`, whose every file is read as data."""
    for folder in folders:
        if inside(path, Path(folder)):
            raise InputError(f"{flag} {value}: {named}is inside the input folder {folder}, whose files are read "
                             f"as data: write {what} elsewhere")
