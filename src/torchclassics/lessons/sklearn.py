"""The two-cluster problem twice: by the engine, and by scikit-learn's GridSearchCV over a skorch estimator.

The course joins scikit-learn and PyTorch with skorch: a PyTorch net wrapped as a
scikit-learn estimator, so cross-validation, grid search and pipelines work on it
unchanged. This lesson trains the classification experiment's net both ways on the
same points: ``torchclassics.run("classification")`` (the engine: one run with
params.json's lr and width), and ``GridSearchCV`` over ``torchclassics.estimator``
(4 settings, each scored by 3-fold cross-validation, the best refitted on all the
points). Both are scored on the same held-out clusters.
"""
from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from ._figure import save_figure

# The settings GridSearchCV tries: params.json's lr and width, and one larger of each.
GRID = {"lr": [0.02, 0.1], "module__hidden": [10, 20]}
FOLDS = 3


def clusters() -> tuple[np.ndarray, ...]:
    """The experiment's own points, as its params.json makes them: training (seed) and held-out (seed + 1)."""
    from ..data.synthetic import two_clusters
    from ..params.sources import resolve

    params = resolve("classification")
    x, y = two_clusters(params["n_per_class"], params["seed"], params["centre"])
    x_test, y_test = two_clusters(params["n_per_class"], params["seed"] + 1, params["centre"])
    return x.numpy(), y.numpy(), x_test.numpy(), y_test.numpy()


def by_engine(out: Path) -> dict:
    """One run of the experiment, as ``torchclassics run classification`` makes it."""
    from .. import api

    started = time.perf_counter()
    result = api.run("classification", out=out, figures=False, device="cpu", quiet=True)
    params = result.summary["params"]
    return {"setting": f"lr={params['lr']} hidden={params['hidden']}", "how": "params.json, one run",
            "test_accuracy": result.metrics["test_accuracy"], "seconds": time.perf_counter() - started,
            "fits": 1, "fit_seconds": result.summary["train_s"],
            "predict": lambda points: _engine_predictions(result.model, points)}


def _engine_predictions(model, points: np.ndarray) -> np.ndarray:
    import torch

    with torch.no_grad():
        return model.cpu().eval()(torch.from_numpy(points)).argmax(1).numpy()


def by_grid_search(x: np.ndarray, y: np.ndarray, x_test: np.ndarray, y_test: np.ndarray) -> dict:
    """GridSearchCV over the skorch estimator: every setting of GRID, FOLDS-fold, the best refitted."""
    from sklearn.model_selection import GridSearchCV

    from ..estimator import estimator

    started = time.perf_counter()
    search = GridSearchCV(estimator("classification"), GRID, cv=FOLDS).fit(x, y)
    best = search.best_params_
    settings = len(search.cv_results_["params"])
    return {"setting": f"lr={best['lr']} hidden={best['module__hidden']}",
            "how": f"best of {settings}, {FOLDS}-fold CV accuracy {search.best_score_:.3f}",
            "test_accuracy": float(search.score(x_test, y_test)), "seconds": time.perf_counter() - started,
            "fits": settings * FOLDS + 1, "predict": search.predict,
            "fit_seconds": float(np.mean(search.cv_results_["mean_fit_time"])),
            "cv": [(params, float(score)) for params, score in
                   zip(search.cv_results_["params"], search.cv_results_["mean_test_score"])]}


def table(engine: dict, grid: dict) -> str:
    rows = [("", "engine: torchclassics.run", "skorch: GridSearchCV"),
            ("setting", engine["setting"], grid["setting"]),
            ("chosen by", engine["how"], grid["how"]),
            ("test accuracy", f"{engine['test_accuracy']:.3f}", f"{grid['test_accuracy']:.3f}"),
            ("nets trained", str(engine["fits"]), str(grid["fits"])),
            ("training one net", f"{engine['fit_seconds']:.2f} s", f"{grid['fit_seconds']:.2f} s"),
            ("wall time, all", f"{engine['seconds']:.1f} s", f"{grid['seconds']:.1f} s")]
    widths = [max(len(row[i]) for row in rows) for i in range(3)]
    return "\n".join("  " + "   ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip() for row in rows)


def draw(engine: dict, grid: dict, x_test: np.ndarray, y_test: np.ndarray, path: Path) -> Path:
    """Each model's decision regions with the held-out points."""
    import torch

    from ..experiments.classification import decision_grid
    from ..viz.plots import new_figure

    gx, gy, mesh = decision_grid(torch.from_numpy(x_test))
    fig = new_figure(10, 4.5)
    for column, (model, title) in enumerate(((engine, "engine"), (grid, "GridSearchCV best"))):
        ax = fig.add_subplot(1, 2, column + 1)
        regions = model["predict"](mesh.numpy()).reshape(gx.shape)
        ax.contourf(gx, gy, regions, levels=[-0.5, 0.5, 1.5], colors=["#ffd9b3", "#b3d9ff"], alpha=0.8)
        ax.scatter(x_test[:, 0], x_test[:, 1], c=y_test, cmap="RdYlBu", s=14, edgecolors="k", linewidths=0.3)
        ax.set(title=f"{title}: {model['setting']}\ntest accuracy {model['test_accuracy']:.3f}")
    return save_figure(fig, path)


def run(out: Path) -> Path:
    x, y, x_test, y_test = clusters()
    print(f"data: the classification experiment's clusters, {len(x)} training points and {len(x_test)} held out")
    engine = by_engine(out / "engine_run")
    print(f"engine: {engine['setting']} from params.json, one run ({out / 'engine_run'})")
    grid = by_grid_search(x, y, x_test, y_test)
    print(f"GridSearchCV: {len(grid['cv'])} settings x {FOLDS} folds, mean accuracy of each:")
    for params, score in grid["cv"]:
        print(f"  lr={params['lr']:<5} hidden={params['module__hidden']:<3} {score:.3f}")
    print("side by side, on the same held-out points:")
    print(table(engine, grid))
    path = draw(engine, grid, x_test, y_test, out / "engine_vs_gridsearch.png")
    print(f"figure: {path.name} (decision regions and the held-out points)")
    return out
