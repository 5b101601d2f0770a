"""The progress bar: counts every result, draws at most every `every_s`, and shows the last state on close."""
from tuning.driver.bar import TrialBar


def result(epoch: int) -> dict:
    return {"training_iteration": epoch, "epoch_time_s": 1.0, "val_accuracy": 0.5 + epoch / 100}


def test_results_between_draws_are_counted_but_not_drawn():
    bar = TrialBar(total=4, max_epochs=10, every_s=3600)
    for epoch in range(1, 6):
        bar.on_result("a", result(epoch))
    assert bar.progress.epochs_done == 5
    assert bar.bar.n == 1  # drawn once, at the first result
    bar.close()


def test_close_draws_the_last_state():
    bar = TrialBar(total=4, max_epochs=10, every_s=3600)
    for epoch in range(1, 6):
        bar.on_result("a", result(epoch))
    bar.close()
    assert bar.bar.n == 5
    assert bar.bar.postfix.startswith("1 running, 0/4 done, best val 55.00%")


def test_every_result_is_drawn_when_the_interval_is_zero():
    bar = TrialBar(total=4, max_epochs=10, every_s=0)
    for epoch in range(1, 4):
        bar.on_result("a", result(epoch))
        assert bar.bar.n == epoch
    bar.close()
