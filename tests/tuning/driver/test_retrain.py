"""tuning/driver/retrain.py: what a test report records about where it came from."""
from __future__ import annotations

import platform
import subprocess
from importlib import metadata

from tests.conftest import ROOT
from common.provenance import git_commit, versions


def test_versions_are_the_installed_ones():
    # Rule: versions() gives Python's version and each package's installed version, read from its metadata.
    v = versions()
    assert (v["python"], v["torch"], v["optuna"]) == (platform.python_version(), metadata.version("torch"),
                                                      metadata.version("optuna"))


def test_git_commit_is_the_checked_out_commit():
    # Rule: inside a git checkout, git_commit() is `git rev-parse HEAD` there.
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True).stdout.strip()
    assert git_commit(ROOT) == (head or "unknown")


def test_git_commit_outside_a_checkout_is_unknown(tmp_path):
    # Rule: a folder that is no git checkout gives "unknown", not an error.
    assert git_commit(tmp_path) == "unknown"


def _tiny(**kw):
    from model.config import TrainConfig

    return TrainConfig(**{"epochs": 1, "batch_size": 64, "hidden_sizes": [16], "threads": 1, **kw})


def test_a_committee_of_seeds_averages_the_seeds_nets():
    # Rule: --ensemble K (of seeds) averages the first K seeds' nets; its accuracy is that of the mean
    # of their softmax probabilities on the test set.
    import torch

    from data.source import DataConfig, load_splits
    from data.splits import normalise
    from tuning.driver.retrain import retrain_and_test

    data = DataConfig(subset=600)
    report, first, _card, members = retrain_and_test(_tiny(), data, [0, 1, 2], ensemble=2)
    assert len(members) == 2 and members[0] is first.model
    splits = load_splits(DataConfig(subset=600, val_fraction=0.0))
    x = normalise(splits.test_x, splits.mean, splits.std, torch.device("cpu"))
    with torch.no_grad():
        mean = torch.stack([m.eval()(x).softmax(1) for m in members]).mean(0)
    acc = float((mean.argmax(1) == splits.test_y).float().mean())
    assert report["committee"]["test_accuracy"] == acc
    assert (report["committee"]["members"], report["committee"]["of"], report["seeds"]) == (2, "seeds", [0, 1, 2])


def test_a_committee_of_configs_trains_one_net_per_other_config():
    # Rule: with `others`, the committee is the best config's first-seed net plus one net of each other
    # configuration (first seed); the single-net figures stay the best config's seeds.
    from data.source import DataConfig
    from tuning.driver.retrain import retrain_and_test

    others = [_tiny(lr=0.1, hidden_sizes=[8]), _tiny(lr=0.01, hidden_sizes=[24])]
    report, _first, _card, members = retrain_and_test(_tiny(), DataConfig(subset=600), [0], ensemble=3, others=others)
    assert [m.cfg.hidden_sizes for m in members] == [[16], [8], [24]]
    assert (report["committee"]["of"], len(report["test_accuracy"]["per_seed"])) == ("configs", 1)
    assert [c["lr"] for c in report["committee"]["configs"]] == [0.1, 0.01]
