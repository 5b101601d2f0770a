"""`python -m model.export`: an ONNX graph of raw pixels that ONNX Runtime runs as PyTorch does."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from model.card import load
from model.export import RawPixels
from model.inference import probabilities
from tests.conftest import call_cli, one_error

onnx = pytest.importorskip("onnx", reason="the export extra is not installed: pip install -e '.[export]'")
ort = pytest.importorskip("onnxruntime", reason="the export extra is not installed")


@pytest.fixture(scope="module")
def exported(trained_model, tmp_path_factory):
    out = tmp_path_factory.mktemp("export")
    r = call_cli("model.export", str(trained_model), "--onnx", str(out / "m.onnx"), "--torchscript", str(out / "m.pt"))
    assert r.returncode == 0, r.stderr
    return out, r


def test_onnx_runtime_predicts_as_pytorch_does(exported, trained_model, mnist_arrays):
    # Rule: raw pixels in, the same predictions as the PyTorch model on 1,000 test images, logits within 1e-4.
    out, r = exported
    loaded = load(trained_model)
    images = mnist_arrays[2][-1000:].astype(np.float32)
    session = ort.InferenceSession(str(out / "m.onnx"), providers=["CPUExecutionProvider"])
    logits = session.run(["logits"], {"images": images})[0]
    assert logits.shape == (1000, 10)
    assert (logits.argmax(1) == probabilities(loaded.model, loaded.card, images).argmax(1)).all()
    with torch.inference_mode():
        ours = RawPixels(loaded.model, loaded.card.mean, loaded.card.std)(torch.from_numpy(images)).numpy()
    assert np.abs(logits - ours).max() < 1e-4
    assert "largest |logit difference|" in r.stdout and "0 prediction(s) differ" in r.stdout


def test_the_batch_is_free(exported):
    session = ort.InferenceSession(str(exported[0] / "m.onnx"), providers=["CPUExecutionProvider"])
    for n in (1, 7):
        assert session.run(["logits"], {"images": np.zeros((n, 28, 28), np.float32)})[0].shape == (n, 10)
    (inp,), (outp,) = session.get_inputs(), session.get_outputs()
    assert (inp.name, outp.name, inp.type) == ("images", "logits", "tensor(float)")
    assert inp.shape[1:] == [28, 28] and not isinstance(inp.shape[0], int)


def test_the_card_rides_in_the_metadata(exported, trained_model):
    props = {p.key: p.value for p in onnx.load(str(exported[0] / "m.onnx")).metadata_props}
    card = load(trained_model).card
    assert json.loads(props["classes"]) == card.classes and props["image_shape"] == "28x28"
    assert json.loads(props["normalisation"]) == {"mean": card.mean, "std": card.std}


def test_torchscript_matches(exported, trained_model, mnist_arrays):
    loaded = load(trained_model)
    images = torch.from_numpy(mnist_arrays[2][:50].astype(np.float32))
    with torch.inference_mode():
        want = RawPixels(loaded.model, loaded.card.mean, loaded.card.std)(images)
        got = torch.jit.load(str(exported[0] / "m.pt"))(images)
    torch.testing.assert_close(got, want)


def test_no_output_flag_is_one_line(trained_model):
    assert one_error(call_cli("model.export", str(trained_model))) == "give --onnx OUT.onnx and/or --torchscript OUT.pt"
