"""How a report of many runs opens and responds in headless Chromium: ``torchclassics report`` at scale.

Writes N run directories directly (params.json, metrics.jsonl, summary.json, figures;
nothing is trained) for several experiments, some runs pruned trials or unfinished,
renders the report (figures embedded, and with --link-figures), and opens each page
in Debian's headless Chromium through playwright, several times. Measured in the page
(performance marks and performance.now, not the test harness):

- first screen: navigation start to the end of the page's script (overview shown;
  tables sortable, filterable, tickable), and to the load event;
- Plotly: how long running plotly.min.js took (the page does it once it is idle, or
  when a chart is first needed);
- first chart: navigation start to an experiment's view painted with its scatter, when
  that view is asked for as soon as the page has loaded;
- filter: typing in that view's filter until the next frame is painted;
- tick: ticking two runs until their overlaid curves are painted.

The baseline, measured in the same run, is the same report of 10 runs: the ratio says
what the number of runs costs over the page's fixed part (mostly Plotly).

    python benchmarks/report_scale.py                     # 500 runs, 5 experiments, 3 repeats
    python benchmarks/report_scale.py --runs 1000 --epochs 50 --repeats 5 --json out.json
    python benchmarks/report_scale.py --keep /tmp/runs500  # keep the runs and pages to look at
"""
from __future__ import annotations

import argparse
import json
import math
import random
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

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
  return {ready: ready, load: nav.loadEventEnd, plotly: plotly, chart: chart, filter: filtered, tick: ticked,
          rows: view.querySelectorAll('tr.run-row').length, shown: shown, points: scatterPoints, traces: traces};
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
                          f"filter {result['filter']:.0f} ms, tick {result['tick']:.0f} ms "
                          f"({result['rows']} rows, {result['shown']} filtered, {result['points']} points, "
                          f"{result['traces']} curves)", file=sys.stderr, flush=True)
        finally:
            browser.close()
    return results


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=500)
    parser.add_argument("--experiments", type=int, default=5, choices=range(1, len(EXPERIMENTS) + 1))
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--baseline-runs", type=int, default=10)
    parser.add_argument("--keep", type=Path, default=None, help="write the runs and pages here and keep them")
    parser.add_argument("--json", type=Path, default=None, help="write the measurements here")
    args = parser.parse_args(argv)
    if not Path(CHROMIUM).exists():
        raise SystemExit(f"needs Debian's chromium at {CHROMIUM} (apt-get install chromium) and playwright.")
    from torchclassics.viz.report import write_report

    work = args.keep or Path(tempfile.mkdtemp(prefix="report-scale-"))
    try:
        (work / "sample-figures").mkdir(parents=True, exist_ok=True)
        figures = sample_figures(work / "sample-figures")
        pages, sizes, render_s = {}, {}, {}
        for name, n_runs, link in (("baseline", args.baseline_runs, False), ("embedded", args.runs, False),
                                   ("linked", args.runs, True)):
            root = work / f"runs-{n_runs}"
            if not root.exists():
                write_runs(root, n_runs, args.experiments, args.epochs, figures)
            started = time.perf_counter()
            pages[name] = write_report(root, work / f"report-{name}.html", link_figures=link)
            render_s[name] = time.perf_counter() - started
            sizes[name] = pages[name].stat().st_size
            print(f"{name}: {n_runs} runs, page {sizes[name] / 1e6:.1f} MB, written in {render_s[name]:.1f} s",
                  file=sys.stderr)
        results = measure(pages, args.repeats)
    finally:
        if args.keep is None:
            shutil.rmtree(work, ignore_errors=True)
    keys = ("ready", "load", "plotly", "chart", "filter", "tick")
    medians = {name: {key: statistics.median(r[key] for r in rows) for key in keys} for name, rows in results.items()}
    print(f"\nmedian of {args.repeats}, ms: first screen / load event / Plotly run / first chart / filter / tick two")
    for name, m in medians.items():
        print(f"{name:9s} {sizes[name] / 1e6:6.1f} MB " + " ".join(f"{m[key]:6.0f}" for key in keys))
    for name in ("embedded", "linked"):
        ratio = medians[name]["load"] / medians["baseline"]["load"]
        print(f"{name}: load {ratio:.2f}x the {args.baseline_runs}-run baseline")
    if args.json:
        args.json.write_text(json.dumps({"args": {k: str(v) for k, v in vars(args).items()}, "sizes": sizes,
                                         "render_s": render_s, "results": results, "medians": medians}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
