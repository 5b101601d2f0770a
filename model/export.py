"""`python -m model.export MODEL --onnx OUT.onnx [--torchscript OUT.pt]`: a model for services without PyTorch.

The graph takes raw pixels, input `images` float32 (N, H, W) in the data's own units (0-255 for
MNIST), with the training normalisation folded in, and returns `logits` (N, K); the batch size is
free. Class names, image shape and normalisation ride along in the ONNX metadata_props. Before it
is kept, ONNX Runtime runs the file on 1,000 test images of the model's own data: predictions must
equal PyTorch's, and the largest |logit difference| is printed.
A committee (MODEL is its committee.pt) becomes one graph of all its members whose `logits` are
the log of their mean probability: softmax gives the committee's averaged probabilities.
Needs the `export` extra: pip install -e '.[export]'.
"""
from __future__ import annotations

import argparse
import contextlib
import json
import logging
import sys
import warnings
from pathlib import Path

import numpy as np
import torch
from torch import nn

from common.atomic import atomic_write
from common.cli import ArgumentParser, run_cli
from common.errors import DataError, InputError
from common.outputs import check_outputs
from model.card import PATH_FIELDS, Loaded, ModelCard

log = logging.getLogger(__name__)

CHECK_IMAGES = 1000  # test images ONNX Runtime must agree on
OPSET = 18  # the dynamo exporter's own default in torch 2.13


class RawPixels(nn.Module):
    """The MLP (or Committee) with data.splits.normalise folded in: raw (N, H, W) pixels in, logits out."""

    def __init__(self, model: nn.Module, mean: float, std: float):
        super().__init__()
        self.model = model.eval()
        self.register_buffer("scale", torch.tensor(1.0 / std, dtype=torch.float32))
        self.register_buffer("shift", torch.tensor(mean / std, dtype=torch.float32))
        self.train(False)  # inference only: dropout off

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.model(images.flatten(1) * self.scale - self.shift)


def metadata(card: ModelCard) -> dict[str, str]:
    """The card's essentials as ONNX metadata_props (strings; lists as JSON)."""
    h, w = card.image_shape
    return {"classes": json.dumps(card.classes), "image_shape": f"{h}x{w}", "input_units": "raw pixels",
            "normalisation": json.dumps({"mean": card.mean, "std": card.std}),
            "pixel_range": json.dumps(list(card.pixel_range)), "data_checksum": card.data_checksum,
            "producer": "digit-tune", **({"members": str(len(card.members))} if card.members else {})}


def check_images(card: ModelCard, n: int = CHECK_IMAGES) -> tuple[np.ndarray, str]:
    """Up to n test images of the model's own data set, or (when it cannot be read here) random
    pixels in the training range; and what they are, for the printout."""
    import dataclasses

    from data.source import DataConfig, load_dataset

    try:
        known = {f.name for f in dataclasses.fields(DataConfig)}
        data = load_dataset(DataConfig(**{k: v for k, v in card.data.items() if k in known}))
        return data.test_x[:n].astype(np.float32), f"{min(n, len(data.test_x))} test images ({data.test_source})"
    except (DataError, TypeError) as e:
        log.warning("the model's data cannot be read here (%s); checking on random pixels instead", e)
        lo, hi = card.pixel_range
        rng = np.random.default_rng(0)
        return rng.uniform(lo, hi, (n, *card.image_shape)).astype(np.float32), f"{n} random images"


def export_onnx(loaded: Loaded, out: Path) -> None:
    """Write the ONNX file with a dynamic batch and the card in its metadata."""
    import onnx

    wrapper = RawPixels(loaded.model, loaded.card.mean, loaded.card.std)
    example = torch.zeros(2, *loaded.card.image_shape)
    batch = torch.export.Dim("batch", min=1)
    quiet = logging.getLogger("torch.onnx")  # "torchvision is not installed" and other notes on ops we do not use
    level = quiet.level
    quiet.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)
            program = torch.onnx.export(wrapper, (example,), input_names=["images"], output_names=["logits"],
                                        dynamic_shapes={"images": {0: batch}}, opset_version=OPSET, dynamo=True,
                                        verbose=False)
    finally:
        quiet.setLevel(level)
    program.save(str(out))
    proto = onnx.load(str(out))
    for key, value in metadata(loaded.card).items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, value
    onnx.save(proto, str(out))


def compare_onnx(loaded: Loaded, path: Path, images: np.ndarray) -> tuple[float, int]:
    """(largest |logit difference|, predictions that differ) of ONNX Runtime against PyTorch."""
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    theirs = session.run(["logits"], {"images": images})[0]
    with torch.inference_mode():
        ours = RawPixels(loaded.model, loaded.card.mean, loaded.card.std)(torch.from_numpy(images)).numpy()
    return float(np.abs(theirs - ours).max()), int((theirs.argmax(1) != ours.argmax(1)).sum())


def export_torchscript(loaded: Loaded, out: Path) -> None:
    wrapper = RawPixels(loaded.model, loaded.card.mean, loaded.card.std)
    traced = torch.jit.trace(wrapper, torch.zeros(2, *loaded.card.image_shape))
    traced.save(str(out))


def parser() -> argparse.ArgumentParser:
    p = ArgumentParser(prog="python -m model.export", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog="\n\n".join(__doc__.split("\n\n")[1:]))
    p.add_argument("model", metavar="MODEL", help="run folder, search folder, or a model's .pt or .json file")
    p.add_argument("--onnx", metavar="OUT.onnx", help="write the ONNX graph here")
    p.add_argument("--torchscript", metavar="OUT.pt", help="also write a TorchScript module (raw pixels in)")
    return p


class Disagrees(Exception):
    """ONNX Runtime's predictions differ from PyTorch's: the file is not kept."""


def data_inputs(card: ModelCard) -> list[Path]:
    """The files and folders the check reads: the model's training data, as its card records it
    (an image folder's every file is read: an output inside it is refused too)."""
    return [Path(card.data[k]) for k in PATH_FIELDS if card.data.get(k)]


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    if not args.onnx and not args.torchscript:
        raise InputError("give --onnx OUT.onnx and/or --torchscript OUT.pt")
    if args.onnx:
        import importlib.util

        missing = [m for m in ("onnx", "onnxruntime", "onnxscript") if importlib.util.find_spec(m) is None]
        if missing:
            raise InputError(f"--onnx needs the export extra ({', '.join(missing)} missing): pip install -e '.[export]'")
    from model.card import load, model_files

    weights, card_path = model_files(args.model)
    loaded = load(args.model)
    data = data_inputs(loaded.card)
    outputs = check_outputs([("--onnx", args.onnx), ("--torchscript", args.torchscript)],
                            [weights, card_path, *(p for p in data if not p.is_dir())],
                            folders=[Path(loaded.card.data["image_dir"])] if loaded.card.data.get("image_dir") else [])
    if "--torchscript" in outputs:
        atomic_write(outputs["--torchscript"], lambda tmp: export_torchscript(loaded, tmp))
        print(f"wrote {outputs['--torchscript']}")
    if "--onnx" in outputs:
        out = outputs["--onnx"]
        checked: dict[str, object] = {}

        def write(tmp: Path) -> None:  # kept (renamed onto `out`) only when ONNX Runtime agrees
            export_onnx(loaded, tmp)
            images, checked["what"] = check_images(loaded.card)
            checked["diff"], checked["disagree"] = compare_onnx(loaded, tmp, images)
            if checked["disagree"]:
                raise Disagrees

        with contextlib.suppress(Disagrees):  # then atomic_write has removed the temp file: `out` is as it was
            atomic_write(out, write, suffix=".onnx")
        print(f"ONNX Runtime on {checked['what']}: largest |logit difference| {checked['diff']:.2e}, "
              f"{checked['disagree']} prediction(s) differ")
        if checked["disagree"]:
            print(f"error: {out}: ONNX Runtime disagrees with PyTorch on {checked['disagree']} image(s); "
                  "not written", file=sys.stderr)
            return 1
        print(f"wrote {out} (input 'images' float32 (N, {loaded.card.image_shape[0]}, {loaded.card.image_shape[1]}) "
              f"raw pixels, output 'logits' (N, {len(loaded.card.classes)}))"
              + (f"; a committee of {len(loaded.card.members)}: softmax(logits) is their mean probability"
                 if loaded.card.members else ""))
    return 0


if __name__ == "__main__":
    run_cli(main)
