"""tuning/search/space.py: parsing a space, Optuna's define-by-run space and a trial's TrainConfig (no Ray)."""
from __future__ import annotations

import optuna
import pytest

from model.config import TrainConfig
from tuning.search.space import DefineByRun, Param, SpaceError, apply_params, load_space, parse_space


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


@pytest.mark.parametrize("yaml_text, needle", [
    ("params: {lr: {values: [0.1, -0.1]}}", "params.lr.values[1]: -0.1"),
    ("params: {lr: {values: []}}", "params.lr.values: []"),
    ("params: {lr: {valuez: [0.1]}}", "unknown key 'valuez'"),
    ("params: {lr: {distribution: gaussian, low: 0.1, high: 1}}", "unknown distribution 'gaussian'"),
    ("params: {batch_size: {values: [16, 'big']}}", "'big' is not a valid int"),
    ("params: {colour: {values: [1]}}", "unknown parameter 'colour'"),
    ("params: {lr: {distribution: loguniform, low: 0.0, high: 1}}", "params.lr.low: 0.0"),
    ("fixed: {epochs: 0}\nparams: {lr: {values: [0.1]}}", "fixed.epochs: 0"),
    ("params: [lr]", "params: expected a non-empty mapping"),
    ("paramz: {}", "unknown key 'paramz'"),
    ("fixed: {n_layers: 2}\nparams: {lr: {values: [0.1]}}", "fixed.n_layers: 2: fix hidden_sizes"),
    ("params: {lr: {values: [0.1]}\n", "not valid YAML"),
])
def test_bad_space_file_is_one_line_naming_file_and_key(tmp_path, yaml_text, needle):
    # Rule: a bad search-space file exits 2 with one line naming the file, the key and the value.
    f = tmp_path / "bad.yaml"
    f.write_text(yaml_text)
    with pytest.raises(SpaceError) as e:
        load_space(str(f))
    assert str(f) in str(e.value) and needle in str(e.value) and "\n" not in str(e.value)


def test_space_extends_a_base_and_fixing_a_name_stops_searching_it(tmp_path):
    # Rule: `extends` starts from the base space; the file's fixed/params replace the base's by
    # name, and a name it fixes is no longer searched (optuna_plain = optuna without shifts or distortions).
    base, plain = load_space("optuna"), load_space("optuna_plain")
    augment = {"augment_shift", "elastic_alpha", "distort_rotate", "distort_scale"}
    assert augment <= set(base.params) and not augment & set(plain.params)
    assert plain.fixed == {**base.fixed, "augment_shift": 0, "elastic_alpha": 0.0, "distort_rotate": 0.0,
                           "distort_scale": 0.0}
    assert set(plain.params) == set(base.params) - augment and (base.stretch, plain.stretch) == (1.5, 1.0)
    assert plain.params["batch_size"].choices == [64, 128, 256] != base.params["batch_size"].choices
    assert plain.params["lr"] == base.params["lr"] and plain.base_config().augment_shift == 0
    (tmp_path / "mine.yaml").write_text("extends: optuna\nfixed: {hidden_sizes: [300, 100]}\n")
    mine = load_space(str(tmp_path / "mine.yaml"))
    assert "n_layers" not in mine.params and "width" not in mine.params  # fixing widths fixes depth too
    assert mine.base_config().hidden_sizes == [300, 100]


@pytest.mark.parametrize("files, needle", [
    ({"a.yaml": "extends: nowhere\nfixed: {epochs: 2}"}, "extends: nowhere: no such space file"),
    ({"a.yaml": "extends: b.yaml", "b.yaml": "extends: a.yaml"}, "extends: a loop (a.yaml -> b.yaml -> a.yaml)"),
    ({"a.yaml": "extends: b.yaml\nfixed: {epochs: 0}", "b.yaml": "params: {lr: {values: [0.1]}}"}, "fixed.epochs: 0"),
    ({"a.yaml": "extends: b.yaml", "b.yaml": "[1, 2]"}, "b.yaml: expected a mapping"),
    ({"a.yaml": "extends: b.yaml", "b.yaml": "params: {lr: {values: [-1]}}"}, "b.yaml: params.lr.values[0]: -1"),
    ({"a.yaml": "extends: [optuna]"}, "extends: ['optuna']: give a space name or a path"),
])
def test_bad_extends_is_one_line_naming_the_file(tmp_path, files, needle):
    # Rule: a missing, looping or bad base space is one SpaceError naming the file and value.
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    with pytest.raises(SpaceError) as e:
        load_space(str(tmp_path / "a.yaml"))
    assert needle in str(e.value) and str(tmp_path) in str(e.value) and "\n" not in str(e.value)


def test_retrain_stretch_scales_epochs_and_step_size():
    # Rule: `retrain: {stretch: s}` retrains the best trial's schedule over s times its epochs.
    space = parse_space({"retrain": {"stretch": 2.5}, "params": {"dropout": {"values": [0.1]}}}, "s.yaml")
    best = TrainConfig(epochs=12, step_size=5, lr=0.3)
    got = space.retrain_config(best)
    assert (got.epochs, got.step_size, got.lr) == (30, 12, 0.3)


def test_no_retrain_section_retrains_as_the_trial_ran():
    # Rule: without `retrain`, the retrain is the best trial's own configuration.
    space = parse_space({"params": {"dropout": {"values": [0.1]}}}, "s.yaml")
    best = TrainConfig(epochs=12)
    assert (space.stretch, space.retrain_config(best)) == (1.0, best)


@pytest.mark.parametrize("retrain, message", [
    ({"stretch": 0.5}, "s.yaml: retrain.stretch: 0.5: must be a number from 1 to 20"),
    ({"stretch": "2x"}, "s.yaml: retrain.stretch: '2x': must be a number from 1 to 20"),
    ({"epochs": 100}, "s.yaml: retrain: unknown key 'epochs' (allowed: stretch)"),
    (3, "s.yaml: retrain: expected a mapping (e.g. {stretch: 2}), got 3"),
])
def test_bad_retrain_section_is_one_error(retrain, message):
    # Rule: a bad `retrain` section is one SpaceError naming the key and value.
    with pytest.raises(SpaceError) as e:
        parse_space({"retrain": retrain, "params": {"dropout": {"values": [0.1]}}}, "s.yaml")
    assert str(e.value) == message


def test_extending_space_keeps_the_base_retrain(tmp_path):
    # Rule: a file that extends another inherits its `retrain` stretch unless it sets its own.
    (tmp_path / "base.yaml").write_text("retrain: {stretch: 3}\nparams: {dropout: {values: [0.1]}}\n")
    (tmp_path / "child.yaml").write_text("extends: base.yaml\nfixed: {epochs: 4}\n")
    (tmp_path / "own.yaml").write_text("extends: base.yaml\nretrain: {stretch: 1.5}\n")
    assert (load_space(str(tmp_path / "child.yaml")).stretch, load_space(str(tmp_path / "own.yaml")).stretch) == (3.0, 1.5)
