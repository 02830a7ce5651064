"""How ``torchclassics report`` and ``synthesize`` scale: 500 and 5,000 runs, in headless Chromium.

Writes N run directories directly (params.json, metrics.jsonl, summary.json, figures;
nothing is trained) for several experiments, some runs pruned trials or unfinished,
renders the report with ``torchclassics report`` in a subprocess (the time to generate it
is measured, imports included) in each figure mode asked for, and opens each page in
Debian's headless Chromium through playwright, several times, alternating the pages.
Measured in the page (performance marks and performance.now, not the test harness):

- first screen: navigation start to the end of the page's script (overview shown;
  tables sortable, filterable, tickable), and to the load event;
- Plotly: how long running plotly.min.js took (the page does it once it is idle, or
  when a chart is first needed);
- first chart: navigation start to an experiment's view painted with its scatter, when
  that view is asked for as soon as the page has loaded;
- filter: typing in that view's filter until the next frame is painted;
- tick: ticking two runs until their overlaid curves are painted;
- sort: sorting that view's table by its first metric until painted; page: turning to its
  next page of rows until painted (pages that page their tables).

``--baseline-ref REF`` renders the same runs with the code of another git commit as well
(checked out in a temporary ``git worktree``, run with PYTHONPATH pointing at its src/),
in the same run, so the table shows before and after. ``synthesize`` of the same runs is
timed too (``--synthesize``), for both codes.

    python benchmarks/report_scale.py                                # 500 runs, this tree, 3 repeats
    python benchmarks/report_scale.py --runs 500 5000 --baseline-ref 873bd28 --synthesize --json out.json
    python benchmarks/report_scale.py --keep /tmp/runs500            # keep the runs and pages to look at
"""
from __future__ import annotations

import argparse
import json
import math
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
EXPERIMENTS = ("classification", "regression", "cnn_mnist", "autoencoder", "dogs_vs_cats", "optimizers",
               "rnn_sincos", "lstm_mnist")


# -- runs, written as the engine writes them ----------------------------------------------
def sample_figures(folder: Path) -> dict[str, bytes]:
    """A loss figure, a still and a GIF as the engine draws them (matplotlib, imageio), drawn once."""
    from torchclassics.viz.animate import animate
    from torchclassics.viz.plots import loss_curves, new_figure, save

    history = [{"epoch": e, "loss": 1 / e, "test_loss": 1.2 / e, "accuracy": 1 - 0.5 / e,
                "test_accuracy": 1 - 0.6 / e} for e in range(1, 31)]
    loss_curves(history, folder / "loss.png", "loss")
    fig = new_figure(6.4, 4.8)
    ax = fig.add_subplot(1, 1, 1)
    ax.scatter([random.random() for _ in range(200)], [random.random() for _ in range(200)], s=6)
    save(fig, folder / "fit.png")
    animate(range(12), lambda ax, i: ax.plot([0, 1, 2], [0, i / 12, 1]), folder / "animation.gif", size=(4, 3))
    return {name: (folder / name).read_bytes() for name in ("loss.png", "fit.png", "animation.gif")}


def write_run(path: Path, experiment: str, params: dict, epochs: int, status: str, figures: dict[str, bytes],
              held_out: str, rng: random.Random) -> None:
    path.mkdir(parents=True)
    loss_name = "mse" if held_out == "test_mse" else "loss"
    speed, floor = params["lr"] * params["hidden"] / 64, rng.uniform(0.01, 0.2)
    logged = epochs if status == "finished" else rng.randint(1, epochs - 1)
    rows = []
    for epoch in range(1, logged + 1):
        loss = floor + math.exp(-speed * epoch) + rng.gauss(0, 0.01)
        row = {"epoch": epoch, "step": epoch * 50, loss_name: loss, f"test_{loss_name}": loss * 1.1, "lr": params["lr"],
               "train_s": 0.05 * epoch}
        if held_out == "test_accuracy":
            row.update(accuracy=1 - loss / 2, test_accuracy=1 - loss / 1.8)
        rows.append(row)
    (path / "params.json").write_text(json.dumps({"experiment": experiment, **params}))
    (path / "metrics.jsonl").write_text("".join(json.dumps(row) + "\n" for row in rows))
    if status == "finished":
        final = {k: v for k, v in rows[-1].items() if k not in ("epoch", "step", "lr", "train_s")}
        mode = "max" if held_out == "test_accuracy" else "min"
        best = (max if mode == "max" else min)(rows, key=lambda row: row[held_out])
        (path / "summary.json").write_text(json.dumps({
            "experiment": experiment, "run": path.name, "params": params, "seed": params["seed"], "device": "cpu",
            "wall_s": 0.08 * epochs, "train_s": 0.05 * epochs, "metrics": final,
            "best": {"metric": held_out, "value": best[held_out], "epoch": best["epoch"]},
            "objective": {"metric": held_out, "mode": mode}}))
    elif status == "pruned":
        (path / "trial.json").write_text(json.dumps({"study": "s", "trial": int(path.name.rsplit("-", 1)[1]),
                                                     "state": "pruned", "epoch": logged}))
    figure_folder = path / "figures"
    figure_folder.mkdir()
    for name, data in figures.items():
        (figure_folder / name).write_bytes(data)


def write_runs(root: Path, n_runs: int, n_experiments: int, epochs: int, figures: dict[str, bytes]) -> None:
    rng = random.Random(0)
    for i in range(n_runs):
        experiment = EXPERIMENTS[i % n_experiments]
        held_out = ("test_accuracy", "test_mse")[EXPERIMENTS.index(experiment) % 2]
        params = {"seed": 0, "epochs": epochs, "batch_size": rng.choice([32, 64, 128]),
                  "hidden": rng.choice([8, 16, 32, 64]),
                  "lr": 10 ** rng.uniform(-3, 0), "optimizer": rng.choice(["SGD", "Adam"]), "optimizer_args": {},
                  "scheduler": None, "clip_grad_norm": None, "n_points": 100, "noise": 0.2}
        status = rng.choices(["finished", "pruned", "unfinished"], weights=[85, 10, 5])[0]
        write_run(root / experiment / f"s-trial-{i // n_experiments}", experiment, params, epochs, status, figures,
                  held_out, rng)


# -- the code that renders: this tree, or another commit's in a temporary worktree ---------------
class Code:
    """A torchclassics to run as ``python -m torchclassics``: this tree's src/, or a commit's."""

    def __init__(self, name: str, src: Path):
        self.name, self.src = name, src

    def run(self, *args: str) -> tuple[float, str]:
        env = {**os.environ, "PYTHONPATH": str(self.src)}
        started = time.perf_counter()
        done = subprocess.run([sys.executable, "-m", "torchclassics", *args], env=env, capture_output=True, text=True)
        elapsed = time.perf_counter() - started
        if done.returncode != 0:
            raise SystemExit(f"{self.name}: torchclassics {' '.join(args)} failed ({done.returncode}):\n"
                             f"{done.stderr[-2000:]}")
        return elapsed, done.stdout


def worktree(ref: str, folder: Path) -> Path:
    """A detached worktree of ``ref`` in ``folder`` (removed by :func:`drop_worktree`)."""
    subprocess.run(["git", "-C", str(REPO), "worktree", "add", "--detach", "--quiet", str(folder), ref], check=True)
    return folder


def drop_worktree(folder: Path) -> None:
    subprocess.run(["git", "-C", str(REPO), "worktree", "remove", "--force", str(folder)], check=False)
    subprocess.run(["git", "-C", str(REPO), "worktree", "prune"], check=False)


# -- the page, in headless Chromium ----------------------------------------------------------
MEASURE = """async () => {
  const frame = () => new Promise(done => requestAnimationFrame(() => setTimeout(done, 0)));
  const nav = performance.getEntriesByType('navigation')[0];
  const ready = performance.getEntriesByName('report-ready')[0].startTime;
  const view = document.querySelector('section.view.experiment');
  location.hash = '#' + view.id;
  await new Promise(done => window.addEventListener('hashchange', done, {once: true}));
  await frame();
  const chart = performance.now();  // from navigation start: whatever blocked before counts
  const plotly = performance.getEntriesByName('plotly-ready')[0].startTime -
                 performance.getEntriesByName('plotly-start')[0].startTime;
  const scatterPoints = view.querySelector('.chart.scatter').data[0].x.length;
  const filter = view.querySelector('.filter');
  let start = performance.now();
  filter.value = 'trial-1';
  filter.dispatchEvent(new Event('input'));
  await frame();
  const filtered = performance.now() - start;
  const shown = view.querySelectorAll('tr.run-row:not([hidden])').length;
  filter.value = '';
  filter.dispatchEvent(new Event('input'));
  await frame();
  const boxes = view.querySelectorAll('tr.run-row .pick input');
  start = performance.now();
  boxes[0].click();
  boxes[1].click();
  await frame();
  const ticked = performance.now() - start;
  const traces = view.querySelector('.chart.curves').data.length;
  const header = view.querySelectorAll('table.runs th')[2];
  start = performance.now();
  header.click();
  await frame();
  const sorted = performance.now() - start;
  const next = view.querySelector('.pager:not([hidden]) .next');
  let turned = null;
  if (next) {
    start = performance.now();
    next.click();
    await frame();
    turned = performance.now() - start;
  }
  return {ready: ready, load: nav.loadEventEnd, plotly: plotly, chart: chart, filter: filtered, tick: ticked,
          sort: sorted, page: turned, rows: view.querySelectorAll('tr.run-row').length,
          laid_out: view.querySelectorAll('tr.run-row:not([hidden])').length, shown: shown, points: scatterPoints,
          traces: traces};
}"""


def measure(pages: dict[str, Path], repeats: int) -> dict[str, list[dict]]:
    from playwright.sync_api import sync_playwright

    results: dict[str, list[dict]] = {name: [] for name in pages}
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            for _ in range(repeats):
                for name, path in pages.items():  # alternated, so a busy moment hits every page alike
                    page = browser.new_page(viewport={"width": 1280, "height": 900})
                    page.set_default_timeout(300_000)
                    errors = []
                    page.on("pageerror", lambda err, errors=errors: errors.append(str(err)))
                    page.on("console",
                            lambda msg, errors=errors: errors.append(msg.text) if msg.type == "error" else None)
                    started = time.perf_counter()
                    page.goto(path.resolve().as_uri())
                    goto_s = time.perf_counter() - started
                    result = page.evaluate(MEASURE)
                    page.close()
                    if errors:
                        raise SystemExit(f"{name}: errors in the page: {errors}")
                    results[name].append({**result, "goto_s": goto_s})
                    print(f"  {name}: first screen {result['ready']:.0f} ms, load {result['load']:.0f} ms, "
                          f"Plotly {result['plotly']:.0f} ms, first chart {result['chart']:.0f} ms, "
                          f"filter {result['filter']:.0f} ms, tick {result['tick']:.0f} ms, sort {result['sort']:.0f} "
                          f"ms ({result['rows']} rows, {result['laid_out']} laid out, {result['shown']} filtered, "
                          f"{result['points']} points, {result['traces']} curves)", file=sys.stderr, flush=True)
        finally:
            browser.close()
    return results


MODES = {"default": (), "link": ("--link-figures",), "embed": ("--embed-all",)}
KEYS = ("ready", "load", "plotly", "chart", "filter", "tick", "sort", "page")


def median(rows: list[dict], key: str) -> float | None:
    values = [row[key] for row in rows if row.get(key) is not None]
    return statistics.median(values) if values else None


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, nargs="+", default=[500], help="numbers of runs (e.g. 500 5000)")
    parser.add_argument("--experiments", type=int, default=5, choices=range(1, len(EXPERIMENTS) + 1))
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--modes", nargs="+", default=["default"], choices=sorted(MODES),
                        help="figure modes of this tree: default (the runs that matter embedded), link, embed")
    parser.add_argument("--baseline-ref", default=None, help="also render with this git commit's code (before/after)")
    parser.add_argument("--baseline-modes", nargs="+", default=["embed", "link"], choices=["embed", "link"],
                        help="the baseline's modes (its default embeds every figure); embed only up to "
                             "--baseline-embed-max runs")
    parser.add_argument("--baseline-embed-max", type=int, default=500)
    parser.add_argument("--synthesize", action="store_true", help="time synthesize of the same runs too")
    parser.add_argument("--keep", type=Path, default=None, help="write the runs and pages here and keep them")
    parser.add_argument("--json", type=Path, default=None, help="write the measurements here")
    args = parser.parse_args(argv)
    if not Path(CHROMIUM).exists():
        raise SystemExit(f"needs Debian's chromium at {CHROMIUM} (apt-get install chromium) and playwright.")
    work = args.keep or Path(tempfile.mkdtemp(prefix="report-scale-"))
    codes = [Code("this tree", REPO / "src")]
    base_tree = None
    load_before = os.getloadavg()
    try:
        if args.baseline_ref:
            base_tree = worktree(args.baseline_ref, Path(tempfile.mkdtemp(prefix="report-baseline-")) / "tree")
            codes.append(Code(args.baseline_ref, base_tree / "src"))
        (work / "sample-figures").mkdir(parents=True, exist_ok=True)
        figures = sample_figures(work / "sample-figures")
        pages, facts, synth = {}, {}, {}
        for n_runs in args.runs:
            root = work / f"runs-{n_runs}"
            if not root.exists():
                started = time.perf_counter()
                write_runs(root, n_runs, args.experiments, args.epochs, figures)
                print(f"{n_runs} runs written in {time.perf_counter() - started:.1f} s", file=sys.stderr)
            for code in codes:
                modes = args.modes if code is codes[0] else \
                    [m for m in args.baseline_modes if m != "embed" or n_runs <= args.baseline_embed_max]
                for mode in modes:
                    # the baseline's default is to embed every figure, so it has no --embed-all
                    flags = () if code is not codes[0] and mode == "embed" else MODES[mode]
                    name = f"{n_runs} runs, {code.name}, {mode}"
                    target = work / f"report-{n_runs}-{len(pages)}.html"
                    seconds, _ = code.run("report", str(root), "-o", str(target), "--force", *flags)
                    pages[name] = target
                    facts[name] = {"runs": n_runs, "code": code.name, "mode": mode, "generate_s": seconds,
                                   "bytes": target.stat().st_size}
                    print(f"{name}: page {facts[name]['bytes'] / 1e6:.1f} MB, generated in {seconds:.1f} s",
                          file=sys.stderr, flush=True)
                if args.synthesize:
                    times = [code.run("synthesize", str(root), "--force")[0] for _ in range(args.repeats)]
                    synth[f"{n_runs} runs, {code.name}"] = times
                    print(f"synthesize {n_runs} runs, {code.name}: {statistics.median(times):.1f} s "
                          f"(median of {len(times)})", file=sys.stderr, flush=True)
        results = measure(pages, args.repeats)
    finally:
        if base_tree is not None:
            drop_worktree(base_tree)
            shutil.rmtree(base_tree.parent, ignore_errors=True)
        if args.keep is None:
            shutil.rmtree(work, ignore_errors=True)
    load_after = os.getloadavg()
    medians = {name: {key: median(rows, key) for key in KEYS} for name, rows in results.items()}
    print(f"\nload average {load_before[0]:.2f} before, {load_after[0]:.2f} after; median of {args.repeats}")
    print("| page | size | generated | first screen | load event | first chart | filter | tick two | sort "
          "| next page |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for name, m in medians.items():
        cells = [f"{m[key] / 1000:.2f} s" if m[key] is not None else "-" for key in ("ready", "load", "chart")]
        cells += [f"{m[key]:.0f} ms" if m[key] is not None else "-" for key in ("filter", "tick", "sort", "page")]
        print(f"| {name} | {facts[name]['bytes'] / 1e6:.1f} MB | {facts[name]['generate_s']:.1f} s | "
              + " | ".join(cells) + " |")
    for name, times in synth.items():
        print(f"| synthesize {name} | | {statistics.median(times):.1f} s |")
    if args.json:
        args.json.write_text(json.dumps({"args": {k: str(v) for k, v in vars(args).items()}, "load": [load_before,
                                         load_after], "facts": facts, "synthesize": synth, "results": results,
                                         "medians": medians}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
