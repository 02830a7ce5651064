"""Every lesson and experiment page of docs/, English and 中文, as a Jupyter notebook under notebooks/.

    python notebooks/build.py            # write the notebooks again from the pages
    python notebooks/build.py --check    # list the notebooks that differ from their page (exit 1)

The page is the source; a notebook is never edited by hand. jupytext reads the page's markdown:
each ```python block becomes a code cell, the text between them markdown cells. A block of another
language (the pages' shell commands) stays a fenced block in a markdown cell, shown and not run: a
command that trains for minutes has no place in a notebook meant to run in seconds. An experiment
page's notebook ends with one more code cell that runs the experiment at its smallest settings and
shows the result (its metrics table and figures). Links of the page are rewritten to reach the same
files from the notebook's folder. The notebooks hold no outputs; the test suite executes the
English ones (tests/test_notebooks.py) and checks that each 中文 one holds the same code.
"""
from __future__ import annotations

import os
import re
import sys
from pathlib import Path

import jupytext
from nbformat.v4 import new_code_cell, new_markdown_cell

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
NOTEBOOKS = ROOT / "notebooks"
KINDS = ("lessons", "experiments")
HEADER = ("---\njupyter:\n  kernelspec:\n    display_name: Python 3\n    language: python\n    name: python3\n"
          "---\n\n")
LINK = re.compile(r"(\]\()([^)\s#]+)")  # a markdown link or image target
OTHER_LANGUAGE = re.compile(r"^%%(\w+)\n")  # jupytext's cell magic for a block of another language

# The smallest settings each experiment runs at in its notebook (as tests/test_smallest_settings.py):
# seconds on a CPU, offline. "mnist": the offline 5,000-digit subset (an empty data folder, no download).
OFFLINE_MNIST = {"data_root": "mnist", "download": False}
RUN_HERE = {
    "regression": {"epochs": 1, "n_points": 20},
    "classification": {"epochs": 1, "n_per_class": 10},
    "linear": {"epochs": 1},
    "optimizers": {"epochs": 1, "n_points": 40, "hidden": 4},
    "rnn_sincos": {"epochs": 1, "train_windows": 4, "test_windows": 2, "hidden": 4},
    "autoencoder": {**OFFLINE_MNIST, "epochs": 1, "gif_frames": 2, "shown_digits": 4, "scatter_points": 50},
    "cnn_mnist": {**OFFLINE_MNIST, "epochs": 1, "gif_frames": 2, "tsne_points": 30, "tsne_iter": 250},
    "lstm_mnist": {**OFFLINE_MNIST, "epochs": 1, "hidden": 8},
    "dcgan_mnist": {**OFFLINE_MNIST, "epochs": 1, "batch_size": 32, "width": 4, "noise_dim": 8, "judge_steps": 2,
                    "eval_digits": 50, "gif_frames": 1},
    "dogs_vs_cats": {"data_root": "shapes", "epochs": 1, "image_size": 32, "cnn_width": 4, "batch_size": 8,
                     "augment": False},
    "gan_curves": {"epochs": 1, "steps_per_epoch": 4, "batch_size": 8, "hidden": 8, "eval_paintings": 20,
                   "gif_frames": 1},
    "dqn_cartpole": {"epochs": 1, "learn_start": 8, "batch_size": 8, "memory": 100, "hidden": 8, "eval_episodes": 1,
                     "gif_frames": 4},
    "char_rnn_names": {"epochs": 1, "hidden": 8, "batch_size": 16},
    "dropout": {"epochs": 1, "n_points": 4, "n_test": 4, "hidden": 8, "gif_frames": 1},
    "batchnorm": {"epochs": 1, "n_points": 64, "n_test": 10, "batch_size": 16, "layers": 2, "hidden": 4,
                  "gif_frames": 1},
}
RUN_HERE_TEXT = {
    False: "## Run it here\n\nThe experiment at its smallest settings (seconds on a CPU, offline): the result shows "
           "its metrics and figures. Remove the settings to run the page's defaults.",
    True: "## 在这里运行\n\n以最小的设置运行这个实验(CPU 上几秒钟,离线):结果显示它的指标和图。"
          "去掉这些设置即按页面的默认参数运行。",
}


def pages() -> list[Path]:
    """Every lesson and experiment page, English and 中文."""
    return sorted(page for kind in KINDS for page in (DOCS / kind).glob("*.md"))


def notebook_path(page: Path) -> Path:
    return NOTEBOOKS / page.parent.name / (page.name.removesuffix(".md") + ".ipynb")


def run_here_code(name: str) -> str:
    settings = RUN_HERE[name]
    lines = ["from pathlib import Path", "", "import torchclassics", ""]
    if settings.get("data_root") == "mnist":
        lines += ['Path("mnist").mkdir(exist_ok=True)  # empty: the offline MNIST subset']
    if settings.get("data_root") == "shapes":
        lines += ["from torchclassics.data import shapes", "",
                  'shapes.make_folder("shapes", 40, "kaggle", size=32, seed=1, broken=False)  # drawn cats and dogs']
    if "data_root" in settings:
        settings = {**settings, "data_root": f'str(Path("{settings["data_root"]}").resolve())'}
    shown = ", ".join(f"{key}={value}" if key == "data_root" else f"{key}={value!r}" for key, value in settings.items())
    lines += [f'result = torchclassics.run("{name}", out="runs/{name}", quiet=True, {shown})', "result"]
    return "\n".join(lines)


def relinked(markdown: str, page: Path, notebook: Path) -> str:
    """The page's relative links, pointing at the same files from the notebook's folder."""
    def moved(match: re.Match) -> str:
        target = match.group(2)
        if re.match(r"[a-z]+:", target) or target.startswith("/"):
            return match.group(0)
        return match.group(1) + os.path.relpath(page.parent / target, notebook.parent).replace(os.sep, "/")
    return LINK.sub(moved, markdown)


def notebook_text(page: Path) -> str:
    """The notebook of ``page``, as the .ipynb text written to notebooks/."""
    notebook = jupytext.reads(HEADER + page.read_text(encoding="utf-8"), fmt="md")
    target = notebook_path(page)
    chinese = page.name.endswith(".zh.md")
    cells = []
    for cell in notebook.cells:
        other = OTHER_LANGUAGE.match(cell.source) if cell.cell_type == "code" else None
        if other:  # a shell command: shown, not run
            cell = new_markdown_cell(f"```{other.group(1)}\n{cell.source[other.end():]}\n```")
        elif cell.cell_type == "markdown":
            cell.source = relinked(cell.source, page, target)
        cells.append(cell)
    name = page.name.split(".")[0]
    if page.parent.name == "experiments":
        cells += [new_markdown_cell(RUN_HERE_TEXT[chinese]),
                  new_code_cell(run_here_code(name))]
    for number, cell in enumerate(cells):  # ids fixed by position: the same page gives the same file
        cell.id = f"{name}-{number}"
        cell.metadata = {}
    notebook.cells = cells
    notebook.metadata = {"kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
                         "language_info": {"name": "python"}}
    return jupytext.writes(notebook, fmt="ipynb")


def stale() -> list[Path]:
    """The notebooks missing or different from what their page gives, and notebooks without a page."""
    wanted = {notebook_path(page): page for page in pages()}
    found = set(NOTEBOOKS.glob("*/*.ipynb"))
    differ = [path for path, page in wanted.items()
              if not path.is_file() or path.read_text(encoding="utf-8") != notebook_text(page)]
    return sorted(differ + [path for path in found if path not in wanted])


def write_all() -> list[Path]:
    written = []
    for page in pages():
        path = notebook_path(page)
        text = notebook_text(page)
        if not path.is_file() or path.read_text(encoding="utf-8") != text:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
            written.append(path)
    for orphan in set(NOTEBOOKS.glob("*/*.ipynb")) - {notebook_path(page) for page in pages()}:
        orphan.unlink()  # its page is gone
        written.append(orphan)
    return written


def main(argv: list[str]) -> int:
    if argv == ["--check"]:
        differ = stale()
        for path in differ:
            print(f"stale: {path.relative_to(ROOT)} (run python notebooks/build.py)")
        return 1 if differ else 0
    if argv:
        print(__doc__)
        return 2
    for path in write_all():
        print(f"wrote {path.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
