"""`torchclassics report`: one self-contained HTML page, checked as text and in headless Chromium.

The browser test drives Debian's /usr/bin/chromium with Python playwright (no
`playwright install`). Without chromium it is skipped locally, and fails under
CI=true. It keeps a screenshot in tests/artifacts/report.png.
"""
from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path

import pytest
from test_synthesize import final, history_rows, make_runs, write_run

from torchclassics.cli import main
from torchclassics.errors import UserError
from torchclassics.synthesize import collect_runs, collect_studies
from torchclassics.viz.animate import animate
from torchclassics.viz.plots import loss_curves, new_figure, save
from torchclassics.viz.report import loss_svg, write_report

ARTIFACTS = Path(__file__).parent / "artifacts"
INJECTED = '<b id="injected">x</b><script>window.pwned = 1</script>'
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]


def small_figure(path: Path, title: str) -> Path:
    fig = new_figure(3, 2.4)
    ax = fig.add_subplot(1, 1, 1)
    ax.plot([0, 1, 2, 3], [3, 1, 2, 0])
    ax.set_title(title)
    return save(fig, path)


def add_study(root: Path) -> None:
    """A search study as search.py leaves it, with two trial runs that name it."""
    folder = root / "studies" / "lr_study"
    folder.mkdir(parents=True)
    (folder / "best_params.json").write_text(json.dumps({
        "study": "lr_study", "metric": "test_loss", "direction": "minimize", "best_value": 0.123,
        "best_params": {"lr": 0.3}, "best_trial": 1, "n_trials": 2}))
    small_figure(folder / "history.png", "optimization history")
    for trial, lr, loss in ((0, 0.05, 2.0), (1, 0.3, 0.37)):
        rows = history_rows(3, loss)
        write_run(root / "classification" / f"lr_study-trial-{trial}", "classification",
                  {"seed": 0, "hidden": 10, "epochs": 3, "optimizer_args": {}, "lr": lr}, rows, final(rows),
                  extra={"study": "lr_study", "trial": trial})
    # a pruned trial: no summary.json, only search.py's trial.json saying why
    pruned = write_run(root / "classification" / "lr_study-trial-2", "classification",
                       {"seed": 0, "hidden": 10, "epochs": 3, "optimizer_args": {}, "lr": 3.0}, history_rows(1, 9.0))
    (pruned / "trial.json").write_text(json.dumps({"study": "lr_study", "trial": 2, "state": "pruned", "epoch": 1}))


@pytest.fixture(scope="module")
def runs_dir(tmp_path_factory) -> Path:
    import torchclassics

    root = tmp_path_factory.mktemp("runs")
    runs = make_runs(root)
    # figures the engine would have drawn: a loss curve, a still, a GIF (the 'slow' run has none: SVG drawn)
    loss_curves(history_rows(3, 1.0), runs["fast"] / "figures" / "loss.png", "fast")
    small_figure(runs["fast"] / "figures" / "fit.png", "fit")
    animate(range(3), lambda ax, i: ax.plot([0, 1], [0, i]), runs["fast"] / "figures" / "animation.gif", size=(2, 2))
    # one run training several models (one per optimizer) and a parameter with markup in it
    tagged = history_rows(3, 1.0, tag="SGD") + history_rows(3, 0.5, tag="Adam")
    write_run(root / "optimizers" / "compare", "optimizers", {"seed": 0, "note": INJECTED}, tagged,
              {"SGD_test_loss": 0.4, "Adam_test_loss": 0.2})
    write_run(root / "optimizers" / "plain", "optimizers", {"seed": 0}, history_rows(1, 1.0), {"test_loss": 1.0})
    add_study(root)
    torchclassics.run("regression", out=root / "regression" / "real", epochs=5)
    return root


@pytest.fixture(scope="module")
def report(runs_dir) -> Path:
    return write_report(runs_dir, None)


def section_of(html: str, run_name: str) -> str:
    """The <section> of the run named ``run_name`` (its h3 ends with '/ name')."""
    for section in html.split("<section")[1:]:
        if re.search(rf"/ {re.escape(run_name)}<span", section):
            return section
    raise AssertionError(f"no section for {run_name}")


def test_report_is_written_to_the_root_by_default_with_every_run(runs_dir, report):
    assert report == runs_dir / "report.html"
    html = report.read_text()
    runs = collect_runs(runs_dir)
    assert len(runs) == 10  # 4 synthetic + 3 trials + 2 optimizers + 1 real; the 2 damaged ones skipped
    assert html.count('<section class="card run"') == len(runs)
    assert len(re.findall(r"<tr data-experiment=", html)) == len(runs)
    for run in runs:
        assert f"/ {run['run']}<span" in html
    assert 'class="badge unfinished"' in section_of(html, "killed")
    assert 'class="badge pruned"' in section_of(html, "lr_study-trial-2")


def test_page_is_self_contained(report):
    html = report.read_text()
    assert "http:" not in html and "https:" not in html
    links = re.findall(r'(?:src|href)="([^"]*)"', html)
    assert links and all(link.startswith(("data:image/", "#")) for link in links)


def test_every_figure_and_gif_is_embedded(runs_dir, report):
    html = report.read_text()
    figures = [f for run in collect_runs(runs_dir) for f in run["figures"]]
    figures += [f for study in collect_studies(runs_dir) for f in study["figures"]]
    assert len(figures) == 7  # fast: 3, real: 3, study: 1
    assert html.count("<img ") == len(figures)
    assert html.count('src="data:image/gif;base64,') == 2
    real = section_of(html, "real")
    assert {"loss.png", "fit.png", "animation.gif"} <= set(re.findall(r'alt="([^"]+)"', real))


def test_loss_curve_is_drawn_from_metrics_when_there_is_no_loss_png(report):
    html = report.read_text()
    assert '<svg class="loss-curve"' in section_of(html, "slow")
    assert '<svg class="loss-curve"' not in section_of(html, "fast")  # its loss.png is shown instead
    tagged = section_of(html, "compare")
    assert all(label in tagged for label in ("SGD train", "SGD held-out", "Adam train", "Adam held-out"))
    assert loss_svg([]) == ""


def test_text_from_runs_is_escaped(report):
    html = report.read_text()
    assert '<b id="injected">' not in html and "window.pwned" in html
    assert "&lt;b id=&quot;injected&quot;&gt;" in html


def test_study_is_shown_with_history_and_best_values(report):
    html = report.read_text()
    study = html.split('<section class="card study" data-study="lr_study">')[1].split("</section>")[0]
    assert "0.123" in study and "minimize" in study and 'alt="history.png"' in study
    assert study.count("lr_study-trial-") == 3 and "pruned" in study


def test_output_option_and_user_errors(runs_dir, tmp_path, capsys):
    target = tmp_path / "out" / "page.html"
    assert main(["report", str(runs_dir), "-o", str(target)]) == 0
    assert capsys.readouterr().out.strip() == str(target) and target.stat().st_size > 10_000
    with pytest.raises(UserError, match="is a folder"):
        write_report(runs_dir, tmp_path)
    with pytest.raises(UserError, match="no run directories"):
        write_report(tmp_path / "out", None)


# -- in a real browser --------------------------------------------------------------------------
def chromium_path() -> str:
    found = shutil.which("chromium") or ("/usr/bin/chromium" if Path("/usr/bin/chromium").exists() else None)
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        found = None
    if found is None:
        message = "needs Debian's chromium (apt-get install chromium chromium-driver) and `pip install playwright`"
        if os.environ.get("CI"):
            pytest.fail(f"CI is set but the browser test cannot run: it {message}.")
        pytest.skip(message)
    return found


def column_values(page, name: str) -> list[str]:
    return page.evaluate("""name => {
        const table = document.getElementById('runs-table');
        const index = Array.from(table.tHead.rows[0].cells).findIndex(th => th.textContent === name);
        return Array.from(table.tBodies[0].rows).filter(r => !r.hidden).map(r => r.cells[index].textContent);
    }""", name)


def test_headless_chromium_renders_every_run_and_figure(runs_dir, report):
    from playwright.sync_api import sync_playwright

    executable = chromium_path()
    runs = collect_runs(runs_dir)
    problems, requests = [], []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.on("console", lambda msg: problems.append(f"console {msg.type}: {msg.text}")
                    if msg.type in ("error", "warning") else None)
            page.on("pageerror", lambda err: problems.append(f"page error: {err}"))
            page.on("dialog", lambda dialog: problems.append(f"dialog: {dialog.message}"))
            page.on("request", lambda request: requests.append(request.url))
            page.goto(report.resolve().as_uri())
            page.wait_for_function("Array.from(document.images).every(img => img.complete)")

            widths = page.evaluate("Array.from(document.images).map(img => img.naturalWidth)")
            assert len(widths) == 7 and all(w > 0 for w in widths), widths
            assert page.locator("section.run").count() == len(runs)
            for run in runs:
                assert page.locator("section.run h3", has_text=run["run"]).first.is_visible()
            assert page.locator("#injected").count() == 0 and page.evaluate("window.pwned") is None
            ARTIFACTS.mkdir(exist_ok=True)
            page.screenshot(path=str(ARTIFACTS / "report.png"), full_page=True)

            # sorting: a click sorts ascending, a second descending; runs without the value stay last
            header = page.locator("#runs-table th", has_text=re.compile(r"^test_loss$"))
            header.click()
            ascending = column_values(page, "test_loss")
            numbers = [float(v) for v in ascending if v]
            assert numbers == sorted(numbers) and ascending[len(numbers):] == [""] * (len(ascending) - len(numbers))
            header.click()
            descending = [float(v) for v in column_values(page, "test_loss") if v]
            assert descending == sorted(numbers, reverse=True)

            # filtering by experiment hides the other runs' rows and sections
            page.select_option("#experiment-filter", "optimizers")
            assert sorted(column_values(page, "run")) == ["compare", "plain"]
            assert page.locator("section.run:visible").count() == 2
            assert page.locator("#shown-count").text_content() == f"2 of {len(runs)} runs shown"
            page.select_option("#experiment-filter", "")
            page.fill("#run-search", "killed")
            assert column_values(page, "run") == ["killed"]
            page.fill("#run-search", "")
            assert page.locator("section.run:visible").count() == len(runs)
        finally:
            browser.close()
    assert problems == []
    assert all(url.startswith(("file:", "data:")) for url in requests), requests
    assert (ARTIFACTS / "report.png").stat().st_size > 10_000
