"""model/card.py: a saved model describes itself, and loads from its folder alone."""
from __future__ import annotations

import json

import pytest
import torch

from common.errors import InputError
from common.provenance import versions
from model.card import find, load, save


def test_the_card_records_what_using_the_model_needs(trained_model, trained_splits):
    # Rule: model.json holds the MLP config, image shape, class names, normalisation, checksum and versions.
    card = json.loads((trained_model / "model.json").read_text())
    assert card["mlp"] == {"in_features": 784, "hidden_sizes": [512, 256], "num_classes": 10, "dropout": 0.2,
                           "layer_norm": True}
    assert card["image_shape"] == [28, 28] and card["classes"] == [str(d) for d in range(10)]
    assert (card["mean"], card["std"]) == (trained_splits.mean, trained_splits.std)
    assert card["pixel_range"] == [0.0, 255.0]
    assert card["data_checksum"] == trained_splits.checksum == "bd3808b2414328cf71cc2764408ae4c5"
    assert card["versions"] == versions()


def test_loading_needs_nothing_but_the_folder(trained_model, trained_splits):
    # Rule: the loaded model gives the same logits as the weights it was saved from.
    loaded = load(trained_model)
    state = torch.load(trained_model / "model.pt", weights_only=True)
    assert all(torch.equal(loaded.model.state_dict()[k], v) for k, v in state.items())
    assert not loaded.model.training and loaded.weights == trained_model / "model.pt"


def test_a_stem_names_the_pair(trained_model, tmp_path):
    # Rule: save(stem="model_small") writes model_small.pt and model_small.json, and a .pt path loads its own card.
    loaded = load(trained_model)
    save(tmp_path, loaded.model, loaded.card, stem="model_small")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model_small.json", "model_small.pt"]
    assert load(tmp_path / "model_small.pt").card.classes == loaded.card.classes


def test_a_missing_folder_is_named(tmp_path):
    with pytest.raises(InputError, match=f"^{tmp_path / 'nope'}: no such model folder"):
        find(tmp_path / "nope")


@pytest.mark.parametrize("info, why", [
    ({"state": "interrupted", "search": {"retrain": True}},
     "its search was interrupted before the retrain: run the same command with --resume to finish it"),
    ({"state": "running", "search": {"retrain": True}},
     "its search is running, or was killed: wait for it, or run the same command with --resume"),
    ({"state": "finished", "search": {"retrain": False}},
     "its search ran with --no-retrain: run it again without that flag, under a new --name"),
    ({"state": "finished", "search": {"retrain": True}},
     "its search found no trial to retrain: every trial diverged or failed"),
    ({}, "its search has not retrained a best model"),
], ids=["interrupted", "running", "no-retrain", "no-best", "unknown"])
def test_a_search_without_a_model_says_why(tmp_path, info, why):
    # Rule: the reason comes from search.json's state and flags, never a flag the search did not use.
    (tmp_path / "search.json").write_text(json.dumps(info))
    with pytest.raises(InputError) as e:
        find(tmp_path)
    assert str(e.value) == (f"{tmp_path}: no model.pt ({why}); give a run folder results/runs/<name> or a search "
                            "folder results/<name>")


def test_weights_without_a_card_are_refused(trained_model, tmp_path):
    # Rule: an older folder (model.pt only) is refused in one line, not guessed at.
    (tmp_path / "model.pt").write_bytes((trained_model / "model.pt").read_bytes())
    with pytest.raises(InputError, match="model.pt has no model.json beside it"):
        load(tmp_path)


def test_weights_of_another_network_are_refused(trained_model, tmp_path):
    card = json.loads((trained_model / "model.json").read_text())
    card["mlp"]["hidden_sizes"] = [32]
    (tmp_path / "model.json").write_text(json.dumps(card))
    (tmp_path / "model.pt").write_bytes((trained_model / "model.pt").read_bytes())
    with pytest.raises(InputError, match="does not hold the network model.json describes"):
        load(tmp_path)
