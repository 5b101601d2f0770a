"""The search's progress bar: tuning.driver.progress.Progress drawn by tqdm, fed by a Ray Tune callback."""
from __future__ import annotations

import time

from tqdm import tqdm

from tuning.driver.progress import Progress

DRAW_EVERY_S = 0.2  # the bar is redrawn at most this often (5 times a second), however many results come


class TrialBar:
    """A Ray Tune callback's tqdm bar over trial-epochs: it counts every epoch any trial reports
    and shows trials running / done, the best validation accuracy and an estimate of the time left
    (tuning.driver.progress.Progress).

    Why at most every DRAW_EVERY_S: drawing on every result was a visible share of the driver's CPU
    per trial (benchmarks/README.md, Scale); five draws a second still move with every epoch a person
    can see, and close() draws the last state.
    """

    def __init__(self, total: int, max_epochs: int, every_s: float = DRAW_EVERY_S):
        self.progress, self.bar = Progress(total, max_epochs), None
        self.every_s, self.drawn = every_s, -float("inf")

    def __getstate__(self) -> dict:  # Ray pickles callbacks with the experiment; the bar stays here
        return {**self.__dict__, "bar": None}

    def _draw(self, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self.drawn < self.every_s:
            return
        self.drawn = now
        p = self.progress
        if self.bar is None:
            self.bar = tqdm(total=1, desc="trial-epochs", unit="", dynamic_ncols=True,
                            bar_format="{desc} {n_fmt}/~{total_fmt} |{bar}| {elapsed}{postfix}")
        self.bar.total = max(p.epochs_done + round(p.epochs_left()), p.epochs_done, 1)
        self.bar.n = p.epochs_done
        self.bar.set_postfix_str(p.text(), refresh=True)

    def on_result(self, trial: str, result: dict) -> None:
        self.progress.on_result(trial, result)
        self._draw()

    def on_end(self, trial: str, error: bool = False, epochs: int | None = None) -> None:
        self.progress.on_end(trial, error, epochs)
        self._draw()

    def set_paused(self, trials: set[str]) -> None:
        if trials != self.progress.paused:
            self.progress.set_paused(trials)
            self._draw()

    def set_done(self, n: int) -> None:
        self.progress.done_before = n - (self.progress.finished + self.progress.stopped + self.progress.failed)
        self._draw(force=True)

    def close(self) -> None:
        if self.bar is not None:
            self._draw(force=True)
            self.bar.close()


def as_callback(bar: TrialBar, every_s: float = 0.5):
    """The bar's Ray Tune callback; trial statuses (paused or not) are looked at every `every_s`."""
    import time

    from ray import tune

    class _Cb(tune.Callback):
        last = 0.0

        def on_step_end(self, iteration, trials, **info):
            if time.monotonic() - self.last >= every_s:
                self.last = time.monotonic()
                bar.set_paused({str(t.trial_id) for t in trials if t.status == "PAUSED"})

        def on_trial_result(self, iteration, trials, trial, result, **info):
            bar.on_result(str(trial.trial_id), result)

        def on_trial_complete(self, iteration, trials, trial, **info):
            bar.on_end(str(trial.trial_id), epochs=(trial.last_result or {}).get("training_iteration"))

        def on_trial_error(self, iteration, trials, trial, **info):
            bar.on_end(str(trial.trial_id), error=True)

    return _Cb()
