"""The report's screenshots in docs/img, drawn again: an experiment tab, a study tab and the studies side by side.

Writes a small, fixed set of runs and search studies (nothing is trained: the numbers come from a formula, so
every redraw shows the same page), renders ``torchclassics report`` of them with this tree, opens the page in
Debian's headless Chromium (playwright) at 1280 px, and saves three PNGs, reduced to 256 colours and optimised
(each well under 300 KB):

    docs/img/report_experiment.png   the optimizers tab: the best run first and marked, two runs ticked,
                                     each model's curves in its own colour, the parameter diff
    docs/img/report_study.png        a study tab: importances, history, parallel coordinates, slices
    docs/img/report_studies.png      three studies of regression (one per sampler) side by side

    python scripts/report_screenshots.py              # into docs/img
    python scripts/report_screenshots.py --out /tmp/shots --keep /tmp/shots/runs
"""
from __future__ import annotations

import argparse
import json
import math
import shutil
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run", "--hide-scrollbars"]
WIDTH = 1280
OPTIMIZERS = ("SGD", "Momentum", "RMSprop", "Adam")


# -- runs and studies, as the engine and search write them ------------------------------------------------
def write_run(path: Path, experiment: str, params: dict, rows: list[dict], goal: tuple[str, str]) -> None:
    path.mkdir(parents=True)
    (path / "figures").mkdir()
    metric, mode = goal
    final: dict = {}
    for row in rows:  # the last row of each model, its metrics prefixed by its tag as the engine does
        prefix = f"{row['tag']}_" if row.get("tag") else ""
        final.update({prefix + k: v for k, v in row.items() if k not in ("epoch", "step", "tag", "train_s")})
    (path / "params.json").write_text(json.dumps({"experiment": experiment, **params}))
    (path / "metrics.jsonl").write_text("".join(json.dumps(row) + "\n" for row in rows))
    (path / "summary.json").write_text(json.dumps({
        "experiment": experiment, "params": {"experiment": experiment, **params}, "seed": 0, "device": "cpu",
        "wall_s": 2.0 + len(rows) / 10, "train_s": 1.5 + len(rows) / 10, "metrics": final,
        "best": {"metric": metric, "value": final[metric], "epoch": rows[-1]["epoch"]},
        "objective": {"metric": metric, "mode": mode}}))


def optimizer_runs(root: Path) -> None:
    """The optimizers lesson at six learning rates: each run trains one model per optimizer (tagged rows)."""
    for i, lr in enumerate((0.003, 0.01, 0.03, 0.1, 0.3, 1.0)):
        rows = []
        for k, tag in enumerate(OPTIMIZERS):
            speed = (0.15 + 0.12 * k) * (1 - abs(math.log10(lr) + 1.5) / 3)
            for epoch in range(1, 21):
                mse = 0.02 + 0.6 * math.exp(-speed * epoch) * (1 + 0.05 * math.sin(epoch + k))
                rows.append({"epoch": epoch, "step": epoch * 20, "tag": tag, "mse": round(mse, 6),
                             "test_mse": round(mse * 1.15 + 0.004 * i, 6)})
        write_run(root / "optimizers" / f"lr-{lr:g}", "optimizers", {"seed": 0, "lr": lr, "epochs": 20}, rows,
                  ("Adam_test_mse", "min"))


def objective(lr: float, hidden: int, dropout: float) -> float:
    return 0.008 + 0.02 * (math.log10(lr) + 1.6) ** 2 + 0.3 / hidden + 0.01 * dropout


def add_study(root: Path, name: str, sampler: str, trials: list[dict]) -> None:
    import optuna
    from optuna.distributions import FloatDistribution, IntDistribution
    from optuna.storages.journal import JournalFileBackend, JournalStorage
    from optuna.trial import create_trial

    folder = root / "studies" / name
    folder.mkdir(parents=True)
    study = optuna.create_study(study_name=name, direction="minimize",
                                storage=JournalStorage(JournalFileBackend(str(folder / "journal.log"))))
    for key, value in {"experiment": "regression", "metric": "test_mse", "sampler": sampler}.items():
        study.set_user_attr(key, value)
    space = {"lr": FloatDistribution(1e-4, 1.0, log=True), "hidden": IntDistribution(4, 128, log=True),
             "dropout": FloatDistribution(0.0, 0.5)}
    for number, params in enumerate(trials):
        study.add_trial(create_trial(params=params, distributions=space, value=objective(**params),
                                     user_attrs={"baseline": number == 0}))
    best = study.best_trial
    (folder / "best_params.json").write_text(json.dumps({
        "experiment": "regression", "study": name, "metric": "test_mse", "direction": "minimize", "sampler": sampler,
        "best_value": best.value, "best_params": best.params, "best_trial": best.number, "n_trials": len(trials)}))


def sampled(kind: str, count: int) -> list[dict]:
    """Trial parameters as each sampler would roughly place them: random everywhere, TPE closing in, a grid."""
    import random

    rng = random.Random({"random": 1, "tpe": 2, "grid": 3}[kind])
    trials = [{"lr": 0.01, "hidden": 16, "dropout": 0.1}]  # trial 0: the experiment's defaults (the baseline)
    grid = [(lr, hidden) for lr in (1e-4, 1e-3, 1e-2, 1e-1, 1.0) for hidden in (4, 16, 64, 128)]
    for n in range(1, count):
        if kind == "grid":
            lr, hidden = grid[(n * 7) % len(grid)]
            trials.append({"lr": lr, "hidden": hidden, "dropout": 0.25})
            continue
        near = kind == "tpe" and n > 6
        lr = 10 ** (rng.gauss(-1.6, 0.3) if near else rng.uniform(-4, 0))
        hidden = int(2 ** (rng.uniform(5, 7) if near else rng.uniform(2, 7)))
        trials.append({"lr": min(max(lr, 1e-4), 1.0), "hidden": min(max(hidden, 4), 128),
                       "dropout": rng.uniform(0, 0.2) if near else rng.uniform(0, 0.5)})
    return trials


def write_demo(root: Path) -> None:
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    optimizer_runs(root)
    for name, sampler in (("regression-random", "random"), ("regression-tpe", "tpe"), ("regression-grid", "grid")):
        add_study(root, name, sampler, sampled(sampler, 24))


# -- the page, and its screenshots ---------------------------------------------------------------------
def optimised(path: Path) -> None:
    """256 colours and zlib's best: a screenshot of flat colours loses nothing visible."""
    from PIL import Image

    with Image.open(path) as image:
        small = image.convert("RGB").quantize(colors=256, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE)
    small.save(path, optimize=True)


def shoot(page_path: Path, out: Path) -> list[Path]:
    from playwright.sync_api import sync_playwright

    shots = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": WIDTH, "height": 900})
            page.goto(page_path.resolve().as_uri())
            page.get_by_role("tab", name="optimizers 6").click()
            view = page.locator("section.view:visible")
            view.locator(".curve-metric[value=mse]").uncheck()  # held-out curves only: a legend of 8, not 16
            for run in ("lr-0.03", "lr-0.3"):
                view.get_by_label(f"tick {run}").check()
            page.wait_for_timeout(800)
            shots.append(out / "report_experiment.png")
            page.screenshot(path=str(shots[-1]), full_page=True)

            page.get_by_role("tab", name="study regression-tpe").click()
            page.wait_for_timeout(1500)
            shots.append(out / "report_study.png")
            page.screenshot(path=str(shots[-1]), full_page=True)

            page.get_by_role("tab", name="studies of regression 3").click()
            page.wait_for_timeout(1000)
            shots.append(out / "report_studies.png")
            page.screenshot(path=str(shots[-1]), full_page=True)
        finally:
            browser.close()
    for shot in shots:
        optimised(shot)
    return shots


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "img", help="where the PNGs go")
    parser.add_argument("--keep", type=Path, default=None, help="write the runs and the page here and keep them")
    args = parser.parse_args(argv)
    if not Path(CHROMIUM).exists():
        raise SystemExit(f"needs Debian's chromium at {CHROMIUM} (apt-get install chromium) and playwright.")
    sys.path.insert(0, str(REPO / "src"))
    from torchclassics.results.report import write_report

    work = args.keep or Path(tempfile.mkdtemp(prefix="report-shots-"))
    try:
        if not (work / "optimizers").exists():
            write_demo(work)
        page = write_report(work, work / "report.html", force=True)
        args.out.mkdir(parents=True, exist_ok=True)
        for shot in shoot(page, args.out):
            print(f"{shot}: {shot.stat().st_size / 1000:.0f} KB")
    finally:
        if args.keep is None:
            shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
