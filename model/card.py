"""A model that describes itself: `model.json` beside `model.pt` holds all that using it needs.

The card carries the MLP's config, the input image shape, the class names, the normalisation
(training mean and std, in the data's pixel units), the pixel range of the training images, the
training data's checksum and source, and the library versions. `load` rebuilds the network from
the card and the weights alone: no data set and no search space, so `model.predict` and
`model.export` work anywhere the two files are copied.
"""
from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from common.atomic import atomic_write, write_json
from common.errors import InputError
from common.provenance import versions
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

    def to_json(self) -> dict:
        d = dataclasses.asdict(self)
        d["image_shape"], d["pixel_range"] = list(self.image_shape), list(self.pixel_range)
        return d

    @classmethod
    def from_json(cls, d: dict, where: Path) -> "ModelCard":
        try:
            known = {f.name for f in dataclasses.fields(MLPConfig)}
            mlp = MLPConfig(**{k: v for k, v in d["mlp"].items() if k in known})
            h, w = (int(v) for v in d["image_shape"])
            lo, hi = (float(v) for v in d.get("pixel_range", (0.0, 255.0)))
            return cls(mlp=mlp, image_shape=(h, w), classes=[str(c) for c in d["classes"]], mean=float(d["mean"]),
                       std=float(d["std"]), pixel_range=(lo, hi), data_checksum=str(d.get("data_checksum", "")),
                       data=dict(d.get("data") or {}), versions=dict(d.get("versions") or {}),
                       card_version=int(d.get("card_version", CARD_VERSION)))
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


def save(folder: Path, model: MLP, card: ModelCard, stem: str = "model") -> Path:
    """`stem`.pt (the state_dict, as before) and `stem`.json (the card), each written whole."""
    folder = Path(folder)
    state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    atomic_write(folder / f"{stem}.pt", lambda p: torch.save(state, p))
    write_json(folder / f"{stem}.json", card.to_json())
    return folder / f"{stem}.pt"


@dataclass
class Loaded:
    model: MLP  # on the CPU, in eval mode
    card: ModelCard
    weights: Path  # the .pt file it came from


def find(path: str | Path) -> Path:
    """The weights a MODEL argument names: a .pt file, or a run or search folder holding model.pt."""
    path = Path(path).expanduser()
    if not path.exists():
        raise InputError(f"{path}: no such model folder (give a run folder results/runs/<name> or a search "
                         "folder results/<name>)")
    if path.is_file():
        return path
    weights = path / "model.pt"
    if not weights.is_file():
        what = " (its search has not retrained a best model: run it without --no-retrain)" \
            if (path / "search.json").is_file() else ""
        raise InputError(f"{path}: no model.pt{what}; give a run folder results/runs/<name> or a search folder "
                         "results/<name>")
    return weights


def load(path: str | Path) -> Loaded:
    """The model and card a MODEL argument names; one InputError when either is missing or unusable."""
    weights = find(path)
    card_path = weights.with_suffix(".json")
    if not card_path.is_file():
        raise InputError(f"{weights.parent}: {weights.name} has no {card_path.name} beside it (saved by an older "
                         "version); train or retrain it again to use it here")
    try:
        card = ModelCard.from_json(json.loads(card_path.read_text()), card_path)
    except (OSError, json.JSONDecodeError) as e:
        raise InputError(f"{card_path}: unreadable ({e})") from None
    model = MLP(card.mlp)
    try:
        model.load_state_dict(torch.load(weights, map_location="cpu", weights_only=True))
    except (RuntimeError, OSError, ValueError, EOFError) as e:
        raise InputError(f"{weights}: does not hold the network {card_path.name} describes "
                         f"({' '.join(str(e).split())[:160]})") from None
    return Loaded(model.eval(), card, weights)
