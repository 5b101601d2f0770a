"""model/committee.py: K MLPs averaging their probabilities, saved, loaded, predicted and exported as one."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from common.errors import InputError
from data.csv import write_csv
from data.source import DataConfig, load_splits
from model.card import card_for, load, model_files, save, save_committee
from model.committee import Committee
from model.export import RawPixels
from model.mlp import MLP, MLPConfig
from tests.conftest import call_cli

SHAPE = (8, 8)
CLASSES = 3
WIDTHS = ([16], [8, 8], [12])  # three members of different shapes


def members(widths=WIDTHS, seed: int = 0) -> list[MLP]:
    torch.manual_seed(seed)
    return [MLP(MLPConfig(in_features=64, hidden_sizes=list(w), num_classes=CLASSES, dropout=0.1)).eval()
            for w in widths]


def mean_softmax(models: list[MLP], x: torch.Tensor) -> torch.Tensor:
    with torch.inference_mode():
        return torch.stack([torch.softmax(m(x), dim=1) for m in models]).mean(0)


@pytest.fixture(scope="module")
def tiny_data(tmp_path_factory) -> tuple[Path, Path]:
    """An 8x8, 3-class data set as train and test CSVs: the card records it, export checks on it."""
    folder = tmp_path_factory.mktemp("tiny-data")
    rng = np.random.default_rng(0)
    for name, n in (("train.csv", 60), ("test.csv", 30)):
        write_csv(folder / name, rng.integers(0, 256, (n, *SHAPE), dtype=np.uint8), np.arange(n) % CLASSES)
    return folder / "train.csv", folder / "test.csv"


@pytest.fixture(scope="module")
def tiny_splits(tiny_data):
    return load_splits(DataConfig(train_csv=str(tiny_data[0]), test_csv=str(tiny_data[1])))


@pytest.fixture(scope="module")
def saved(tiny_data, tiny_splits, tmp_path_factory) -> tuple[Path, list[MLP]]:
    """A 3-member committee saved as committee.pt + committee.json, and its members."""
    models = members()
    card = card_for(models[0], tiny_splits, {"train_csv": str(tiny_data[0]), "test_csv": str(tiny_data[1])})
    folder = tmp_path_factory.mktemp("committee")
    return save_committee(folder, models, card), models


def test_probabilities_are_the_mean_of_the_members_softmax():
    # Rule: predict_proba is the members' mean softmax; softmax(forward) is the same, and argmax agrees.
    models = members()
    committee = Committee(models).eval()
    x = torch.randn(50, *SHAPE, generator=torch.Generator().manual_seed(1)) * 3
    want = mean_softmax(models, x)
    assert torch.equal(committee.predict_proba(x), want)
    with torch.inference_mode():
        out = committee(x)
    assert torch.allclose(torch.softmax(out, dim=1), want, rtol=0, atol=1e-6)
    assert torch.allclose(out, want.log(), rtol=0, atol=1e-5)  # log-probabilities: they sum to 1 once exp'd
    assert torch.equal(out.argmax(1), want.argmax(1))


def test_the_log_of_the_mean_does_not_underflow():
    # Rule: where every member gives a class ~e^-200 (0 in float32), forward is finite, not log(0) = -inf.
    models = members()
    for m in models:
        with torch.no_grad():
            m.net[-1].weight.mul_(1e3)
    x = torch.randn(20, *SHAPE, generator=torch.Generator().manual_seed(2))
    assert torch.isinf(mean_softmax(models, x).log()).any()
    with torch.inference_mode():
        out = Committee(models).eval()(x)
    assert torch.isfinite(out).all()
    assert torch.allclose(torch.softmax(out, dim=1), mean_softmax(models, x), rtol=0, atol=1e-6)


def test_one_member_is_the_member():
    # Rule: a committee of one gives exactly its member's probabilities and the same predictions.
    (model,) = members([[16]])
    committee = Committee([model]).eval()
    x = torch.randn(40, *SHAPE, generator=torch.Generator().manual_seed(3))
    assert torch.equal(committee.predict_proba(x), model.predict_proba(x))
    with torch.inference_mode():
        out, logits = committee(x), model(x)
    assert torch.allclose(out, torch.log_softmax(logits, dim=1), rtol=0, atol=1e-6)
    assert torch.equal(out.argmax(1), logits.argmax(1))


def test_members_must_share_inputs_and_classes():
    # Rule: an empty committee, or members of other image sizes or class counts, are a ValueError.
    with pytest.raises(ValueError, match="at least one member"):
        Committee([])
    other = MLP(MLPConfig(in_features=65, hidden_sizes=[4], num_classes=CLASSES))
    with pytest.raises(ValueError, match="^member 1 takes 65 pixels to 3 classes, member 0 64 to 3$"):
        Committee([members([[4]])[0], other])


def test_code_for_one_mlp_reads_the_committee():
    # Rule: .cfg is the first member's (in_features and num_classes are every member's); .configs lists all.
    models = members()
    committee = Committee(models)
    assert committee.cfg is models[0].cfg and committee.configs == [m.cfg for m in models]
    assert (committee.cfg.in_features, committee.cfg.num_classes) == (64, CLASSES)


def test_save_and_load_give_back_the_same_committee(saved):
    # Rule: committee.pt + committee.json load as a Committee in eval mode with identical outputs.
    path, models = saved
    assert sorted(p.name for p in path.parent.iterdir()) == ["committee.json", "committee.pt"]
    loaded = load(path)
    assert isinstance(loaded.model, Committee) and not loaded.model.training
    assert loaded.weights == path and loaded.card.members == [m.cfg for m in models]
    x = torch.randn(30, *SHAPE, generator=torch.Generator().manual_seed(4))
    with torch.inference_mode():
        assert torch.equal(loaded.model(x), Committee(models).eval()(x))
    assert torch.equal(loaded.model.predict_proba(x), mean_softmax(models, x))
    assert load(path.with_suffix(".json")).card == loaded.card  # the card's path names the pair too


def test_the_card_lists_every_member(saved):
    # Rule: committee.json's `members` holds each member's config in order; `mlp` is the first's.
    card = json.loads(saved[0].with_suffix(".json").read_text())
    assert [m["hidden_sizes"] for m in card["members"]] == [[16], [8, 8], [12]]
    assert card["mlp"] == card["members"][0] == {"in_features": 64, "hidden_sizes": [16], "num_classes": 3,
                                                 "dropout": 0.1, "layer_norm": True}
    assert card["card_version"] == 1 and card["image_shape"] == [8, 8] and card["classes"] == ["0", "1", "2"]


def test_a_single_models_card_has_no_members_and_loads_as_an_mlp(tiny_splits, tmp_path):
    # Rule: save() writes model.json as before (no `members` key), and a card without it loads as a plain MLP.
    (model,) = members([[16]])
    save(tmp_path, model, card_for(model, tiny_splits))
    card = json.loads((tmp_path / "model.json").read_text())
    assert "members" not in card
    loaded = load(tmp_path)
    assert type(loaded.model) is MLP and loaded.card.members == []
    x = torch.randn(10, *SHAPE, generator=torch.Generator().manual_seed(5))
    assert torch.equal(loaded.model.predict_proba(x), model.predict_proba(x))


def copy_committee(saved: tuple[Path, list[MLP]], folder: Path, edit) -> Path:
    """The saved committee copied into `folder`, its card changed by edit(card)."""
    card = json.loads(saved[0].with_suffix(".json").read_text())
    edit(card)
    (folder / "committee.json").write_text(json.dumps(card))
    (folder / "committee.pt").write_bytes(saved[0].read_bytes())
    return folder / "committee.pt"


def test_member_widths_that_do_not_match_the_weights_are_one_error(saved, tmp_path):
    # Rule: a card whose members differ from the weights is one InputError naming the folder.
    path = copy_committee(saved, tmp_path, lambda c: c["members"][1].update(hidden_sizes=[8, 9]))
    with pytest.raises(InputError, match=f"^{tmp_path}: committee.pt does not hold the network committee.json "
                                         "describes \\(Error\\(s\\) in loading state_dict for Committee"):
        load(path)


def test_fewer_members_than_the_weights_are_one_error(saved, tmp_path):
    path = copy_committee(saved, tmp_path, lambda c: c.update(members=c["members"][:2]))
    with pytest.raises(InputError, match="committee.pt does not hold the network committee.json describes"):
        load(path)


def test_a_member_that_does_not_fit_the_images_is_named(saved, tmp_path):
    # Rule: disagreement checks every member against image_shape and classes.
    path = copy_committee(saved, tmp_path, lambda c: c["members"][2].update(num_classes=4))
    with pytest.raises(InputError) as e:
        load(path)
    assert str(e.value) == (f"{tmp_path}: committee.json does not describe a usable model "
                            "(3 classes but member 2 has 4 outputs)")


def test_members_that_are_not_configs_are_not_a_card(saved, tmp_path):
    path = copy_committee(saved, tmp_path, lambda c: c.update(members={"hidden_sizes": [16]}))
    with pytest.raises(InputError, match="committee.json: not a model card \\(ValueError: members is not a list"):
        load(path)


def test_save_committee_refuses_members_that_do_not_fit_the_card(tiny_splits, tmp_path):
    # Rule: members of another image size than the card's are a ValueError, and nothing is written.
    wide = MLP(MLPConfig(in_features=100, hidden_sizes=[4], num_classes=CLASSES))
    with pytest.raises(ValueError, match="image_shape 8x8 is 64 pixels but the network takes 100"):
        save_committee(tmp_path, [wide], card_for(members()[0], tiny_splits))
    assert list(tmp_path.iterdir()) == []


def test_a_folder_still_means_model_pt(saved, tmp_path):
    # Rule: a folder holding only committee.pt is refused, and the message names the file to give.
    with pytest.raises(InputError) as e:
        model_files(saved[0].parent)
    assert str(e.value) == (f"{saved[0].parent}: no model.pt (it holds committee.pt: give {saved[0]} to use that); "
                            "give a run folder results/runs/<name> or a search folder results/<name>")


def test_predict_on_a_committee_file(saved, tiny_data, tmp_path):
    # Rule: model.predict takes committee.pt and predicts each row by the members' mean probability.
    path, models = saved
    r = call_cli("model.predict", str(path), str(tiny_data[1]), "--json", "--csv", str(tmp_path / "p.csv"))
    assert r.returncode == 0, r.stderr
    from data.csv import read_csv

    images = read_csv(tiny_data[1], "label", None)[0].astype(np.float32)
    card = load(path).card
    x = (torch.from_numpy(images) - card.mean) / card.std
    want = mean_softmax(models, x).numpy()
    lines = [json.loads(line) for line in r.stdout.splitlines()]
    assert [x["file"] for x in lines] == [f"{tiny_data[1]}[{i}]" for i in range(30)]
    assert [x["prediction"] for x in lines] == [str(k) for k in want.argmax(1)]
    assert [x["probability"] for x in lines] == pytest.approx(want.max(1).tolist(), abs=1e-6)
    assert len((tmp_path / "p.csv").read_text().splitlines()) == 31
    assert "predicted 30 input(s)" in r.stderr and str(path) in r.stderr


@pytest.fixture(scope="module")
def exported(saved, tmp_path_factory):
    pytest.importorskip("onnxruntime", reason="the export extra is not installed: pip install -e '.[export]'")
    out = tmp_path_factory.mktemp("committee-export")
    r = call_cli("model.export", str(saved[0]), "--onnx", str(out / "c.onnx"), "--torchscript", str(out / "c.pt"))
    assert r.returncode == 0, r.stderr
    return out, r


def test_onnx_is_one_graph_of_the_averaged_probabilities(saved, exported, tiny_data):
    # Rule: the exported committee is one ONNX file; ONNX Runtime's softmax(logits) is the members' mean
    # probability on raw pixels (within 1e-6), and export's own check on the test CSV passed.
    import onnx
    import onnxruntime as ort

    path, models = saved
    out, r = exported
    assert sorted(p.name for p in out.iterdir()) == ["c.onnx", "c.pt"]
    assert "ONNX Runtime on 30 test images" in r.stdout and "0 prediction(s) differ" in r.stdout
    assert "a committee of 3: softmax(logits) is their mean probability" in r.stdout
    rng = np.random.default_rng(6)
    images = rng.uniform(0, 255, (25, *SHAPE)).astype(np.float32)
    session = ort.InferenceSession(str(out / "c.onnx"), providers=["CPUExecutionProvider"])
    logits = session.run(["logits"], {"images": images})[0]
    card = load(path).card
    want = mean_softmax(models, (torch.from_numpy(images) - card.mean) / card.std).numpy()
    assert logits.shape == (25, CLASSES)
    assert np.abs(torch.softmax(torch.from_numpy(logits), 1).numpy() - want).max() < 1e-6
    assert (logits.argmax(1) == want.argmax(1)).all()
    props = {p.key: p.value for p in onnx.load(str(out / "c.onnx")).metadata_props}
    assert props["members"] == "3" and props["image_shape"] == "8x8"


def test_torchscript_of_a_committee_matches(saved, exported):
    loaded = load(saved[0])
    images = torch.from_numpy(np.random.default_rng(7).uniform(0, 255, (9, *SHAPE)).astype(np.float32))
    with torch.inference_mode():
        want = RawPixels(loaded.model, loaded.card.mean, loaded.card.std)(images)
        got = torch.jit.load(str(exported[0] / "c.pt"))(images)
    torch.testing.assert_close(got, want)
