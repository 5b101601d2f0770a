"""Ctrl-C (SIGINT) and SIGTERM end a command the same way: one line, resumable, exit 128 + signal.

While Ray Tune's loop runs, the first signal asks Tune to stop and save its state (through the
SIGUSR1 handler Tune installs for this), so the search can write its partial tables and mark itself
interrupted. Anywhere else, and on a second signal, `Interrupted` is raised at once.
"""
from __future__ import annotations

import contextlib
import os
import signal
from typing import Iterator

HANDLED = (signal.SIGINT, signal.SIGTERM)


class Interrupted(BaseException):
    """Raised by a handled signal outside a Tune loop; BaseException, like KeyboardInterrupt."""

    def __init__(self, signum: int):
        super().__init__(signal.Signals(signum).name)
        self.signum = signum

    @property
    def exit_code(self) -> int:
        return 128 + self.signum


TUNE_SIGINT = "TUNE_DISABLE_SIGINT_HANDLER"  # set while ours is in place: it forwards to Tune (below) instead


class StopOnSignal:
    """Handlers for SIGINT and SIGTERM; `signum` holds the first signal received (None if none).

    As a context manager it puts back the handlers and the environment it found, so that a search
    run in-process (a test, a notebook) leaves its caller's Ctrl-C as it was.
    """

    def __init__(self) -> None:
        self.signum: int | None = None
        self._in_loop = False
        self._before: dict = {}
        self._env_before: str | None = None

    def __enter__(self) -> "StopOnSignal":
        self._before = {s: signal.getsignal(s) for s in HANDLED}
        self._env_before = os.environ.get(TUNE_SIGINT)
        return self.install()

    def __exit__(self, *exc: object) -> None:
        for s, handler in self._before.items():
            signal.signal(s, signal.SIG_DFL if handler is None else handler)
        if self._env_before is None:
            os.environ.pop(TUNE_SIGINT, None)
        else:
            os.environ[TUNE_SIGINT] = self._env_before

    def install(self) -> "StopOnSignal":
        """(Re)install both handlers: ray.init replaces SIGTERM's with its own sys.exit."""
        os.environ[TUNE_SIGINT] = "1"
        for s in HANDLED:
            signal.signal(s, self._handle)
        return self

    @contextlib.contextmanager
    def tune_loop(self) -> Iterator[None]:
        """Inside: the first signal stops Tune gracefully instead of raising."""
        self.install()
        self._in_loop = True
        try:
            yield
        finally:
            self._in_loop = False

    def _handle(self, signum: int, frame) -> None:
        first = self.signum is None
        if first:
            self.signum = signum
        tune_stop = signal.getsignal(signal.SIGUSR1) if hasattr(signal, "SIGUSR1") else None
        if first and self._in_loop and callable(tune_stop):
            tune_stop(signal.SIGUSR1, frame)  # Tune ends its loop after this step and saves its state
            signal.signal(signal.SIGINT, self._handle)  # Tune's handler restores SIGINT's: keep ours
            return
        raise Interrupted(signum)
