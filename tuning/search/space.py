"""One search-space schema (YAML in search_spaces/) for both the grid and the Optuna search.

    fixed:                    # TrainConfig fields every trial shares
      epochs: 9
    params:                   # searched; each gives grid `values` and/or a distribution
      lr: {values: [0.01, 0.1], distribution: loguniform, low: 0.001, high: 0.5}
      batch_size: {values: [16, 64], distribution: categorical}   # choices default to values
      n_layers: {distribution: int, low: 1, high: 3}   # conditional depth (Optuna): with `width`,
      width: {distribution: int, low: 64, high: 1024, log: true}  # width_1..width_n per existing layer
    retrain:                  # how the best configuration is retrained (optional)
      stretch: 2              # its schedule stretched to 2x its epochs (step decays too)

A file may start from another (`extends: optuna`): its `fixed`, `params` and `retrain` entries replace
the base's by name, and a name it fixes is no longer searched (`fixed: {augment_shift: 0}`).

Every mistake raises one SpaceError naming the file, the key and the value.
"""
from __future__ import annotations

import dataclasses
import math
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

from common.errors import FieldError, InputError
from model.config import TrainConfig

SPACES_DIR = Path(__file__).resolve().parents[2] / "search_spaces"
DISTRIBUTIONS = ("loguniform", "uniform", "int", "categorical")
PARAM_KEYS = {"values", "distribution", "low", "high", "choices", "log", "step"}
RETRAIN_KEYS = {"stretch"}
TOP_KEYS = ("description", "extends", "fixed", "params", "retrain")
DEPTH, WIDTH = "n_layers", "width"  # conditional depth: width_i exists only for i <= n_layers
NOT_SEARCHABLE = {"seed", "threads", "device"}
NOTEBOOK_BEST = {"lr": 0.1, "batch_size": 16}  # the best of the original notebook this project grew from
# (an lr x batch-size study by hand): Optuna's trial 0, the grid's first point


# ---------------------------------------------------------------- the hidden_sizes codec
def encode_sizes(v: Any) -> Any:
    """[512, 256] -> "512-256"; anything else unchanged. Ray's preset points, Optuna's categorical
    choices and table cells hold scalars only, so a list of widths travels as this string."""
    return "-".join(map(str, v)) if isinstance(v, (list, tuple)) else v


def decode_sizes(v: Any) -> list[int]:
    """"512-256" (or "512", or 512, or [512, 256]) -> [512, 256]."""
    if isinstance(v, (list, tuple)):
        return [int(w) for w in v]
    return [int(w) for w in str(v).split("-")]



class SpaceError(InputError):
    """A search-space file that cannot be used."""


@dataclass
class Param:
    name: str
    values: list | None = None
    distribution: str | None = None
    low: float | None = None
    high: float | None = None
    choices: list | None = None
    log: bool = False
    step: float | None = None


@dataclass
class SearchSpace:
    path: str
    fixed: dict[str, Any] = field(default_factory=dict)
    params: dict[str, Param] = field(default_factory=dict)
    description: str = ""
    stretch: float = 1.0
    """The retrain runs the best trial's schedule over `stretch` times its epochs (distorted training
    keeps improving after a trial's length)."""

    @property
    def names(self) -> list[str]:
        return list(self.params)

    def base_config(self, **overrides: Any) -> TrainConfig:
        """TrainConfig with the fixed settings, then `overrides` (from flags) on top."""
        return dataclasses.replace(TrainConfig(), **{**self.fixed, **overrides})

    def retrain_config(self, best: TrainConfig) -> TrainConfig:
        """The best trial's configuration as the retrain runs it: `stretch` times its epochs and step size."""
        if self.stretch == 1:
            return best
        return dataclasses.replace(best, epochs=max(1, round(best.epochs * self.stretch)),
                                   step_size=max(1, round(best.step_size * self.stretch)))


def resolve_space_path(name_or_path: str) -> Path:
    """A path, or a bare name of a file in search_spaces/ ('grid' -> search_spaces/grid.yaml)."""
    p = Path(name_or_path)
    if p.exists():
        return p
    for cand in (SPACES_DIR / name_or_path, SPACES_DIR / f"{name_or_path}.yaml"):
        if cand.exists():
            return cand
    raise SpaceError(f"--space {name_or_path}: no such file (nor {SPACES_DIR}/{p.name})")


def load_space(name_or_path: str) -> SearchSpace:
    path = resolve_space_path(name_or_path)
    return parse_space(_read_raw(path, []), str(path))


def _read_raw(path: Path, chain: list[Path]) -> Any:
    """The file's YAML, with the file it `extends` (recursively) merged underneath."""
    here = path.resolve()
    if here in chain:
        raise SpaceError(f"{path}: extends: a loop ({' -> '.join(p.name for p in [*chain, here])})")
    try:
        raw = yaml.safe_load(path.read_text())
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark else ""
        raise SpaceError(f"{path}:{where} not valid YAML ({getattr(e, 'problem', e)})") from None
    except OSError as e:
        raise SpaceError(f"{path}: cannot read ({e.strerror})") from None
    if not isinstance(raw, dict) or "extends" not in raw:
        return raw
    raw = dict(raw)
    parent_name = raw.pop("extends")
    if not isinstance(parent_name, str):
        raise SpaceError(f"{path}: extends: {parent_name!r}: give a space name or a path")
    local = path.parent / parent_name
    try:
        parent_path = local if local.is_file() else resolve_space_path(parent_name)
    except SpaceError:
        raise SpaceError(f"{path}: extends: {parent_name}: no such space file") from None
    base = _read_raw(parent_path, [*chain, here])
    parse_space(base, str(parent_path))  # a base is a whole space: its mistakes name its own file
    for key in ("fixed", "params", "retrain"):
        if raw.get(key) is not None and not isinstance(raw[key], dict):
            raise SpaceError(f"{path}: {key}: expected a mapping, got {raw[key]!r}")
    fixed = {**(base.get("fixed") or {}), **(raw.get("fixed") or {})}
    params = {**(base.get("params") or {}), **(raw.get("params") or {})}
    retrain = {**(base.get("retrain") or {}), **(raw.get("retrain") or {})}
    for name in raw.get("fixed") or {}:  # fixed here: no longer searched
        for searched in (name, DEPTH, WIDTH) if name == "hidden_sizes" else (name,):
            params.pop(searched, None)
    return {**base, **raw, "fixed": fixed, "params": params, **({"retrain": retrain} if retrain else {})}


def parse_space(raw: Any, src: str) -> SearchSpace:
    if not isinstance(raw, dict):
        raise SpaceError(f"{src}: expected a mapping with 'params' (and 'fixed'), got {type(raw).__name__}")
    unknown = set(raw) - set(TOP_KEYS)
    if unknown:
        raise SpaceError(f"{src}: unknown key '{sorted(unknown)[0]}' (allowed: {', '.join(TOP_KEYS)})")
    fixed, params = raw.get("fixed") or {}, raw.get("params")
    if not isinstance(fixed, dict):
        raise SpaceError(f"{src}: fixed: expected a mapping, got {fixed!r}")
    if not isinstance(params, dict) or not params:
        raise SpaceError(f"{src}: params: expected a non-empty mapping of parameters, got {params!r}")
    for k, v in fixed.items():
        if k in (DEPTH, WIDTH):  # depth and width are searched forms of hidden_sizes
            raise SpaceError(f"{src}: fixed.{k}: {v!r}: fix hidden_sizes (e.g. [512, 256]) instead")
        _check_value(src, f"fixed.{k}", k, v)
    space = SearchSpace(src, fixed=dict(fixed), description=str(raw.get("description", "")),
                        stretch=_parse_retrain(src, raw.get("retrain")))
    for name, spec in params.items():
        space.params[name] = _parse_param(src, name, spec)
    if (DEPTH in space.params) != (WIDTH in space.params):
        raise SpaceError(f"{src}: params.{DEPTH} and params.{WIDTH} go together (conditional depth)")
    if DEPTH in space.params and "hidden_sizes" in space.params:
        raise SpaceError(f"{src}: params.hidden_sizes conflicts with params.{DEPTH}/{WIDTH}")
    return space


def _parse_retrain(src: str, retrain: Any) -> float:
    """The `retrain` mapping's stretch (1 without one)."""
    if retrain is not None and not isinstance(retrain, dict):
        raise SpaceError(f"{src}: retrain: expected a mapping (e.g. {{stretch: 2}}), got {retrain!r}")
    for key in set(retrain or {}) - RETRAIN_KEYS:
        raise SpaceError(f"{src}: retrain: unknown key '{key}' (allowed: {', '.join(sorted(RETRAIN_KEYS))})")
    v = (retrain or {}).get("stretch", 1.0)
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or not 1 <= v <= 20:
        raise SpaceError(f"{src}: retrain.stretch: {v!r}: must be a number from 1 to 20")
    return float(v)


def _check_value(src: str, key: str, name: str, value: Any) -> None:
    """Type-check one value against TrainConfig's field and its validate() rules."""
    if name in (DEPTH, WIDTH):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise SpaceError(f"{src}: {key}: {value!r}: must be an integer >= 1")
        return
    tp = typing.get_type_hints(TrainConfig).get(name)
    if tp is None or name in NOT_SEARCHABLE:
        allowed = sorted(set(typing.get_type_hints(TrainConfig)) - NOT_SEARCHABLE | {DEPTH, WIDTH})
        raise SpaceError(f"{src}: {key}: unknown parameter '{name}' (known: {', '.join(allowed)})")
    ok = _is_type(value, tp)
    if not ok:
        raise SpaceError(f"{src}: {key}: {value!r} is not a valid {_type_name(tp)}")
    try:
        dataclasses.replace(TrainConfig(), **{name: value}).validate()
    except FieldError as e:
        raise SpaceError(f"{src}: {key}: {value!r}: {e.reason}") from None


def _is_type(value: Any, tp: Any) -> bool:
    origin = typing.get_origin(tp)
    if origin is Literal:
        return value in typing.get_args(tp)
    if origin is list:
        return isinstance(value, list) and all(isinstance(v, int) and not isinstance(v, bool) for v in value)
    if tp is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    if tp is int:
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, tp)


def _type_name(tp: Any) -> str:
    if typing.get_origin(tp) is Literal:
        return "choice of " + "/".join(map(str, typing.get_args(tp)))
    if typing.get_origin(tp) is list:
        return "list of integers"
    return tp.__name__


def _parse_param(src: str, name: str, spec: Any) -> Param:
    key = f"params.{name}"
    if not isinstance(spec, dict):
        raise SpaceError(f"{src}: {key}: expected a mapping with 'values' or 'distribution', got {spec!r}")
    unknown = set(spec) - PARAM_KEYS
    if unknown:
        raise SpaceError(f"{src}: {key}: unknown key '{sorted(unknown)[0]}' (allowed: {', '.join(sorted(PARAM_KEYS))})")
    p = Param(name, **{k: spec[k] for k in spec})
    if p.values is None and p.distribution is None:
        raise SpaceError(f"{src}: {key}: give 'values' (grid) and/or 'distribution'")
    if p.values is not None:
        if not isinstance(p.values, list) or not p.values:
            raise SpaceError(f"{src}: {key}.values: {p.values!r}: must be a non-empty list")
        for i, v in enumerate(p.values):
            _check_value(src, f"{key}.values[{i}]", name, v)
    if p.distribution is None:
        return p
    if p.distribution not in DISTRIBUTIONS:
        raise SpaceError(f"{src}: {key}.distribution: unknown distribution '{p.distribution}' "
                         f"(known: {', '.join(DISTRIBUTIONS)})")
    if p.distribution == "categorical":
        p.choices = p.choices if p.choices is not None else p.values
        if not isinstance(p.choices, list) or not p.choices:
            raise SpaceError(f"{src}: {key}.choices: {p.choices!r}: categorical needs a non-empty list")
        for i, v in enumerate(p.choices):
            _check_value(src, f"{key}.choices[{i}]", name, v)
        return p
    for bound in ("low", "high"):
        v = getattr(p, bound)
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            raise SpaceError(f"{src}: {key}.{bound}: {v!r}: {p.distribution} needs a number")
        _check_value(src, f"{key}.{bound}", name, int(v) if p.distribution == "int" and float(v).is_integer() else v)
    if not p.low < p.high:
        raise SpaceError(f"{src}: {key}: low {p.low} must be < high {p.high}")
    if p.distribution == "loguniform" and p.low <= 0:
        raise SpaceError(f"{src}: {key}.low: {p.low}: loguniform needs low > 0")
    return p


class DefineByRun:
    """Optuna define-by-run space (a picklable callable: Ray checkpoints the searcher).

    Trials without a layer never get its width.
    """

    def __init__(self, space: SearchSpace):
        self.space = space

    def __call__(self, trial: Any) -> None:
        for name, p in self.space.params.items():
            if name == WIDTH:
                continue
            _suggest_one(trial, name, p)
            if name == DEPTH:
                for i in range(1, int(trial.params[DEPTH]) + 1):
                    _suggest_one(trial, f"{WIDTH}_{i}", self.space.params[WIDTH])


def _suggest_one(trial: Any, name: str, p: Param) -> Any:
    d = p.distribution or "categorical"
    if d == "categorical":
        choices = p.choices or p.values
        # Optuna stores only scalars: lists (hidden_sizes) travel as "512-256" strings.
        return trial.suggest_categorical(name, [encode_sizes(c) for c in choices])
    if d == "int":
        return trial.suggest_int(name, int(p.low), int(p.high), step=int(p.step or 1), log=bool(p.log))
    return trial.suggest_float(name, float(p.low), float(p.high), log=d == "loguniform" or bool(p.log))


def apply_params(base: TrainConfig, params: dict[str, Any]) -> TrainConfig:
    """A trial's TrainConfig: `params` (as Ray or Optuna give them) on top of `base`."""
    params = dict(params)
    if DEPTH in params:
        n = int(params.pop(DEPTH))
        params["hidden_sizes"] = [int(params.pop(f"{WIDTH}_{i}")) for i in range(1, n + 1)]
    for k in [k for k in params if k.startswith(f"{WIDTH}_")]:
        params.pop(k)
    if "hidden_sizes" in params:
        params["hidden_sizes"] = decode_sizes(params["hidden_sizes"])
    return dataclasses.replace(base, **params)
