"""PCA with 3 components against the autoencoder, on the same MNIST digits.

The tutorial series says the autoencoder extracts features like PCA and "even
beats PCA". PCA is the best *linear* 3-number summary: the 3 directions of
largest variance, and reconstruction by projecting back. The autoencoder is
non-linear (Tanh layers), so it can do better with the same 3 numbers. This
lesson measures both on the same test digits: PCA from scikit-learn, fitted on
the autoencoder's training digits, and the autoencoder from a real run of the
``autoencoder`` experiment (written into ``out/autoencoder_run``).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ..viz.embed import draw_codes_3d
from ..viz.plots import new_figure
from ._figure import save_figure

# The experiment's own default; the test passes fewer.
AUTOENCODER_EPOCHS = 20
COMPONENTS = 3
SHOWN = 1000  # test digits in the scatter, as the experiment's codes_3d.png


def pixels(images) -> np.ndarray:
    """uint8 (N, 28, 28) -> float (N, 784) in [0, 1], what the autoencoder reconstructs."""
    return images.reshape(len(images), -1).numpy().astype(np.float32) / 255.0


def pca_reconstruction(train: np.ndarray, test: np.ndarray, components: int = COMPONENTS) -> dict:
    """PCA fitted on ``train``; the test codes and the MSE of the test reconstructions."""
    from sklearn.decomposition import PCA

    pca = PCA(n_components=components, random_state=0).fit(train)
    codes = pca.transform(test)
    rebuilt = pca.inverse_transform(codes)
    return {"codes": codes, "mse": float(np.mean((rebuilt - test) ** 2)),
            "explained": float(pca.explained_variance_ratio_.sum())}


def autoencoder_run(out: Path, epochs: int):
    """A real run of the autoencoder experiment, offline data only, without figures."""
    from .. import api

    return api.run("autoencoder", out=out, figures=False, device="cpu", epochs=epochs, download=False)


def autoencoder_codes(model, test: np.ndarray) -> np.ndarray:
    import torch

    with torch.no_grad():
        return model.cpu().eval().encode(torch.from_numpy(test)).numpy()


def draw(pca_codes: np.ndarray, ae_codes: np.ndarray, labels: np.ndarray, titles: tuple[str, str],
         path: Path) -> Path:
    """3-D codes on top, their first two numbers below; PCA left, autoencoder right."""
    import matplotlib

    colours = matplotlib.colormaps["tab10"]  # the colours draw_codes_3d gives each digit
    fig = new_figure(9, 7.5)
    for column, (codes, title) in enumerate(zip((pca_codes, ae_codes), titles)):
        draw_codes_3d(fig.add_subplot(2, 2, column + 1, projection="3d"), codes, labels, title)
        ax = fig.add_subplot(2, 2, column + 3)
        for digit in range(10):
            chosen = labels == digit
            ax.scatter(codes[chosen, 0], codes[chosen, 1], s=4, color=colours(digit), label=str(digit))
        ax.set(xlabel="code 1", ylabel="code 2", title="first two of the three numbers")
    ax.legend(title="digit", loc="center left", bbox_to_anchor=(1.0, 0.5), markerscale=3, frameon=False)
    return save_figure(fig, path)


def run(out: Path) -> Path:
    from ..data import mnist

    data = mnist.load_mnist(None, allow_download=False)
    train, test = pixels(data.train_images), pixels(data.test_images)
    print(f"data: {data.source}")
    pca = pca_reconstruction(train, test)
    print(f"PCA, {COMPONENTS} components fitted on the {len(train):,} training digits: they explain "
          f"{pca['explained']:.1%} of the pixel variance")
    print(f"  test MSE of the reconstructions ({len(test):,} test digits): {pca['mse']:.4f}")
    result = autoencoder_run(out / "autoencoder_run", AUTOENCODER_EPOCHS)
    ae_mse = result.metrics["test_mse"]
    print(f"autoencoder, {COMPONENTS} numbers per digit, {AUTOENCODER_EPOCHS} epochs "
          f"(a run of the experiment: {result.run_dir}):")
    print(f"  test MSE {ae_mse:.4f} on the same test digits: "
          f"{'lower' if ae_mse < pca['mse'] else 'not lower'} than PCA's ({ae_mse / pca['mse']:.0%} of it)")
    count = min(SHOWN, len(test))
    ae_codes = autoencoder_codes(result.model, test[:count])
    titles = (f"PCA, 3 components: test MSE {pca['mse']:.4f}", f"autoencoder: test MSE {ae_mse:.4f}")
    path = draw(pca["codes"][:count], ae_codes, data.test_labels[:count].numpy(), titles,
                out / "pca_vs_autoencoder.png")
    print(f"figure: {path.name} (test digits coloured by label; neither method saw the labels)")
    return out
