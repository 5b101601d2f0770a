"""common/interrupts.py: StopOnSignal leaves its caller's handlers and environment as it found them."""
from __future__ import annotations

import os
import signal

import pytest

from common.interrupts import HANDLED, TUNE_SIGINT, Interrupted, StopOnSignal


def mine(signum, frame):  # a caller's own handler
    raise AssertionError("not called")


def test_handlers_are_put_back():
    # Rule: inside, ours handle SIGINT and SIGTERM; after, the caller's are back.
    before = {s: signal.getsignal(s) for s in HANDLED}
    signal.signal(signal.SIGINT, mine)
    try:
        with StopOnSignal() as stop:
            assert all(signal.getsignal(s) == stop._handle for s in HANDLED)
        assert signal.getsignal(signal.SIGINT) is mine
        assert signal.getsignal(signal.SIGTERM) == before[signal.SIGTERM]
    finally:
        for s, h in before.items():
            signal.signal(s, h)


@pytest.mark.parametrize("earlier", [None, "0"])
def test_tune_sigint_variable_is_put_back(monkeypatch, earlier):
    # Rule: TUNE_DISABLE_SIGINT_HANDLER is "1" inside and as it was after (unset stays unset).
    if earlier is None:
        monkeypatch.delenv(TUNE_SIGINT, raising=False)
    else:
        monkeypatch.setenv(TUNE_SIGINT, earlier)
    with StopOnSignal():
        assert os.environ[TUNE_SIGINT] == "1"
    assert os.environ.get(TUNE_SIGINT) == earlier


def test_a_signal_outside_tune_raises_and_is_recorded():
    # Rule: outside Tune's loop the first signal raises Interrupted at once and is kept in signum;
    # the handlers are put back even so.
    before = signal.getsignal(signal.SIGINT)
    with pytest.raises(Interrupted) as e:
        with StopOnSignal() as stop:
            os.kill(os.getpid(), signal.SIGINT)
    assert e.value.signum == signal.SIGINT and stop.signum == signal.SIGINT and e.value.exit_code == 130
    assert signal.getsignal(signal.SIGINT) == before
