"""CLI plumbing shared by every command: flags from dataclasses, one-line errors, exit 2.

Each config dataclass documents its fields with attribute docstrings (CleanRL style);
`add_dataclass_args` turns those into `--help` text so flags and docs never drift apart.
"""
from __future__ import annotations

import argparse
import ast
import dataclasses
import inspect
import logging
import sys
import textwrap
import typing
from typing import Any, Callable, Literal

from common.interrupts import Interrupted
from common.errors import InputError, flag
from common.secrets import mask_urls

LOG_FORMAT = "%(levelname)s %(name)s: %(message)s"  # how every CLI prints a warning


class ArgumentParser(argparse.ArgumentParser):
    """argparse's parser whose error is one line, like every other bad input's (argparse prints the
    whole usage first, which for a search is some thirty lines above the one that matters), and
    masks URL passwords: a misspelt flag (`--storag URL`) is echoed with its value, which may be a
    --storage URL."""

    def error(self, message: str) -> typing.NoReturn:
        self.exit(2, f"{self.prog}: error: {mask_urls(message)} ({self.prog} --help lists the flags)\n")


def field_docs(cls: type) -> dict[str, str]:
    """Attribute docstrings of a dataclass (and its bases): the string literal after each field."""
    docs: dict[str, str] = {}
    for klass in reversed([k for k in cls.__mro__ if dataclasses.is_dataclass(k)]):
        body = ast.parse(textwrap.dedent(inspect.getsource(klass))).body[0].body  # type: ignore[attr-defined]
        for node, nxt in zip(body, body[1:]):
            if isinstance(node, ast.AnnAssign) and isinstance(nxt, ast.Expr) and isinstance(nxt.value, ast.Constant):
                docs[node.target.id] = " ".join(str(nxt.value.value).split())  # type: ignore[union-attr]
    return docs


def _flag_kwargs(tp: Any) -> dict[str, Any]:
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin in (typing.Union, getattr(__import__("types"), "UnionType", None)) and type(None) in args:
        return _flag_kwargs(next(a for a in args if a is not type(None)))
    if origin is Literal:
        return {"choices": list(args), "type": type(args[0])}
    if origin is list:
        return {"nargs": "+", "type": args[0]}
    if tp is bool:
        return {"action": argparse.BooleanOptionalAction}
    return {"type": tp}


def add_dataclass_args(parser: argparse.ArgumentParser, cls: type, title: str, skip: tuple[str, ...] = ()) -> None:
    """One `--kebab-name` flag per field, default None so callers can tell 'not given'."""
    group = parser.add_argument_group(title)
    docs, hints = field_docs(cls), typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        if f.name in skip:
            continue
        default = f.default if f.default is not dataclasses.MISSING else f.default_factory()  # type: ignore[misc]
        kw = _flag_kwargs(hints[f.name])
        group.add_argument(
            flag(f.name), dest=f.name, default=None,
            help=f"{docs.get(f.name, '')} (default: {default})".replace("%", "%%"), **kw,
        )


def from_args(cls: type, args: argparse.Namespace, base: Any = None, **extra: Any) -> Any:
    """Build `cls` from parsed flags; flags not given keep `base`'s (or the class's) values."""
    base = base if base is not None else cls()
    given = {f.name: getattr(args, f.name) for f in dataclasses.fields(cls) if getattr(args, f.name, None) is not None}
    return dataclasses.replace(base, **given, **extra)


def run_cli(main: Callable[[list[str] | None], int | None], argv: list[str] | None = None) -> None:
    """Run a CLI's main: bad input prints one line and exits 2, Ctrl-C 130, SIGTERM 143, no traceback."""
    logging.basicConfig(level=logging.WARNING, format=LOG_FORMAT)
    try:
        code = main(argv)
    except InputError as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)
    except Interrupted as e:
        print(f"interrupted ({e})", file=sys.stderr)
        sys.exit(e.exit_code)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        sys.exit(130)
    sys.exit(code or 0)
