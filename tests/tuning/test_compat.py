"""tuning/compat.py: the version check, the public fallbacks, the reversible log Φ swap, Ray's state file
names; that no other module reaches a private part of Optuna or Ray; tuning/driver/ray_env.py's
search_environment."""
from __future__ import annotations

import ast
import contextlib
import logging
import os
import re
from pathlib import Path

import optuna
import pytest
import scipy.special

from tuning import compat

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("common", "data", "model", "tuning", "benchmarks")
LIBRARIES = ("optuna", "ray")
LISTED = {"_tpe", "_truncnorm", "_log_ndtr", "_log_ndtr_single", "_get_trials", "_gamma", "_sample", "_split_trials",
          "_is_multi_objective", "_storage", "_trial_id", "_ot_study", "_ot_trials", "_completed_trials",
          "_suggest_from_define_by_run_func", "_space", "_trial_writer", "_trial_result", "_trial_files",
          "_trial_csv", "_trial_continue", "_setup_trial"}
"""Private names of Optuna and Ray the project has used; with those tuning/compat.py reaches, no other module may."""


def private_name(name: object) -> bool:
    return isinstance(name, str) and re.fullmatch(r"_[A-Za-z]\w*", name) is not None


def compat_names() -> set[str]:
    """The private names tuning/compat.py reaches: attributes, methods it sets, names in strings, imports."""
    out = set()
    for node in ast.walk(ast.parse((ROOT / "tuning" / "compat.py").read_text())):
        if isinstance(node, ast.Attribute):
            out.add(node.attr)
        elif isinstance(node, ast.FunctionDef):
            out.add(node.name)
        elif isinstance(node, ast.Constant):
            out.add(node.value)
        elif isinstance(node, ast.ImportFrom) and node.module:
            out |= set(node.module.split(".")) | {a.name for a in node.names}
    return {n for n in out if private_name(n)}


def private_uses(source: str, names: set[str]) -> list[str]:
    """Where `source` reaches a private part of Optuna or Ray: an import of a module (or a name) with a
    `_` component, an attribute or method override named in `names`, or such a name as a string (getattr)."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            modules = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            modules = [f"{node.module}.{a.name}" for a in node.names]
        else:
            modules = []
        for m in modules:
            parts = m.split(".")
            if parts[0] in LIBRARIES and any(private_name(p) for p in parts[1:]):
                found.append(f"{node.lineno}: import {m}")
        if isinstance(node, ast.Attribute) and node.attr in names:
            found.append(f"{node.lineno}: .{node.attr}")
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name in names:
            found.append(f"{node.lineno}: def {node.name}")
        elif isinstance(node, ast.Constant) and node.value in names:
            found.append(f"{node.lineno}: {node.value!r}")
    return sorted(found, key=lambda f: int(f.partition(":")[0]))


def test_the_checker_finds_private_uses_and_not_our_own_private_names():
    # Rule: imports through a `_` module, library attributes, overrides and getattr strings are found;
    # our own `self._memo`, private helpers and public imports are not.
    source = ("from optuna.samplers._tpe import _truncnorm\nimport ray._private.utils\n"
              "from optuna.samplers import _tpe\nstudy._get_trials()\nclass S:\n    def _sample(self): pass\n"
              "hasattr(x, '_trial_writer')\nself._memo = 1\ndef _helper(): pass\n"
              "from optuna.trial import TrialState\nself._seen.add(1)\n")
    assert private_uses(source, LISTED) == ["1: import optuna.samplers._tpe._truncnorm",
                                            "2: import ray._private.utils", "3: import optuna.samplers._tpe",
                                            "4: ._get_trials", "6: def _sample", "7: '_trial_writer'"]


def test_no_module_but_compat_reaches_a_private_part_of_optuna_or_ray():
    # Rule: every private name of Optuna or Ray (LISTED, and all that tuning/compat.py reaches) is
    # reached through tuning/compat.py only.
    names = LISTED | compat_names()
    assert {"_get_trials", "_ot_study", "_trial_writer", "_trial_files"} <= compat_names()
    found = {str(p.relative_to(ROOT)): uses for pkg in PACKAGES for p in sorted((ROOT / pkg).rglob("*.py"))
             if p != ROOT / "tuning" / "compat.py" and (uses := private_uses(p.read_text(), names))}
    assert found == {}


def test_the_installed_versions_are_tested_ones(caplog):
    # Rule: the installed Optuna and Ray pass the check without a warning, and use the private parts.
    import ray

    with caplog.at_level(logging.WARNING, logger="tuning.compat"):
        assert compat.check_version("optuna", optuna.__version__)
        assert compat.check_version("ray", ray.__version__)
    assert caplog.records == []
    assert compat.OPTUNA_TESTED and compat.RAY_TESTED


@pytest.mark.parametrize("library, version", [("optuna", "9.9.0"), ("ray", "2.61.0"), ("optuna", "4.5.0rc1")])
def test_an_untested_version_is_one_warning_naming_it(caplog, library, version):
    # Rule: an untested major or minor version gives False (the public fallbacks) and one warning that
    # names the library, the version and what falls back.
    with caplog.at_level(logging.WARNING, logger="tuning.compat"):
        assert compat.check_version(library, version) is False
    [record] = caplog.records
    assert record.name == "tuning.compat" and f"{library} {version} is not a version tested here" in record.message
    assert compat.FALLBACK[library] in record.message


def test_a_library_not_installed_is_no_warning(caplog):
    with caplog.at_level(logging.WARNING, logger="tuning.compat"):
        assert compat.check_version("ray", compat.installed("no-such-distribution-here")) is False
    assert caplog.records == []


def test_the_log_ndtr_swap_is_explicit_and_reversible():
    # Rule: swap_log_ndtr puts a function in TPE's place and restore_log_ndtr puts Optuna's own back;
    # on an untested Optuna nothing is swapped.
    own = compat.optunas_log_ndtr()
    try:
        assert compat.swap_log_ndtr(scipy.special.log_ndtr) and compat.log_ndtr_in_use() is scipy.special.log_ndtr
        compat.restore_log_ndtr()
        assert compat.log_ndtr_in_use() is own and callable(own)
    finally:
        compat.swap_log_ndtr(scipy.special.log_ndtr)  # as every sampler of ours leaves it


def test_on_an_untested_optuna_the_log_ndtr_is_optunas(monkeypatch):
    try:
        compat.restore_log_ndtr()
        monkeypatch.setattr(compat, "OPTUNA_TESTED", False)
        assert not compat.swap_log_ndtr(scipy.special.log_ndtr)
        assert compat.log_ndtr_in_use() is compat.optunas_log_ndtr()
    finally:
        monkeypatch.undo()
        compat.swap_log_ndtr(scipy.special.log_ndtr)


@pytest.mark.parametrize("tested", [True, False])
def test_trial_lists_and_states_are_the_same_through_the_public_fallback(monkeypatch, tested):
    # Rule: with an untested Optuna, trial lists and a trial's stored state come from the public API, the same.
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    monkeypatch.setattr(compat, "OPTUNA_TESTED", tested)
    study = optuna.create_study()
    study.tell(study.ask(), 1.0)
    running = study.ask()
    states = (optuna.trial.TrialState.COMPLETE,)
    assert [t.number for t in compat.study_trials(study, deepcopy=False, states=states)] == [0]
    assert [t.number for t in compat.StudyView(study)._get_trials(False, None, True)] == [0, 1]
    assert compat.trial_state(study, running) == optuna.trial.TrialState.RUNNING
    assert compat.trial_of(study, study.trials[1]).number == 1


def test_the_state_file_names_are_rays():
    # Rule: the experiment and searcher state files backed up are those Ray writes (its CKPT_FILE_TMPL).
    from ray.tune.execution.tune_controller import TuneController
    from ray.tune.search.basic_variant import BasicVariantGenerator
    from ray.tune.search.search_generator import SearchGenerator
    from ray.tune.search.searcher import Searcher

    assert compat.EXPERIMENT_STATE == TuneController.CKPT_FILE_TMPL.format("*")
    assert compat.SEARCH_STATES == tuple(c.CKPT_FILE_TMPL.format("*") for c in
                                         (BasicVariantGenerator, SearchGenerator, Searcher))


def test_rays_logger_parts_are_there():
    # Rule: the CSV and TensorBoard loggers of the installed Ray have what tuning/compat.py reaches.
    from ray.tune.logger import CSVLoggerCallback, TBXLoggerCallback

    assert compat.csv_lacks(CSVLoggerCallback()) == []
    assert all(isinstance(getattr(TBXLoggerCallback(), n, None), dict) for n in ("_trial_writer", "_trial_result"))


def test_importing_compat_imports_neither_library():
    # Rule: `python -m tuning.report` must not import Ray, and grid commands no Optuna, for compat's sake.
    import subprocess
    import sys

    code = "import sys, tuning.compat; print(sorted({'ray', 'optuna'} & set(sys.modules)))"
    r = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert (r.returncode, r.stdout.strip(), r.stderr) == (0, "[]", "")


@pytest.fixture
def ray_logger_level():
    """The "ray" logger's level, put back after the test (quiet_ray_env sets it for the process)."""
    level = logging.getLogger("ray").level
    yield
    logging.getLogger("ray").setLevel(level)


@pytest.mark.parametrize("fail", [False, True])
def test_search_environment_puts_every_variable_back(monkeypatch, ray_logger_level, fail):
    # Rule: on exit (an exception included) every variable a search sets is as it was: the user's own
    # value back, the others removed, also one set inside (pending_trials, when the tuner is built).
    from tuning.driver.ray_env import (AUTO_LOGGERS, MAX_PENDING, QUIET, SEARCH_VARIABLES, STATE_SAVE, pending_trials,
                                       search_environment)

    for name in SEARCH_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv(STATE_SAVE, "5")
    before = dict(os.environ)
    with pytest.raises(RuntimeError) if fail else contextlib.nullcontext():
        with search_environment(ray_output=False):
            assert {n: os.environ.get(n) for n in (AUTO_LOGGERS, STATE_SAVE, *QUIET)} == \
                {AUTO_LOGGERS: "1", STATE_SAVE: "5", **QUIET}
            pending_trials(3)
            assert os.environ[MAX_PENDING] == "3"
            if fail:
                raise RuntimeError("a search that fails")
    assert dict(os.environ) == before


def test_search_environment_leaves_rays_output_on_when_asked(monkeypatch, ray_logger_level):
    from tuning.driver.ray_env import QUIET, search_environment

    for name in QUIET:
        monkeypatch.delenv(name, raising=False)
    with search_environment(ray_output=True):
        assert not set(QUIET) & set(os.environ)
