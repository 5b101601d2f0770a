"""Where a search stands, for a progress line that moves with every epoch of every trial.

A bar of finished trials can stand still for many minutes while long trials train (issue 15): a
person could not tell a working search from a hung one. `Progress` counts trial-epochs (each result a
trial reports), trials running / finished / stopped early / failed, the best validation accuracy
so far, and estimates the time left from the epoch times seen so far and the work left. Pure state
and arithmetic: the CLI's tqdm bar draws `text()` and moves on every result. The estimate costs the
same at any number of trials (ended trials are counted by how many epochs they ran, not looked at
one by one on every result).
"""
from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field


@dataclass
class Progress:
    total_trials: int  # trials the search plans
    max_epochs: int  # every trial's maximum (ASHA's max_t)
    done_before: int = 0  # trials finished in earlier runs of this search (--resume)
    epochs_done: int = 0  # trial-epochs reported in this run
    epoch_s_sum: float = 0.0  # their summed epoch times
    best: float = math.nan  # best validation accuracy so far
    finished: int = 0  # ran every epoch
    stopped: int = 0  # stopped early (by ASHA)
    failed: int = 0  # diverged or raised
    epochs: dict[str, int] = field(default_factory=dict)  # trial -> epochs it reported
    running: set[str] = field(default_factory=set)  # started and not ended (paused ones too)
    paused: set[str] = field(default_factory=set)  # waiting at a rung (--scheduler sync), off their slots
    diverged: set[str] = field(default_factory=set)
    ended_epochs: Counter = field(default_factory=Counter)  # epochs run -> ended trials that ran that many
    outcome: dict[str, str] = field(default_factory=dict)  # ended trial -> "finished", "stopped" or "failed"
    most_running: int = 0  # the most trials seen training at once: the concurrency the estimate uses

    def _count_ended(self, trial: str, step: int) -> None:
        n = self.epochs[trial]
        self.ended_epochs[n] += step
        if not self.ended_epochs[n]:
            del self.ended_epochs[n]

    def on_result(self, trial: str, result: dict) -> None:
        if trial in self.epochs and trial not in self.running:  # an ended trial reporting again (a resume)
            self._count_ended(trial, -1)
        self.running.add(trial)
        self.paused.discard(trial)
        self.most_running = max(self.most_running, len(self.running - self.paused))
        # Ray's count carries over a restored trial's earlier epochs; a plain count is the fallback
        self.epochs[trial] = int(result.get("training_iteration") or self.epochs.get(trial, 0) + 1)
        self.epochs_done += 1
        self.epoch_s_sum += float(result.get("epoch_time_s") or 0.0)
        acc = result.get("val_accuracy")
        if acc is not None and not math.isnan(acc) and not acc <= self.best:
            self.best = float(acc)
        if result.get("diverged"):
            self.diverged.add(trial)

    def set_paused(self, trials: set[str]) -> None:
        """The trials now paused: they are shown apart and do not count as training at once."""
        self.paused = set(trials) & self.running

    def on_end(self, trial: str, error: bool = False, epochs: int | None = None) -> None:
        """A trial ended; `epochs` is its last result's count (the final result may arrive only here)."""
        if trial in self.epochs and trial not in self.running:  # told twice: counted once
            self._count_ended(trial, -1)
        self.running.discard(trial)
        self.paused.discard(trial)
        if epochs:
            self.epochs_done += max(int(epochs) - self.epochs.get(trial, 0), 0)
            self.epochs[trial] = max(int(epochs), self.epochs.get(trial, 0))
        if trial in self.epochs:
            self._count_ended(trial, 1)
        before = self.outcome.get(trial)
        if before is not None:  # told twice, or ended again after a resume: counted once, as it ended last
            setattr(self, before, getattr(self, before) - 1)
        if error or trial in self.diverged:
            kind = "failed"
        elif self.epochs.get(trial, 0) >= self.max_epochs:
            kind = "finished"
        else:
            kind = "stopped"
        setattr(self, kind, getattr(self, kind) + 1)
        self.outcome[trial] = kind

    @property
    def ended(self) -> int:
        return self.done_before + self.finished + self.stopped + self.failed

    def expected_epochs(self) -> float:
        """Epochs a trial runs, on average: the ended trials' mean, else the maximum."""
        ended = self.ended_epochs.total()
        return sum(n * c for n, c in self.ended_epochs.items()) / ended if ended else float(self.max_epochs)

    def running_left(self, done: int) -> float:
        """Epochs a running trial at `done` epochs still runs, on average: the ended trials that ran
        longer say how much longer; none did (it outlived every early stop so far): to the maximum."""
        longer = [(n, c) for n, c in self.ended_epochs.items() if n > done]
        count = sum(c for _, c in longer)
        return sum(n * c for n, c in longer) / count - done if count else float(max(self.max_epochs - done, 0))

    def epochs_left(self) -> float:
        """Trial-epochs still to come: running trials as `running_left` says, and every trial not started."""
        expect = self.expected_epochs()
        at = Counter(self.epochs.get(t, 0) for t in self.running)  # running trials by epochs done
        running = sum(c * self.running_left(done) for done, c in at.items())
        started = self.done_before + len(self.epochs)
        return running + max(self.total_trials - started, 0) * expect

    def seconds_left(self) -> float | None:
        """An estimate: trial-epochs left x mean epoch time / trials that run at once; None before
        the first epoch time."""
        if not self.epochs_done or self.epoch_s_sum <= 0:
            return None
        return self.epochs_left() * (self.epoch_s_sum / self.epochs_done) / max(self.most_running, 1)

    def text(self) -> str:
        parts = [f"{len(self.running - self.paused)} running"]
        if self.paused:
            parts.append(f"{len(self.paused)} paused")
        parts.append(f"{self.ended}/{self.total_trials} done")
        if self.stopped:
            parts.append(f"{self.stopped} stopped early")
        if self.failed:
            parts.append(f"{self.failed} failed")
        if not math.isnan(self.best):
            parts.append(f"best val {100 * self.best:.2f}%")
        left = self.seconds_left()
        parts.append("est. left ?" if left is None else f"est. left {duration(left)}")
        return ", ".join(parts)


def duration(seconds: float) -> str:
    """62 -> '1m02s', 3725 -> '1h02m', 9 -> '9s'."""
    s = int(round(seconds))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    return f"{s // 3600}h{s % 3600 // 60:02d}m"
