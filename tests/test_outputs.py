"""common/outputs.py through `model.predict` and `model.export`: no output replaces an input, and a
model folder is checked as a whole. Each refusal is one line, exit 2, with every input unchanged."""
from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
from PIL import Image

from common.errors import InputError
from common.outputs import check_output, check_outputs
from data.csv import write_csv
from tests.conftest import call_cli, one_error


def snapshot(*roots: Path) -> dict[str, bytes]:
    """Every file under roots (or the file itself), by path: its bytes."""
    files = [p for r in roots for p in ([r] if r.is_file() else sorted(r.rglob("*"))) if p.is_file()]
    return {str(p): p.read_bytes() for p in files}


@pytest.fixture
def run(trained_model, tmp_path) -> Path:
    """A copy of the trained run folder, free to be damaged."""
    return Path(shutil.copytree(trained_model, tmp_path / "run"))


@pytest.fixture
def digits(mnist_arrays, tmp_path) -> Path:
    """A CSV of 5 test digits and a folder of 3 PNGs."""
    write_csv(tmp_path / "digits.csv", mnist_arrays[2][:5], mnist_arrays[3][:5])
    (tmp_path / "scans").mkdir()
    for i in range(3):
        Image.fromarray(255 - mnist_arrays[2][i]).save(tmp_path / "scans" / f"{i}.png")
    return tmp_path


# --- the rules, in memory ---------------------------------------------------------------------------

def test_an_output_that_is_an_input_is_refused(tmp_path):
    (tmp_path / "in.csv").write_text("x\n")
    with pytest.raises(InputError) as e:
        check_output("--csv", str(tmp_path / "in.csv"), [tmp_path / "in.csv"])
    assert str(e.value) == (f"--csv {tmp_path / 'in.csv'}: is one of this command's inputs ({tmp_path / 'in.csv'}); "
                            "writing it would replace it: give another file")


def test_a_symlink_or_hard_link_to_an_input_is_the_input(tmp_path):
    # Rule: paths are compared after resolving symlinks, and as inodes (a hard link is the same file).
    (tmp_path / "in.csv").write_text("x\n")
    (tmp_path / "soft.csv").symlink_to(tmp_path / "in.csv")
    os.link(tmp_path / "in.csv", tmp_path / "hard.csv")
    for name in ("soft.csv", "hard.csv"):
        with pytest.raises(InputError, match="is one of this command's inputs"):
            check_output("--csv", str(tmp_path / name), [tmp_path / "in.csv"])


def test_a_folder_a_missing_folder_and_a_wrong_suffix_are_refused(tmp_path):
    with pytest.raises(InputError, match=f"^--csv {tmp_path}: is a folder; give a file name"):
        check_output("--csv", str(tmp_path))
    with pytest.raises(InputError, match=f"^--csv {tmp_path}/no/p.csv: the folder {tmp_path}/no does not exist$"):
        check_output("--csv", str(tmp_path / "no" / "p.csv"))
    with pytest.raises(InputError, match="^--show s.jpg: give a .png file$"):
        check_output("--show", "s.jpg", suffix=".png")


def test_an_output_inside_an_input_folder_is_refused(tmp_path):
    with pytest.raises(InputError, match=f"is inside the input folder {tmp_path}"):
        check_output("--show", str(tmp_path / "sub" / ".." / "s.png"), folders=[tmp_path])


def test_two_outputs_on_one_file_are_refused(tmp_path):
    with pytest.raises(InputError, match="^--torchscript .*m.onnx: --onnx writes the same file"):
        check_outputs([("--onnx", str(tmp_path / "m.onnx")), ("--torchscript", str(tmp_path / "m.onnx"))])


def test_a_new_file_beside_the_inputs_is_fine(tmp_path):
    assert check_outputs([("--csv", str(tmp_path / "p.csv")), ("--show", None)], [tmp_path / "in.csv"]) == \
        {"--csv": tmp_path / "p.csv"}


# --- model.predict ------------------------------------------------------------------------------------

@pytest.mark.parametrize("flags, culprit", [
    (lambda d, m: ["--csv", str(d / "digits.csv")], "--csv {d}/digits.csv: is one of this command's inputs"),
    (lambda d, m: ["--csv", str(m / "model.pt")], "--csv {m}/model.pt: is one of this command's inputs"),
    (lambda d, m: ["--csv", str(m / "model.json")], "--csv {m}/model.json: is one of this command's inputs"),
    (lambda d, m: ["--show", str(d / "scans" / "0.png")], "--show {d}/scans/0.png: is one of this command's inputs"),
    (lambda d, m: ["--show", str(d / "scans" / "new.png")], "--show {d}/scans/new.png: is inside the input folder"),
    (lambda d, m: ["--csv", str(d / "scans")], "--csv {d}/scans: is a folder; give a file name"),
    (lambda d, m: ["--csv", str(d / "o.png"), "--show", str(d / "o.png")], "--show {d}/o.png: --csv writes the same"),
], ids=["csv-is-input-csv", "csv-is-model", "csv-is-card", "show-is-input-png", "show-in-input-folder",
        "csv-is-folder", "csv-and-show-one-file"])
def test_predict_never_writes_over_an_input(run, digits, flags, culprit):
    # Rule: one line naming the flag, exit 2, nothing predicted, every input byte for byte as it was.
    before = snapshot(run, digits)
    r = call_cli("model.predict", str(run), str(digits / "digits.csv"), str(digits / "scans"), *flags(digits, run))
    assert one_error(r).startswith(culprit.format(d=digits, m=run)), r.stderr
    assert r.stdout == "" and snapshot(run, digits) == before


def test_predict_through_a_symlink_to_its_input_is_refused(run, digits):
    (digits / "link.csv").symlink_to(digits / "digits.csv")
    before = snapshot(digits / "digits.csv")
    r = call_cli("model.predict", str(run), str(digits / "digits.csv"), "--csv", str(digits / "link.csv"))
    assert "is one of this command's inputs" in one_error(r)
    assert snapshot(digits / "digits.csv") == before and (digits / "link.csv").is_symlink()


def test_predict_replaces_an_older_output_whole(run, digits):
    # Rule: an existing output that is no input is replaced (atomically), and no temp file stays behind.
    (digits / "p.csv").write_text("old\n")
    r = call_cli("model.predict", str(run), str(digits / "digits.csv"), "--csv", str(digits / "p.csv"))
    assert r.returncode == 0, r.stderr
    lines = (digits / "p.csv").read_text().splitlines()
    assert lines[0] == "file,prediction,probability,top3" and len(lines) == 6
    assert not [p for p in digits.iterdir() if p.name.startswith(".p.csv")]


# --- model.export ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("flags, culprit", [
    (lambda m, d: ["--torchscript", str(m / "model.pt")], "--torchscript {m}/model.pt: is one of this command's inputs"),
    (lambda m, d: ["--onnx", str(m / "model.pt")], "--onnx {m}/model.pt: is one of this command's inputs"),
    (lambda m, d: ["--onnx", str(m / "model.json")], "--onnx {m}/model.json: is one of this command's inputs"),
    (lambda m, d: ["--torchscript", str(d / "train.csv")], "--torchscript {d}/train.csv: is one of this command's"),
    (lambda m, d: ["--torchscript", str(m)], "--torchscript {m}: is a folder; give a file name"),
    (lambda m, d: ["--onnx", str(d / "x.onnx"), "--torchscript", str(d / "x.onnx")],
     "--torchscript {d}/x.onnx: --onnx writes the same file"),
    (lambda m, d: ["--onnx", str(d / "no" / "x.onnx")], "--onnx {d}/no/x.onnx: the folder {d}/no does not exist"),
], ids=["torchscript-is-model", "onnx-is-model", "onnx-is-card", "torchscript-is-training-csv",
        "torchscript-is-folder", "both-one-file", "missing-folder"])
def test_export_never_writes_over_an_input(run, tmp_path, flags, culprit):
    # Rule: the model, its card and the training data its check reads are inputs; refused in one line.
    data = tmp_path / "data"
    data.mkdir()
    (data / "train.csv").write_text("label,p0\n1,0\n")
    card = json.loads((run / "model.json").read_text())
    card["data"] = {**card["data"], "train_csv": str(data / "train.csv")}
    (run / "model.json").write_text(json.dumps(card))
    before = snapshot(run, data)
    r = call_cli("model.export", str(run), *flags(run, data))
    assert one_error(r).startswith(culprit.format(m=run, d=data)), r.stderr
    assert snapshot(run, data) == before and sorted(p.name for p in data.iterdir()) == ["train.csv"]


def test_export_into_the_training_image_folder_is_refused(run, tmp_path):
    # Rule: a file written into an --image-dir would be read back as a (broken) image next time.
    images = tmp_path / "shapes"
    (images / "a").mkdir(parents=True)
    card = json.loads((run / "model.json").read_text())
    card["data"] = {"image_dir": str(images)}
    (run / "model.json").write_text(json.dumps(card))
    r = call_cli("model.export", str(run), "--torchscript", str(images / "a" / "m.pt"))
    assert one_error(r).startswith(f"--torchscript {images}/a/m.pt: is inside the input folder {images}")
    assert list((images / "a").iterdir()) == []


def test_torchscript_is_written_whole_over_an_older_file(run, tmp_path):
    import torch

    (tmp_path / "m.pt").write_text("old")
    r = call_cli("model.export", str(run), "--torchscript", str(tmp_path / "m.pt"))
    assert r.returncode == 0, r.stderr
    assert torch.jit.load(str(tmp_path / "m.pt"))(torch.zeros(1, 28, 28)).shape == (1, 10)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.pt", "run"]


# --- a model folder checked as a whole --------------------------------------------------------------------

@pytest.mark.parametrize("arg", ["folder", "model.pt", "model.json"])
def test_model_may_be_the_folder_the_weights_or_the_card(run, digits, arg):
    target = run if arg == "folder" else run / arg
    r = call_cli("model.predict", str(target), str(digits / "digits.csv"), "--json")
    assert r.returncode == 0, r.stderr
    assert len(r.stdout.splitlines()) == 5


@pytest.mark.parametrize("edit, why", [
    (lambda c: c.update(image_shape=[32, 32]), "image_shape 32x32 is 1024 pixels but the network takes 784"),
    (lambda c: c.update(classes=c["classes"][:9]), "9 classes but the network has 10 outputs"),
    (lambda c: c.update(std=0.0), "normalisation mean {mean}, std 0.0 (std must be a positive number)"),
    (lambda c: c.update(pixel_range=[255, 0]), "pixel_range [255.0, 0.0] is not a range"),
], ids=["image-shape", "classes", "std", "pixel-range"])
def test_a_card_that_contradicts_its_network_is_one_line(run, digits, edit, why):
    # Rule: model.json and model.pt must agree; one line names the folder, before any input is read.
    card = json.loads((run / "model.json").read_text())
    edit(card)
    (run / "model.json").write_text(json.dumps(card))
    for cmd in (["model.predict", str(run), str(digits / "digits.csv")], ["model.export", str(run), "--torchscript",
                                                                          str(digits / "m.pt")]):
        r = call_cli(*cmd)
        assert one_error(r) == (f"{run}: model.json does not describe a usable model "
                                f"({why.format(mean=card['mean'])})")
    assert not (digits / "m.pt").exists()


def test_damaged_weights_are_one_line(run, digits):
    (run / "model.pt").write_bytes(b"PK\x03\x04 not a torch file")
    r = call_cli("model.predict", str(run), str(digits / "digits.csv"))
    assert one_error(r).startswith(f"{run}: model.pt does not hold the network model.json describes (")


def test_another_file_as_model_is_one_line(digits):
    r = call_cli("model.predict", str(digits / "digits.csv"), str(digits / "scans"))
    assert one_error(r) == (f"{digits / 'digits.csv'}: not a model (give a run folder, a search folder, or its "
                            "model.pt or model.json)")


# --- results folders keep clear of the data ------------------------------------------------------------

@pytest.fixture
def shapes(tmp_path) -> Path:
    """An image folder of 2 classes x 6 PNGs."""
    for c in ("a", "b"):
        (tmp_path / "shapes" / c).mkdir(parents=True)
        for i in range(6):
            Image.new("L", (8, 8), 40 * i if c == "a" else 255 - 40 * i).save(tmp_path / "shapes" / c / f"{i}.png")
    return tmp_path / "shapes"


@pytest.mark.parametrize("command", [["data"], ["model.train", "--epochs", "1"], ["tuning.grid", "--name", "g"]])
def test_results_inside_an_image_folder_are_refused(shapes, command):
    # Rule: results/<name> inside --image-dir would become a class of its own, or a stray file, next time.
    before = snapshot(shapes)
    r = call_cli(*command, "--image-dir", str(shapes), "--results-dir", str(shapes))
    assert one_error(r).startswith(f"--results-dir {shapes}: {shapes}/") and \
        one_error(r).endswith(f"is inside the input folder {shapes}, whose files are read as data: write the "
                              "results elsewhere")
    assert snapshot(shapes) == before and sorted(p.name for p in shapes.iterdir()) == ["a", "b"]


def test_a_results_folder_holding_the_training_csv_is_refused(mnist_arrays, tmp_path):
    # Rule: the search writes into results/<name> and --overwrite empties it: an input there is refused.
    (tmp_path / "r" / "g").mkdir(parents=True)
    write_csv(tmp_path / "r" / "g" / "d.csv", mnist_arrays[0][:200], mnist_arrays[1][:200])
    before = snapshot(tmp_path / "r")
    r = call_cli("tuning.grid", "--train-csv", str(tmp_path / "r" / "g" / "d.csv"), "--results-dir",
                 str(tmp_path / "r"), "--name", "g", "--overwrite")
    assert one_error(r) == (f"--results-dir {tmp_path / 'r'}: its folder {tmp_path / 'r' / 'g'} would hold the input "
                            f"{tmp_path / 'r' / 'g' / 'd.csv'}, which this command reads: write the results elsewhere")
    assert snapshot(tmp_path / "r") == before


def test_export_of_an_interrupted_search_says_to_resume_it(tmp_path):
    # Rule: the reason comes from search.json (never "--no-retrain" for a search that did not use it).
    folder = tmp_path / "grid"
    folder.mkdir()
    (folder / "search.json").write_text(json.dumps({"kind": "grid", "state": "interrupted",
                                                    "search": {"retrain": True}}))
    before = snapshot(folder)
    r = call_cli("model.export", str(folder), "--torchscript", str(tmp_path / "m.pt"))
    assert one_error(r) == (f"{folder}: no model.pt (its search was interrupted before the retrain: run the same "
                            "command with --resume to finish it); give a run folder results/runs/<name> or a search "
                            "folder results/<name>")
    assert snapshot(folder) == before and not (tmp_path / "m.pt").exists()
