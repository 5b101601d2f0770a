"""common/cli.py and common/errors.py: flags derived from config dataclasses, and errors carrying their field."""
from __future__ import annotations

import argparse
from dataclasses import dataclass, field
from typing import Literal

import pytest

from common.cli import add_dataclass_args, field_docs, from_args
from common.errors import FieldError, InputError
from model.config import TrainConfig


@dataclass
class Example:
    rate: float = 0.5
    """How fast, in 100 % steps."""
    mode: Literal["a", "b"] = "a"
    """Which mode."""
    flag: bool = True
    """On or off."""
    sizes: list[int] = field(default_factory=lambda: [4, 2])
    """Widths."""
    limit: int | None = None
    """A cap."""


def parse(*argv: str) -> argparse.Namespace:
    p = argparse.ArgumentParser()
    add_dataclass_args(p, Example, "example")
    return p.parse_args(list(argv))


def test_field_docs_are_the_attribute_docstrings():
    # Rule: the string after each field is its doc, whitespace folded.
    assert field_docs(Example) == {"rate": "How fast, in 100 % steps.", "mode": "Which mode.", "flag": "On or off.",
                                   "sizes": "Widths.", "limit": "A cap."}


def test_flags_follow_the_field_types():
    # Rule: kebab-case flags; Literal -> choices, bool -> --x/--no-x, list[int] -> nargs, Optional[int] -> int.
    args = parse("--rate", "2", "--mode", "b", "--no-flag", "--sizes", "8", "16", "--limit", "3")
    assert vars(args) == {"rate": 2.0, "mode": "b", "flag": False, "sizes": [8, 16], "limit": 3}


def test_a_choice_outside_the_literal_is_refused():
    # Rule: argparse refuses a value outside the Literal's choices (exit 2).
    with pytest.raises(SystemExit) as e:
        parse("--mode", "c")
    assert e.value.code == 2


def test_help_shows_doc_and_default_with_percent_escaped():
    # Rule: --help text is the field doc plus "(default: ...)"; a literal % survives argparse's formatting.
    p = argparse.ArgumentParser()
    add_dataclass_args(p, Example, "example")
    assert "How fast, in 100 % steps. (default: 0.5)" in " ".join(p.format_help().split())


def test_from_args_keeps_base_values_for_flags_not_given():
    # Rule: only the flags given replace the base's values.
    built = from_args(Example, parse("--rate", "0.1"), base=Example(mode="b", sizes=[1]))
    assert built == Example(rate=0.1, mode="b", sizes=[1])


def test_validate_raises_a_field_error_with_field_value_and_reason():
    # Rule: TrainConfig.validate's error carries the field, the value and the reason, and reads as a flag.
    with pytest.raises(FieldError) as e:
        TrainConfig(dropout=1.5).validate()
    assert (e.value.field, e.value.value, e.value.reason, str(e.value)) == (
        "dropout", 1.5, "must be in [0, 1)", "--dropout 1.5: must be in [0, 1)")
    assert isinstance(e.value, InputError)


def test_a_bad_flag_is_one_line(capsys):
    # Rule: argparse's error is one stderr line naming the flag and pointing at --help (no usage block), exit 2.
    from common.cli import ArgumentParser

    p = ArgumentParser(prog="python -m x")
    p.add_argument("--trials", type=int)
    with pytest.raises(SystemExit) as e:
        p.parse_args(["--trails", "5"])
    assert e.value.code == 2
    assert capsys.readouterr().err.splitlines() == [
        "python -m x: error: unrecognized arguments: --trails 5 (python -m x --help lists the flags)"]
