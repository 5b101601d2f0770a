"""Reading a results folder's files back: CSV tables that may have been cut short, and JSON.

A table copied while being written, or from a full disk, ends in the middle of a row. pandas
reads such a row with the missing cells as NaN, so a cut trials.csv counts a trial that never
finished and a cut epochs.csv draws partial curves. Here a cut row is dropped with one warning.
"""
from __future__ import annotations

import csv
import io
import json
import logging
from pathlib import Path
from typing import Sequence

import pandas as pd

from common.errors import InputError

log = logging.getLogger(__name__)


def one_line(e: BaseException) -> str:
    return " ".join(str(e).split())


def _fields(line: str) -> int:
    """Cells in one CSV line (quotes respected); a line cut inside quotes counts its commas."""
    try:
        return len(next(csv.reader([line]), []))
    except csv.Error:
        return line.count(",") + 1


def drop_cut_rows(path: Path, raw: bytes) -> tuple[str, list[tuple[int, int]], int]:
    """The CSV text without cut rows, the (line number, fields) of each row dropped, the header's fields.

    A row is cut when it has fewer cells than the header, or when it is the file's last line and
    no newline ends it: the tables are always written with a final newline, so a missing one means
    the write stopped, maybe inside the last cell (which then still counts as a cell).
    """
    cut: list[tuple[int, int]] = []
    body, newline, tail = raw.rpartition(b"\n")
    cut_tail = bool(newline and tail.strip())  # a last line without its newline (never the header)
    if cut_tail:
        raw = body + newline
    try:
        lines = io.StringIO(raw.decode("utf-8"), newline="").readlines()
    except UnicodeDecodeError as e:
        raise InputError(f"{path}: unreadable table ({one_line(e)})") from e
    kept: list[str] = []
    width = start = 0
    reader = csv.reader(lines)
    try:
        for record in reader:
            first, start = start + 1, reader.line_num  # the record's physical lines: first..start
            if not width:
                width = len(record)
            elif 0 < len(record) < width:
                cut.append((first, len(record)))
                continue
            kept += lines[first - 1:start]
    except csv.Error as e:
        raise InputError(f"{path}: unreadable table (line {reader.line_num}: {one_line(e)})") from e
    if cut_tail:
        cut.append((len(lines) + 1, _fields(tail.decode("utf-8", errors="replace"))))
    return "".join(kept), cut, width


def read_table(path: Path, required: Sequence[str], text_columns: Sequence[str]) -> pd.DataFrame:
    """One table of a results folder; cut rows are dropped with one warning, other damage is an InputError."""
    try:
        raw = path.read_bytes()
    except OSError as e:
        raise InputError(f"{path}: unreadable table ({e.strerror or e})") from e
    text, cut, width = drop_cut_rows(path, raw)
    if cut:
        fields = ", ".join(str(f) for _, f in cut) + f" of {width} fields"
        if cut[-1][1] >= width:  # the last row had every cell: only its missing newline shows the cut
            fields += ", no newline at the end"
        lines = f"line {cut[0][0]} is" if len(cut) == 1 else f"lines {', '.join(str(n) for n, _ in cut)} are"
        log.warning("%s: %s cut short (%s); ignored", path, lines, fields)
    try:
        df = pd.read_csv(io.StringIO(text), dtype={c: str for c in text_columns})
    except ValueError as e:  # pandas' parser errors are ValueErrors
        raise InputError(f"{path}: unreadable table ({one_line(e)})") from e
    missing = [c for c in required if c not in df.columns]
    if missing:
        raise InputError(f"{path}: missing column(s) {', '.join(missing)}")
    return df


def read_json(path: Path) -> dict | None:
    """A JSON object, or None when the file is absent (older folders lack search.json)."""
    if not path.is_file():
        return None
    try:
        obj = json.loads(path.read_text())
    except (OSError, ValueError) as e:
        raise InputError(f"{path}: unreadable JSON ({one_line(e)})") from e
    if not isinstance(obj, dict):
        raise InputError(f"{path}: expected a JSON object, got {type(obj).__name__}")
    return obj
