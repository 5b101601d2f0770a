"""tuning/space.py: parsing a space, Optuna's define-by-run space and a trial's TrainConfig (no Ray)."""
from __future__ import annotations

import optuna
import pytest

from model.config import TrainConfig
from tuning.space import DefineByRun, Param, SpaceError, apply_params, parse_space


def ask(space_raw: dict, fixed_params: dict | None = None) -> dict:
    """The parameters one Optuna trial gets from the space (in memory, enqueued values where given)."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    if fixed_params:
        study.enqueue_trial(fixed_params)
    trial = study.ask()
    DefineByRun(parse_space(space_raw, "s.yaml"))(trial)
    return trial.params


def test_categorical_choices_default_to_values():
    # Rule: a parameter with `values` and `distribution: categorical` samples from those values.
    space = parse_space({"params": {"batch_size": {"values": [16, 64], "distribution": "categorical"}}}, "s.yaml")
    assert space.params["batch_size"] == Param("batch_size", values=[16, 64], distribution="categorical",
                                               choices=[16, 64])


def test_fixed_is_the_base_config():
    # Rule: `fixed` entries become the base TrainConfig; flags given as overrides win.
    space = parse_space({"fixed": {"epochs": 9, "lr": 0.2}, "params": {"dropout": {"values": [0.1]}}}, "s.yaml")
    base = space.base_config(epochs=3)
    assert (base.epochs, base.lr, base.batch_size) == (3, 0.2, TrainConfig().batch_size)


@pytest.mark.parametrize("raw, message", [
    ({"params": {"lr": {"values": [-1]}}}, "s.yaml: params.lr.values[0]: -1: must be > 0"),
    ({"params": {"dropout": {"distribution": "uniform", "low": 0.5, "high": 0.1}}},
     "s.yaml: params.dropout: low 0.5 must be < high 0.1"),
    ({"params": {"lr": {"distribution": "gauss"}}},
     "s.yaml: params.lr.distribution: unknown distribution 'gauss' (known: loguniform, uniform, int, categorical)"),
    ({"params": {"colour": {"values": [1]}}}, "s.yaml: params.colour.values[0]: unknown parameter 'colour'"),
    ({"params": {"n_layers": {"distribution": "int", "low": 1, "high": 2}}},
     "s.yaml: params.n_layers and params.width go together (conditional depth)"),
    ({"fixed": {"width": 5}, "params": {"lr": {"values": [0.1]}}},
     "s.yaml: fixed.width: 5: fix hidden_sizes (e.g. [512, 256]) instead"),
])
def test_bad_space_is_one_error_naming_file_key_and_value(raw, message):
    # Rule: each mistake is one SpaceError whose message starts with file, key and value.
    with pytest.raises(SpaceError) as e:
        parse_space(raw, "s.yaml")
    assert str(e.value).startswith(message)


def test_space_error_takes_the_reason_from_the_config_field():
    # Rule: a value TrainConfig.validate refuses is worded with the field's own reason.
    with pytest.raises(SpaceError, match=r"^s\.yaml: params\.dropout\.values\[1\]: 1\.5: must be in \[0, 1\)$"):
        parse_space({"params": {"dropout": {"values": [0.1, 1.5]}}}, "s.yaml")


def test_define_by_run_gives_widths_only_for_existing_layers():
    # Rule: a trial with n_layers = 2 gets width_1 and width_2 and no width_3.
    raw = {"params": {"n_layers": {"distribution": "int", "low": 1, "high": 3},
                      "width": {"distribution": "int", "low": 8, "high": 64}}}
    params = ask(raw, {"n_layers": 2, "width_1": 32, "width_2": 16})
    assert params == {"n_layers": 2, "width_1": 32, "width_2": 16}


def test_define_by_run_offers_hidden_sizes_as_strings():
    # Rule: a categorical hidden_sizes reaches Optuna as "512-256" strings (Optuna stores scalars only).
    params = ask({"params": {"hidden_sizes": {"distribution": "categorical", "choices": [[512, 256], [64]]}}},
                 {"hidden_sizes": "64"})
    assert params == {"hidden_sizes": "64"}


def test_apply_params_builds_hidden_sizes_from_depth_and_widths():
    # Rule: n_layers and width_i become hidden_sizes; widths beyond the depth are dropped.
    cfg = apply_params(TrainConfig(), {"n_layers": 2, "width_1": 300, "width_2": 100, "width_3": 7, "lr": 0.2})
    assert (cfg.hidden_sizes, cfg.lr) == ([300, 100], 0.2)


def test_apply_params_decodes_hidden_sizes_strings():
    # Rule: "512-256" from a grid point or Optuna becomes [512, 256]; everything else in base stays.
    cfg = apply_params(TrainConfig(epochs=4), {"hidden_sizes": "512-256"})
    assert (cfg.hidden_sizes, cfg.epochs) == ([512, 256], 4)
