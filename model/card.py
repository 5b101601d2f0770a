"""A model that describes itself: `model.json` beside `model.pt` holds all that using it needs.

The card carries the MLP's config, the input image shape, the class names, the normalisation
(training mean and std, in the data's pixel units), the pixel range of the training images, the
training data's checksum and source, and the library versions. `load` rebuilds the network from
the card and the weights alone: no data set and no search space, so `model.predict` and
`model.export` work anywhere the two files are copied.

A committee (model.committee: K MLPs averaging their probabilities) is saved the same way, as
committee.pt + committee.json by default: its card lists every member's config in `members`
(`mlp` is the first member's), and `load` gives back the Committee. A single model's card has no
`members`, so its model.json is what it always was.
"""
from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass, field
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from common.atomic import atomic_write, write_json
from common.errors import InputError
from common.folders import SEARCH_MARKER, STATE_FINISHED, STATE_INTERRUPTED, STATE_RUNNING
from common.provenance import versions
from model.committee import Committee
from model.mlp import MLP, MLPConfig

CARD_VERSION = 1  # bumped when a field changes meaning
PATH_FIELDS = ("data_dir", "train_csv", "test_csv", "image_dir")  # DataConfig fields that name files


@dataclass
class ModelCard:
    """What a saved model needs besides its weights."""

    mlp: MLPConfig
    image_shape: tuple[int, int]  # (height, width) of one input image
    classes: list[str]  # class names in logit order
    mean: float  # the training pixels' mean and std: inputs are (pixels - mean) / std
    std: float
    pixel_range: tuple[float, float] = (0.0, 255.0)  # smallest and largest training pixel (photos map onto it)
    data_checksum: str = ""  # md5 of the training data's arrays (data.dataset.checksum)
    data: dict[str, Any] = field(default_factory=dict)  # the DataConfig it was trained on, to find its test set
    versions: dict[str, str] = field(default_factory=versions)
    card_version: int = CARD_VERSION
    members: list[MLPConfig] = field(default_factory=list)  # a committee's networks; empty for one model

    def to_json(self) -> dict:
        d = dataclasses.asdict(self)
        d["image_shape"], d["pixel_range"] = list(self.image_shape), list(self.pixel_range)
        if not self.members:  # a single model's card stays as it was before committees
            del d["members"]
        return d

    @classmethod
    def from_json(cls, d: dict, where: Path) -> "ModelCard":
        try:
            known = {f.name for f in dataclasses.fields(MLPConfig)}
            mlp = MLPConfig(**{k: v for k, v in d["mlp"].items() if k in known})
            raw = d.get("members") or []
            if not isinstance(raw, list) or not all(isinstance(m, dict) for m in raw):
                raise ValueError("members is not a list of network configs")
            members = [MLPConfig(**{k: v for k, v in m.items() if k in known}) for m in raw]
            h, w = (int(v) for v in d["image_shape"])
            lo, hi = (float(v) for v in d.get("pixel_range", (0.0, 255.0)))
            return cls(mlp=mlp, image_shape=(h, w), classes=[str(c) for c in d["classes"]], mean=float(d["mean"]),
                       std=float(d["std"]), pixel_range=(lo, hi), data_checksum=str(d.get("data_checksum", "")),
                       data=dict(d.get("data") or {}), versions=dict(d.get("versions") or {}),
                       card_version=int(d.get("card_version", CARD_VERSION)), members=members)
        except (KeyError, TypeError, ValueError) as e:
            raise InputError(f"{where}: not a model card ({type(e).__name__}: {e})") from None


def card_for(model: MLP, splits: Any, data: dict[str, Any] | None = None) -> ModelCard:
    """The card of `model` trained on `splits` (data.splits.Splits)."""
    lo = float(min(splits.train_x.min(), splits.val_x.min())) if len(splits.val_x) else float(splits.train_x.min())
    hi = float(max(splits.train_x.max(), splits.val_x.max())) if len(splits.val_x) else float(splits.train_x.max())
    data = dict(data or {})
    for key in PATH_FIELDS:  # absolute, so model.export finds the test set from any folder
        if data.get(key):
            data[key] = str(Path(data[key]).expanduser().resolve())
    return ModelCard(mlp=model.cfg, image_shape=tuple(splits.image_shape), classes=list(splits.classes),
                     mean=splits.mean, std=splits.std, pixel_range=(lo, hi), data_checksum=splits.checksum,
                     data=data)


def save(folder: Path, model: MLP | Committee, card: ModelCard, stem: str = "model") -> Path:
    """`stem`.pt (the state_dict, as before) and `stem`.json (the card), each written whole."""
    folder = Path(folder)
    state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    atomic_write(folder / f"{stem}.pt", lambda p: torch.save(state, p))
    write_json(folder / f"{stem}.json", card.to_json())
    return folder / f"{stem}.pt"


def save_committee(folder: Path, models: Sequence[MLP], card: ModelCard, stem: str = "committee") -> Path:
    """`stem`.pt (the Committee's state_dict) and `stem`.json (`card` listing the members' configs,
    taken from `models`), each written whole. `card` is any member's (card_for); members that do
    not fit its image shape and classes are a ValueError, before anything is written."""
    committee = Committee(models)
    card = dataclasses.replace(card, mlp=committee.cfg, members=committee.configs)
    why = disagreement(card)
    if why:
        raise ValueError(f"the committee does not fit its card: {why}")
    return save(folder, committee, card, stem)


@dataclass
class Loaded:
    model: MLP | Committee  # on the CPU, in eval mode; a Committee when the card lists members
    card: ModelCard
    weights: Path  # the .pt file it came from


def _why_no_model(folder: Path) -> str:
    """Why a search folder holds no model.pt, from its search.json: interrupted, still running,
    --no-retrain, or no trial to retrain."""
    try:
        info = json.loads((folder / SEARCH_MARKER).read_text())
        state, retrain = info.get("state"), (info.get("search") or {}).get("retrain", True)
    except (OSError, ValueError, AttributeError):
        return "its search.json is unreadable"
    if state == STATE_INTERRUPTED:
        return "its search was interrupted before the retrain: run the same command with --resume to finish it"
    if state == STATE_RUNNING:
        return "its search is running, or was killed: wait for it, or run the same command with --resume"
    if not retrain:
        return "its search ran with --no-retrain: run it again without that flag, under a new --name"
    if state == STATE_FINISHED and not (folder / "best.json").is_file():
        return "its search found no trial to retrain: every trial diverged or failed"
    return "its search has not retrained a best model"


def model_files(path: str | Path) -> tuple[Path, Path]:
    """(weights, card) a MODEL argument names: a run or search folder holding model.pt, or the .pt
    or .json file of a pair (committee.pt, model_small.json...); one InputError when either file is
    missing. Nothing is read."""
    path = Path(path).expanduser()
    if not path.exists():
        raise InputError(f"{path}: no such model folder (give a run folder results/runs/<name> or a search "
                         "folder results/<name>)")
    if path.is_file():
        if path.suffix.lower() not in (".pt", ".json"):
            raise InputError(f"{path}: not a model (give a run folder, a search folder, or its model.pt or "
                             "model.json)")
        weights = path.with_suffix(".pt")
        if not weights.is_file():
            raise InputError(f"{path.parent}: {path.name} has no {weights.name} beside it")
    else:
        weights = path / "model.pt"
        if not weights.is_file():
            what = f" ({_why_no_model(path)})" if (path / SEARCH_MARKER).is_file() else ""
            if (path / "committee.pt").is_file():  # a folder means its model.pt; a committee is named by its file
                what = f" (it holds committee.pt: give {path / 'committee.pt'} to use that)"
            raise InputError(f"{path}: no model.pt{what}; give a run folder results/runs/<name> or a search "
                             "folder results/<name>")
    card = weights.with_suffix(".json")
    if not card.is_file():
        raise InputError(f"{weights.parent}: {weights.name} has no {card.name} beside it (saved by an older "
                         "version); train or retrain it again to use it here")
    return weights, card


def find(path: str | Path) -> Path:
    """The weights a MODEL argument names (see model_files)."""
    return model_files(path)[0]


def disagreement(card: ModelCard) -> str:
    """What in the card contradicts itself (its network against its image shape and classes, its
    normalisation), or ''. A card edited by hand, or copied beside other weights, loads as a network
    that fails only at its first forward pass."""
    h, w = card.image_shape
    if h < 1 or w < 1:
        return f"image_shape {h}x{w} is not an image size"
    networks = [("the network", card.mlp)] + [(f"member {i}", m) for i, m in enumerate(card.members)]
    for name, mlp in networks:
        if mlp.in_features != h * w:
            return f"image_shape {h}x{w} is {h * w} pixels but {name} takes {mlp.in_features}"
        if mlp.num_classes != len(card.classes):
            return f"{len(card.classes)} classes but {name} has {mlp.num_classes} outputs"
    if not (math.isfinite(card.mean) and math.isfinite(card.std) and card.std > 0):
        return f"normalisation mean {card.mean}, std {card.std} (std must be a positive number)"
    lo, hi = card.pixel_range
    if not (math.isfinite(lo) and math.isfinite(hi) and lo <= hi):
        return f"pixel_range {[lo, hi]} is not a range"
    return ""


def load(path: str | Path) -> Loaded:
    """The model and card a MODEL argument names, checked as a whole: the card agrees with itself and
    with the weights; one InputError naming the folder when anything is missing or does not agree."""
    weights, card_path = model_files(path)
    try:
        card = ModelCard.from_json(json.loads(card_path.read_text()), card_path)
    except (OSError, json.JSONDecodeError, UnicodeDecodeError) as e:
        raise InputError(f"{card_path}: unreadable ({' '.join(str(e).split())[:160]})") from None
    why = disagreement(card)
    if why:
        raise InputError(f"{weights.parent}: {card_path.name} does not describe a usable model ({why})")
    model = Committee.from_configs(card.members) if card.members else MLP(card.mlp)
    try:
        state = torch.load(weights, map_location="cpu", weights_only=True)
        model.load_state_dict(state)
    except Exception as e:  # noqa: BLE001 — torch.load raises whatever its unpickler meets in a damaged file
        raise InputError(f"{weights.parent}: {weights.name} does not hold the network {card_path.name} describes "
                         f"({' '.join(str(e).split())[:160]})") from None
    return Loaded(model.eval(), card, weights)
