"""model/memory.py: `model.train` refuses a network that cannot fit, as the searches do for a space."""
from __future__ import annotations

from model.memory import DataShape, device_memory, trial_bytes
from tests.conftest import call_cli, one_error, tree


def test_model_train_refuses_a_network_too_large_for_this_machine(tmp_path):
    # Rule: one line naming --hidden-sizes, the estimate and the machine's memory; exit 2; nothing created.
    (tmp_path / "results").mkdir()
    r = call_cli("model.train", "--hidden-sizes", "10000000", "--subset", "500", "--epochs", "1",
                 "--results-dir", str(tmp_path / "results"))
    # --subset 500 keeps 400 training images (the 80/20 split): the default batch of 128 fits inside them
    need = trial_bytes([10_000_000], 128, DataShape(784, 10, 400))
    limit, has = device_memory("auto")
    assert one_error(r) == (f"--hidden-sizes [10000000]: needs about {need / 1e9:.1f} GB (parameters, gradients, "
                            f"optimiser state and activations at batch 128); {has} {limit / 1e9:.1f} GB")
    assert tree(tmp_path) == ["results"]
