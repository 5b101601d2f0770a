"""Search spaces refused before a search starts: a searched `epochs`, and networks that cannot fit in memory."""
from __future__ import annotations

import os

import pytest

from model.memory import DataShape, n_params, trial_bytes
from model.mlp import MLP, MLPConfig, count_params
from tests.conftest import call_cli, write_space
from tuning.search.limits import check_limits
from tuning.search.space import SpaceError, load_space, parse_space

GB16 = 16 * 10**9
TAIL = "per trial (parameters, gradients, optimiser state and activations at batch"

MNIST_SHAPE = DataShape(in_features=784, classes=10, images=60_000)  # MNIST's training set


def space(params: dict, **fixed):
    return parse_space({"fixed": fixed, "params": params}, "s.yaml")


def refusal(params: dict, memory: int | None = GB16, **fixed) -> str:
    s = space(params, **fixed)
    with pytest.raises(SpaceError) as e:
        check_limits(s, s.base_config(), 12, MNIST_SHAPE, memory=memory)
    assert "\n" not in str(e.value)
    return str(e.value)


def test_parameter_count_matches_the_mlp():
    # Rule: n_params counts model.mlp.MLP's parameters (Linear layers and LayerNorm) exactly.
    mnist = lambda hidden: MLP(MLPConfig(in_features=784, hidden_sizes=hidden, num_classes=10))  # noqa: E731
    assert n_params([512, 256], MNIST_SHAPE) == count_params(mnist([512, 256])) == 537_354
    assert n_params([7, 3], MNIST_SHAPE) == count_params(mnist([7, 3])) == 5_579


def test_estimate_is_the_documented_formula():
    # Rule: 4 B x (4 x params + (6 x batch + 2 x 8192) x (784 + sum(widths) + 10)) + 60,000 x 784 x 4 B of data.
    assert trial_bytes([512, 256], 128, MNIST_SHAPE) == 4 * (4 * 537_354 + (6 * 128 + 2 * 8192) * 1562) + 188_160_000 == 303_923_360


def test_batch_beyond_the_training_split_counts_as_the_split():
    # Rule: no epoch batches more than MNIST's 60,000 training images, so larger batch sizes estimate as 60,000.
    assert trial_bytes([64], 10**6, MNIST_SHAPE) == trial_bytes([64], 60_000, MNIST_SHAPE)


def test_huge_width_is_refused_naming_width_and_value():
    # Rule: a width of 10^7 is refused in one line naming the file, `width`, the value, the estimate and the memory.
    msg = refusal({"lr": {"values": [0.1]}, "n_layers": {"values": [1]}, "width": {"values": [10_000_000]}})
    assert msg == f"s.yaml: width 10000000 needs about 813.8 GB {TAIL} 128); this machine has 16.0 GB"


def test_worst_case_is_widest_deepest_and_largest_batch():
    # Rule: conditional depth is judged at its largest width, its most layers and the largest batch size.
    msg = refusal({"batch_size": {"distribution": "categorical", "choices": [16, 512]},
                   "n_layers": {"distribution": "int", "low": 1, "high": 3},
                   "width": {"distribution": "int", "low": 64, "high": 4096, "log": True}}, memory=10**9)
    assert msg == f"s.yaml: width 4096 (at n_layers 3) needs about 1.8 GB {TAIL} 512); this machine has 1.0 GB"


def test_largest_hidden_sizes_choice_is_named():
    # Rule: of a searched hidden_sizes, the network that needs the most memory is the one named.
    msg = refusal({"hidden_sizes": {"values": [[32], [100_000, 100_000], [64]]}})
    assert msg == (f"s.yaml: params.hidden_sizes [100000, 100000] needs about 175.2 GB {TAIL} 128); "
                   "this machine has 16.0 GB")


def test_fixed_hidden_sizes_are_checked_too():
    # Rule: a fixed hidden_sizes that cannot fit is refused even when no width is searched.
    msg = refusal({"lr": {"values": [0.1]}}, hidden_sizes=[1_000_000])
    assert msg == f"s.yaml: fixed.hidden_sizes [1000000] needs about 81.6 GB {TAIL} 128); this machine has 16.0 GB"


def test_limit_is_this_machines_physical_memory_on_cpu():
    # Rule: without an explicit memory, a CPU trial is compared with the machine's physical memory.
    phys = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    s = space({"lr": {"values": [0.1]}}, hidden_sizes=[10**9])
    with pytest.raises(SpaceError) as e:
        check_limits(s, s.base_config(device="cpu"), 12, MNIST_SHAPE)
    assert str(e.value).endswith(f"; this machine has {phys / 1e9:.1f} GB")


@pytest.mark.parametrize("name", ["grid", "optuna", "optuna_plain"])
def test_shipped_spaces_pass(name):
    # Rule: every shipped space fits this machine and none searches epochs.
    s = load_space(name)
    assert "epochs" not in s.params
    check_limits(s, s.base_config(), s.base_config().epochs, MNIST_SHAPE)


def test_searched_epochs_is_refused():
    # Rule: epochs is every trial's maximum (ASHA's max_t), so searching it is one SpaceError naming the file.
    s = space({"epochs": {"distribution": "int", "low": 1, "high": 100_000}, "lr": {"values": [0.1]}})
    with pytest.raises(SpaceError) as e:
        check_limits(s, s.base_config(epochs=1), 1, MNIST_SHAPE)
    assert str(e.value) == ("s.yaml: params: epochs cannot be searched (it is every trial's maximum, ASHA's max_t, "
                            "1 here); set fixed.epochs or --epochs")


def test_cli_refuses_a_huge_width_before_creating_anything(tmp_path):
    # Rule: `python -m tuning.grid` with a width of 10^7 exits 2 with one line and creates no results folder.
    path = write_space(tmp_path / "wide.yaml", {"lr": {"values": [0.1]}, "n_layers": {"values": [1]},
                                               "width": {"values": [10_000_000]}})
    r = call_cli("tuning.grid", "--space", str(path), "--subset", "1000", "--results-dir", str(tmp_path / "r"),
                "--no-retrain")
    assert r.returncode == 2 and "Traceback" not in r.stderr
    [line] = r.stderr.strip().splitlines()
    # the estimate is made at the data's shape: 800 training images of 784 pixels (trial_bytes' tests)
    assert line.startswith(f"error: {path}: width 10000000 needs about 813.7 GB {TAIL} 128); ")
    assert not (tmp_path / "r").exists()


def test_estimate_follows_the_data_shape():
    # Rule: an 8x8 set with 26 classes and 1,000 images is estimated with D=64, K=26, N=1000 exactly.
    data = DataShape(in_features=64, classes=26, images=1000)
    p = (64 + 1) * 32 + (32 + 1) * 26 + 2 * 32
    assert n_params([32], data) == p
    assert trial_bytes([32], 16, data) == 4 * (4 * p + (6 * 16 + 2 * 8192) * (64 + 32 + 26)) + 1000 * 64 * 4
