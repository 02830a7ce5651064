"""Each lesson, run through the CLI, shows what it claims."""
from __future__ import annotations

import math
import re

import numpy as np
import pytest
import torch

from torchclassics.cli import main
from torchclassics.lessons import LESSONS, list_lessons

TEACHING_ORDER = ["tensors", "shapes", "layers", "activations", "losses", "autograd", "build", "debug",
                  "save_restore", "dataloader", "rnn", "pca", "sklearn", "parallel"]


def run_cli(name: str, out, capsys) -> str:
    assert main(["lesson", name, "--out", str(out)]) == 0
    return capsys.readouterr().out


def test_list_shows_every_lesson_in_teaching_order(capsys):
    assert main(["lesson", "--list"]) == 0
    listed = [line.split()[0] for line in capsys.readouterr().out.splitlines()]
    assert listed == TEACHING_ORDER
    assert [name for name, _ in list_lessons()] == TEACHING_ORDER == list(LESSONS)


def test_unknown_lesson_is_one_line_with_a_suggestion(capsys):
    assert main(["lesson", "los"]) == 2
    err = capsys.readouterr().err
    assert "unknown lesson 'los'" in err and "did you mean 'losses'" in err and len(err.splitlines()) == 1


def test_tensors_share_memory_and_match_numpy(tmp_path, capsys):
    out = run_cli("tensors", tmp_path, capsys)
    assert "shares memory: True" in out
    assert "array  = [[-1, 1, 2], [3, 4, 100]]" in out  # writes through the tensor reached the array
    assert "copied = [[0, 1, 2], [3, 4, 5]]" in out  # torch.tensor copied
    assert out.count("same: True") == 5 and "same: False" not in out
    assert "matrix product      numpy [[7.0, 10.0], [15.0, 22.0]]" in out
    assert "x.grad = [[0.5, 1.0], [1.5, 2.0]]" in out  # d mean(x^2)/dx = x/2
    assert out.rstrip().endswith("(lesson tensors has no figure)")
    # "Not resizable": growing refused; values changed in place are seen both ways; a copy may grow.
    assert "Trying to resize storage that is not resizable" in out
    assert "array [22, 24, 26], tensor [22, 24, 26]" in out and "resizes: 5 entries" in out


def test_activations_gradients_and_figure(tmp_path, capsys):
    from torchclassics.lessons.activations import activations, value_and_gradient

    out = run_cli("activations", tmp_path / "figs", capsys)
    figure = tmp_path / "figs" / "activations.png"
    assert figure.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and figure.stat().st_size > 20_000
    assert out.rstrip().endswith(f"figures written to {tmp_path / 'figs'}")
    for name in ["Sigmoid", "Tanh", "ReLU", "Softplus", "LeakyReLU", "PReLU", "RReLU", "ELU", "GELU"]:
        assert re.search(rf"^  {name}\s+f  \[", out, re.M), name
    # The drawn gradients are the known derivatives.
    x = torch.linspace(-5, 5, 41)
    modules = activations()
    s, ds = value_and_gradient(modules["Sigmoid"], x)
    assert torch.allclose(ds, s * (1 - s), atol=1e-6)
    t, dt = value_and_gradient(modules["Tanh"], x)
    assert torch.allclose(dt, 1 - t * t, atol=1e-6)
    _, dsoft = value_and_gradient(modules["Softplus"], x)
    assert torch.allclose(dsoft, torch.sigmoid(x), atol=1e-6)  # softplus' = sigmoid
    _, drelu = value_and_gradient(modules["ReLU"], x)
    assert torch.equal(drelu, (x > 0).float())
    sigmoid_10 = float(re.search(r"sigmoid'\(10\) = ([0-9.e+-]+)", out).group(1))
    assert sigmoid_10 == pytest.approx(math.exp(-10) / (1 + math.exp(-10)) ** 2, rel=1e-2)
    assert "8 of 8 ReLU units output 0" in out and "with LeakyReLU 0 of 8 are stuck" in out


def test_losses_equal_hand_computations(tmp_path, capsys):
    out = run_cli("losses", tmp_path, capsys)
    rows = re.findall(r"^(\S.*?)\s+(-?\d+\.\d{6})\s+(-?\d+\.\d{6})\s+(True|False)\s", out, re.M)
    names = [name for name, *_ in rows]
    assert names == ["MSELoss", "L1Loss", "SmoothL1Loss", "CrossEntropyLoss", "NLLLoss", "NLLLoss(weight)",
                     "BCEWithLogitsLoss", "NLLLoss 2-D", "book -log p (label 1, p=0.1)",
                     "book -log p (label 0, p=0.1)"]
    for name, by_torch, by_hand, equal in rows:
        assert equal == "True" and float(by_torch) == pytest.approx(float(by_hand), abs=1e-6), name
    values = {name: float(by_torch) for name, by_torch, *_ in rows}
    # Worked out on paper: d = [-0.5, 0.5, 0, 1].
    assert values["MSELoss"] == 0.375 and values["L1Loss"] == 0.5 and values["SmoothL1Loss"] == 0.1875
    assert values["book -log p (label 1, p=0.1)"] == pytest.approx(-math.log(0.1), abs=1e-6)
    assert values["NLLLoss(weight)"] > values["NLLLoss"]
    assert "RuntimeError: Trying to backward through the graph a second time" in out
    assert "2 x one call: True" in out and "prints None" in out


def test_loss_checks_detect_a_wrong_formula():
    from torchclassics.lessons.losses import Check

    assert not Check("x", "", by_torch=0.375, by_hand=0.38).equal
    assert Check("x", "", by_torch=0.375, by_hand=0.375 + 1e-9).equal


def test_build_class_and_sequential_are_the_same_function(tmp_path, capsys):
    out = run_cli("build", tmp_path, capsys)
    assert "(hidden): Linear(in_features=1, out_features=10, bias=True)" in out
    assert "(1): ReLU()" in out
    assert "max |net1(x) - net2(x)| on 100 points = 0\n" in out
    assert "without copying: max difference = 0 " in out


def test_save_restore_identical_fits_and_pickle_refused(tmp_path, capsys):
    out = run_cli("save_restore", tmp_path, capsys)
    assert out.count("identical to net1: True") == 3
    assert "Unsupported global" in out and "Sequential" in out
    assert sorted(p.name for p in tmp_path.iterdir()) == ["net.pt2", "net_params.pt", "save_restore.png"]
    state = torch.load(tmp_path / "net_params.pt", weights_only=True)
    assert list(state) == ["0.weight", "0.bias", "2.weight", "2.bias"]
    # The archive alone (no class needed) reproduces the net the state_dict describes.
    whole = torch.export.load(tmp_path / "net.pt2").module()
    x = torch.linspace(-1, 1, 7).unsqueeze(1)
    by_hand = torch.relu(x @ state["0.weight"].T + state["0.bias"]) @ state["2.weight"].T + state["2.bias"]
    assert torch.allclose(whole(x), by_hand, atol=1e-6)


TUTORIAL_PRINTOUT = """\
Epoch: 0 | Step: 0 | batch x: [6, 7, 2, 3, 1] | batch y: [5, 4, 9, 8, 10]
Epoch: 0 | Step: 1 | batch x: [9, 10, 4, 8, 5] | batch y: [2, 1, 7, 3, 6]
Epoch: 1 | Step: 0 | batch x: [3, 4, 2, 9, 10] | batch y: [8, 7, 9, 2, 1]
Epoch: 1 | Step: 1 | batch x: [1, 7, 8, 5, 6] | batch y: [10, 4, 3, 6, 5]
Epoch: 2 | Step: 0 | batch x: [3, 9, 2, 6, 7] | batch y: [8, 2, 9, 5, 4]
Epoch: 2 | Step: 1 | batch x: [10, 4, 8, 1, 5] | batch y: [1, 7, 3, 10, 6]"""


def test_dataloader_prints_the_tutorials_batches(tmp_path, capsys):
    out = run_cli("dataloader", tmp_path, capsys)
    lines = [line.strip() for line in out.splitlines() if line.startswith("  Epoch")]
    assert "\n".join(lines[:6]) == TUTORIAL_PRINTOUT  # with 2 workers, as in the tutorial series
    partial, dropped = lines[6:9], lines[9:]
    assert [len(re.search(r"batch x: \[(.*?)\]", line).group(1).split(",")) for line in partial] == [4, 4, 2]
    assert dropped == partial[:2]


@pytest.mark.integration
def test_dataloader_is_spawn_safe_and_independent_of_workers():
    from torchclassics.lessons.dataloader import epoch_batches, make_loader

    in_process = epoch_batches(make_loader(workers=0))
    spawned = epoch_batches(make_loader(workers=1, context="spawn"), epochs=3)
    assert spawned == in_process
    for _, _, xs, ys in in_process:
        assert np.allclose(np.add(xs, ys), 11)  # pairs stay together


@pytest.mark.integration
def test_generator_shuffle_ignores_workers_but_not_persistent_workers(tmp_path, capsys):
    from torchclassics.lessons.dataloader import generator_shuffle_order

    without = generator_shuffle_order(workers=0)
    assert generator_shuffle_order(workers=2) == without
    persistent = generator_shuffle_order(workers=2, persistent=True)
    assert persistent[:2] == without[:2] and persistent[2:] != without[2:]
    # Epoch 0 is the course-project notes' printout, not the tutorial series' one.
    assert without[:2] == [[5, 7, 10, 3, 4], [2, 1, 8, 9, 6]]
    assert without[0] != [6, 7, 2, 3, 1]
    out = run_cli("dataloader", tmp_path, capsys)
    assert "the number of workers changes nothing: True; persistent_workers changes the later epochs: True" in out


def test_shapes_shows_columns_labels_predictions_and_accumulation(tmp_path, capsys):
    from torchclassics.lessons.shapes import accumulation_demo, clusters_demo, labels_demo

    out = run_cli("shapes", tmp_path, capsys)
    assert "shape (100,); nn.Linear(1, 10)(x) -> RuntimeError: mat1 and mat2 shapes cannot be multiplied" in out
    assert "x.unsqueeze(1): shape (100, 1) (100 samples, 1 feature) -> nn.Linear(1, 10) gives (100, 10)" in out
    assert "x.view(-1, 1) is the same column: True; no copy, same memory: True" in out
    assert "torch.cat((x0, x1), 0): shape (200, 2)" in out and "torch.cat((x0, x1), 1): shape (100, 4)" in out
    assert "inputs torch.float32, labels torch.int64, scores (200, 2)" in out
    assert "indices [0, 2, 1]); [1] is the predicted class, = out.argmax(1) [0, 2, 1]" in out
    assert "it picks dim=0, the batch: True" in out
    assert "w.grad = [3.0, 4.0], after a second one [6.0, 8.0]" in out and "w.grad = None" in out
    assert out.rstrip().endswith("(lesson shapes has no figure)")
    clusters = clusters_demo()
    assert clusters["x0_mean"][0] == pytest.approx(2, abs=0.3) and clusters["x1_mean"][1] == pytest.approx(-2, abs=0.3)
    labels = labels_demo(clusters["x"], clusters["y"])
    assert labels["float_labels_error"] and labels["by_index"] == pytest.approx(labels["by_one_hot"], abs=1e-6)
    twice = accumulation_demo()["twice"]
    assert twice == [2 * g for g in accumulation_demo()["once"]]


def test_layers_shapes_and_the_collapse_of_stacked_linear_layers(tmp_path, capsys):
    from torchclassics.lessons.layers import collapse, parabola_fits

    out = run_cli("layers", tmp_path, capsys)
    assert "nn.Linear(10, 5): weight (5, 10) (out, in), bias (5,), 55 parameters" in out
    assert "input (1, 10) -> output (1, 2)" in out
    assert collapse()["gap"] < 1e-5
    fits = parabola_fits()
    # No activation: the best three stacked layers can do is the best straight line.
    assert fits["stacked_mse"] == pytest.approx(fits["line_mse"], rel=1e-3)
    assert fits["relu_mse"] < fits["line_mse"] / 100
    assert 'missing the required "forward" function' in out and "must be Tensor, not ReLU" in out
    assert "output (3, 2)" in out
    figure = tmp_path / "layers.png"
    assert figure.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["layers.png"]  # no temporary file left


def test_rnn_gradients_gates_states_and_detach(tmp_path, capsys, monkeypatch):
    from torchclassics.lessons import rnn
    from torchclassics.lessons.rnn import gradient_table, lstm_step_by_hand, scalar_factors

    # The three trainings are checked by the rnn page's code (docs/lessons/rnn.md), once.
    monkeypatch.setattr(rnn, "trained_cells", lambda: {"lstm": 0.5, "gru": 0.5, "rnn": 0.25})
    out = run_cli("rnn", tmp_path, capsys)
    assert "cell=rnn   test accuracy 0.250" in out
    factors = scalar_factors()
    assert factors[0.9] < 0.01 and factors[1.0] == 1 and factors[1.1] > 100
    table = gradient_table()
    for name in ("RNN", "LSTM"):  # at initialisation, 40 steps back is lost
        assert table[name][-41] < 1e-6 * table[name][-1], name
    opened = table["LSTM, forget gate bias +2"]
    assert opened[0] > 1e-3 * opened[-1]  # the first input still reaches the last output
    step = lstm_step_by_hand()
    assert step["h_gap"] < 1e-6 and step["c_gap"] < 1e-6
    assert "r_out[:, -1, :] equals h_n[-1]: True; equals c_n[-1]: False" in out
    assert "Trying to backward through the graph a second time" in out
    assert "window 2's gradient would reach window 1: True" in out and "reaches window 1: False" in out
    assert (tmp_path / "rnn_gradients.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.integration
def test_pca_against_a_real_autoencoder_run(tmp_path, capsys, monkeypatch):
    import json

    from torchclassics.lessons import pca

    monkeypatch.setattr(pca, "AUTOENCODER_EPOCHS", 1)  # the comparison, not the result of 20 epochs
    monkeypatch.setenv("TORCHCLASSICS_DATA", str(tmp_path / "no_mnist"))  # the offline subset, on any machine
    folder = tmp_path / "lesson"
    out = run_cli("pca", folder, capsys)
    assert "test MSE of the reconstructions (1,000 test digits): 0.0524" in out
    summary = json.loads((folder / "autoencoder_run" / "summary.json").read_text())
    assert summary["experiment"] == "autoencoder" and summary["params"]["epochs"] == 1
    assert f"test MSE {summary['metrics']['test_mse']:.4f} on the same test digits" in out
    assert (folder / "pca_vs_autoencoder.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_pca_by_hand_equals_scikit_learn():
    from torchclassics.lessons.pca import pca_reconstruction

    rng = np.random.default_rng(0)
    train = rng.normal(size=(200, 6)) @ rng.normal(size=(6, 6))
    test = rng.normal(size=(50, 6)) @ rng.normal(size=(6, 6))
    mean = train.mean(0)
    _, _, vt = np.linalg.svd(train - mean, full_matrices=False)
    rebuilt = mean + (test - mean) @ vt[:2].T @ vt[:2]
    assert pca_reconstruction(train, test, components=2)["mse"] == pytest.approx(np.mean((rebuilt - test) ** 2))


@pytest.mark.integration
def test_sklearn_engine_and_grid_search_side_by_side(tmp_path, capsys, monkeypatch):
    from torchclassics.lessons import sklearn as lesson

    monkeypatch.setattr(lesson, "GRID", {"lr": [0.02, 0.1], "module__hidden": [10]})  # two learning rates: faster
    out = run_cli("sklearn", tmp_path, capsys)
    assert "GridSearchCV: 2 settings x 3 folds, mean accuracy of each:" in out
    assert re.search(r"^  setting\s+lr=0.02 hidden=10\s+lr=0.(02|1) hidden=10$", out, re.M)
    engine, grid = map(float, re.search(r"^  test accuracy\s+(\d\.\d{3})\s+(\d\.\d{3})$", out, re.M).groups())
    assert engine >= 0.95 and grid >= 0.95  # both solve the two clusters, scored on the same held-out points
    assert re.search(r"^  nets trained\s+1\s+7$", out, re.M)  # 2 settings x 3 folds + the refit
    assert (tmp_path / "engine_run" / "summary.json").is_file()  # a real run of the experiment
    assert (tmp_path / "engine_vs_gridsearch.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.integration
@pytest.mark.external
def test_parallel_ddp_on_cpu_trains_as_one_process(tmp_path, capsys):
    out = run_cli("parallel", tmp_path, capsys)
    difference = float(re.search(r"gradient: largest difference ([0-9.e+-]+)", out).group(1))
    assert difference < 1e-6  # the mean of the shards' gradients is the batch's
    assert "torchrun --standalone --nproc_per_node=2 -m torchclassics run regression" in out
    assert "world_size 2: test_mse" in out and "same training: True" in out and "same training: False" not in out
    if not torch.cuda.is_available():
        assert "DataParallel(model)(x) is model(x): True" in out
    assert (tmp_path / "parallel.png").stat().st_size > 10_000


def test_data_parallel_wraps_the_experiments_model_and_keeps_its_checkpoints(tmp_path):
    """The experiment's model called through nn.DataParallel trains as the plain model does (on a
    CPU DataParallel calls the model itself), and its checkpoints load as any run's (no 'module.')."""
    from torchclassics.api import evaluate
    from torchclassics.lessons.parallel import data_parallel_fit, one_process_fit, same_training

    plain = one_process_fit(tmp_path / "plain", device="cuda" if torch.cuda.is_available() else "cpu")
    wrapped = data_parallel_fit(tmp_path / "dp")
    assert same_training(plain["metrics"], wrapped["metrics"], rel=1e-3)
    assert evaluate(tmp_path / "dp")["test_mse"] == pytest.approx(wrapped["metrics"]["test_mse"], rel=1e-4)


@pytest.mark.gpu  # nn.DataParallel needs CUDA GPUs
def test_data_parallel_splits_each_batch_over_every_gpu(tmp_path, capsys):
    from torchclassics.lessons.parallel import data_parallel_fit

    assert data_parallel_fit(tmp_path / "dp")["gpus"] == torch.cuda.device_count()
    out = run_cli("parallel", tmp_path / "lesson", capsys)
    assert f"{torch.cuda.device_count()} GPU(s): test_mse" in out and "same training: False" not in out


def test_autograd_vector_backward_combined_losses_and_last_layers(tmp_path, capsys):
    from torchclassics.lessons.autograd import last_layers, saturated_logit, vector_backward

    out = run_cli("autograd", tmp_path, capsys)
    v = vector_backward()
    assert v["refused"] == "grad can be implicitly created only for scalar outputs"
    assert v["with_gradient"] == v["as_scalar"] == v["by_hand"] == [2.0, 0.4, 0.06]
    assert "added: True" in out
    rows = last_layers()
    assert [problem.split()[0] for problem, *_ in rows] == ["regression", "binary", "multi-class"]
    for problem, _, book, logits in rows:  # the book's last layer and the logits form give the same loss
        assert book == pytest.approx(logits, abs=1e-6), problem
    s = saturated_logit()
    assert s["sigmoid"] == 1.0 and s["bce"] == 100 and s["bce_logits"] == pytest.approx(40)
    assert s["softmax_twice"] > 1000 * s["logits_once"]


def test_debug_dynamic_graph_against_a_trace_and_export(tmp_path, capsys):
    from torchclassics.lessons.debug import branch_demo, export_refusal, traceback_demo

    out = run_cli("debug", tmp_path, capsys)
    b = branch_demo()
    assert b["eager"] == [[2.0] * 3, [1.0] * 3]  # Python takes the branch the data asks for
    assert b["traced"] == [[2.0] * 3, [-2.0] * 3]  # the trace replays the positive example's branch
    assert b["printed"] == ["    forward sees sum 3", "    forward sees sum -3", "    -- tracing",
                            "    forward sees sum 3", "    -- calling the trace"]  # the trace never prints
    assert "data-dependent" in export_refusal()
    t = traceback_demo()
    assert t["eager"] == ("mat1 and mat2 shapes cannot be multiplied (2x5 and 4x8)",
                          "forward: h = torch.relu(self.hidden(x))  # the line a wrong input fails on")
    assert t["traced"][1] == "none" and "TorchScript" in t["traced"][0]
    assert "<- the negative input doubled" in out


def test_lstm_mnist_cell_picks_the_recurrent_layer_and_refuses_others():
    from torch import nn

    from torchclassics.core.errors import UserError
    from torchclassics.models.lstm import RowLSTM
    from torchclassics.params import sources

    for cell, layer in (("lstm", nn.LSTM), ("gru", nn.GRU), ("rnn", nn.RNN)):
        model = RowLSTM(hidden=8, cell=cell)
        assert type(model.rnn) is layer and model(torch.zeros(2, 1, 28, 28)).shape == (2, 10)
    assert sources.resolve("lstm_mnist")["cell"] == "lstm"
    with pytest.raises(UserError, match="cell"):
        sources.resolve("lstm_mnist", overrides={"cell": "transformer"})


@pytest.mark.integration
def test_optimizers_page_shows_sparseadams_refusal_as_it_is(tmp_path):
    """The book's full optimizer list on docs/experiments/optimizers.md and its 中文 twin (its numbers are checked
    with every number of the pages, by tests/test_doc_numbers.py): SparseAdam is refused in the pages' one line."""
    from pathlib import Path

    from torchclassics import run
    from torchclassics.core.errors import UserError

    docs = Path(__file__).resolve().parents[1] / "docs" / "experiments"
    with pytest.raises(UserError) as refused:
        run("optimizers", out=tmp_path / "sparse", figures=False, quiet=True, optimizers=["SparseAdam"])
    for page in ("optimizers.md", "optimizers.zh.md"):
        assert str(refused.value) in (docs / page).read_text(encoding="utf-8"), page
