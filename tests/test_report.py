"""`torchclassics report`: one self-contained HTML page, checked as text and in headless Chromium.

The browser test drives Debian's /usr/bin/chromium with Python playwright (no
`playwright install`). Without chromium it is skipped locally, and fails under
CI=true. It keeps screenshots in tests/artifacts/ (git-ignored).

The page's Content-Security-Policy forbids eval, so the browser test waits with
its own polling (page.evaluate) instead of playwright's wait_for_function.
"""
from __future__ import annotations

import base64
import hashlib
import json
import math
import os
import re
import shutil
import time
from html import unescape
from pathlib import Path

import pytest
from test_synthesize import files_below, final, history_rows, make_runs, write_run

from torchclassics.cli import main
from torchclassics.errors import UserError
from torchclassics.results.report import plotly_js, write_report
from torchclassics.results.runs import collect_runs
from torchclassics.viz.animate import animate
from torchclassics.viz.plots import loss_curves, new_figure, save

ARTIFACTS = Path(__file__).parent / "artifacts"
INJECTED = '<b id="injected">x</b></script><script>window.pwned = 1</script>'
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]
STUDY_PARAMS = (0.05, 0.3, 3.0, 0.1)  # lr of trials 0..3; trial 2 is pruned


def small_figure(path: Path, title: str) -> Path:
    fig = new_figure(3, 2.4)
    ax = fig.add_subplot(1, 1, 1)
    ax.plot([0, 1, 2, 3], [3, 1, 2, 0])
    ax.set_title(title)
    return save(fig, path)


def add_study(root: Path) -> None:
    """A search study as search.py leaves it: an Optuna journal, best_params.json, and trial runs."""
    import optuna
    from optuna.distributions import FloatDistribution
    from optuna.storages.journal import JournalFileBackend, JournalStorage
    from optuna.trial import TrialState, create_trial

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    folder = root / "studies" / "lr_study"
    folder.mkdir(parents=True)
    storage = JournalStorage(JournalFileBackend(str(folder / "journal.log")))
    study = optuna.create_study(study_name="lr_study", storage=storage, direction="maximize")
    space = {"lr": FloatDistribution(0.01, 5.0, log=True)}
    for trial, lr in enumerate(STUDY_PARAMS):
        pruned = trial == 2
        rows = history_rows(1 if pruned else 3, 0.2 + abs(math.log10(lr) + 0.5))
        study.add_trial(create_trial(params={"lr": lr}, distributions=space,
                                     value=None if pruned else rows[-1]["test_accuracy"],
                                     intermediate_values={r["epoch"]: r["test_accuracy"] for r in rows},
                                     state=TrialState.PRUNED if pruned else TrialState.COMPLETE))
        path = write_run(root / "classification" / f"lr_study-trial-{trial}", "classification",
                         {"seed": 0, "hidden": 10, "epochs": 3, "optimizer_args": {}, "lr": lr}, rows,
                         None if pruned else final(rows),
                         {"metric": "test_accuracy", "value": rows[-1]["test_accuracy"], "epoch": 3},
                         extra={"study": "lr_study", "trial": trial})
        if pruned:
            (path / "trial.json").write_text(json.dumps({"study": "lr_study", "trial": trial, "state": "pruned"}))
    (folder / "best_params.json").write_text(json.dumps({
        "study": "lr_study", "metric": "test_accuracy", "direction": "maximize", "best_value": study.best_value,
        "best_params": study.best_params, "best_trial": study.best_trial.number, "n_trials": 4}))


@pytest.fixture(scope="module")
def runs_dir(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("runs")
    outside = tmp_path_factory.mktemp("outside")
    runs = make_runs(root)
    # figures the engine would have drawn: a loss curve, a still, a GIF
    loss_curves(history_rows(3, 1.0), runs["fast"] / "figures" / "loss.png", "fast")
    small_figure(runs["fast"] / "figures" / "fit.png", "fit")
    animate(range(3), lambda ax, i: ax.plot([0, 1], [0, i]), runs["fast"] / "figures" / "animation.gif", size=(2, 2))
    # someone else's run folder: links out of it (to a text file, to a real image) and a fake image
    small_figure(outside / "private.png", "private")
    os.symlink("/etc/hostname", runs["slow"] / "figures" / "hostname.png")
    os.symlink(outside / "private.png", runs["slow"] / "figures" / "private.png")
    (runs["slow"] / "figures" / "fake.png").write_text("not an image")
    # one run training several models (one per optimizer) and a parameter with markup in it
    tagged = history_rows(3, 1.0, tag="SGD") + history_rows(3, 0.5, tag="Adam")
    write_run(root / "optimizers" / "compare", "optimizers", {"seed": 0, "note": INJECTED}, tagged,
              {"SGD_test_loss": 0.4, "Adam_test_loss": 0.2})
    diverged = history_rows(2, 1.0)
    diverged[-1].update(loss=float("nan"), test_loss=float("inf"))
    write_run(root / "optimizers" / "diverged", "optimizers", {"seed": 0, "note": "lr too high"}, diverged,
              {"SGD_test_loss": float("nan"), "Adam_test_loss": 0.3})
    add_study(root)
    return root


@pytest.fixture(scope="module")
def report(runs_dir) -> Path:
    return write_report(runs_dir, None)


@pytest.fixture(scope="module")
def embedded(runs_dir, tmp_path_factory) -> Path:
    """The same runs with every figure embedded (--embed-all)."""
    return write_report(runs_dir, tmp_path_factory.mktemp("embedded") / "all.html", embed_all=True)


ROW = r'<tr class="run-row(?: best-run)?" id="run-(r\d+)" data-key="r\d+" data-status="(\w+)"(?: title="[^"]*")?>'


def row_key(html: str, name: str) -> str:
    """The key of the run named ``name`` (its tick box's label)."""
    return re.search(ROW + rf'<td class="pick"><input type="checkbox" aria-label="tick {name}">', html).group(1)


def detail(html: str, name: str) -> str:
    key = row_key(html, name)
    return html.split(f'<template id="detail-{key}">')[1].split("</template>")[0]


def view_of(html: str, experiment: str) -> str:
    return html.split(f'data-experiment="{experiment}" hidden>')[1].split("</section>")[0]


def headers(view: str) -> list[str]:
    head = view.split('<table class="runs">')[1].split("</thead>")[0]
    names = re.findall(r'<th scope="col" class="\w+" title="click to sort">(.*?)</th>', head)
    return [name.replace("<wbr>", "") for name in names]  # names may wrap after _ and .


def page_data(html: str) -> dict:
    blob = html.split('<script type="application/json" id="report-data">')[1].split("</script>")[0]
    return json.loads(blob, parse_constant=lambda name: pytest.fail(f"{name} in the page's JSON"))


def test_report_is_written_to_the_root_with_a_view_per_experiment(runs_dir, report):
    assert report == runs_dir / "report.html"
    html = report.read_text()
    runs = collect_runs(runs_dir)
    assert len(runs) == 17  # make_runs' 11 + 4 trials + 2 optimizers; the 2 damaged ones skipped
    assert html.count('<tr class="run-row') == len(runs)  # every run on the page, whatever page shows it
    for experiment in ("autoencoder", "classification", "dogs_vs_cats", "optimizers", "regression"):
        assert f'data-experiment="{experiment}" hidden>' in html
    assert re.search(r"17 runs of 5 experiments\s*<span class=\"statuses\">"
                     r"<span class=\"badge finished\">14 finished</span><span class=\"badge pruned\">2 pruned</span>"
                     r"<span class=\"badge failed zero\">0 failed</span><span class=\"badge unfinished\">1 unfinished",
                     html)


def test_overview_shows_each_experiments_held_out_metrics(report):
    html = report.read_text()
    overview = html.split('<section class="view" id="overview"')[1].split("</section>")[0]
    row = overview.split('<tr data-experiment="classification">')[1].split("</tr>")[0]
    assert ">lr_study-trial-1<" in row  # test_accuracy 0.978, the best (summary objective: max)
    assert '<span class="name">test_accuracy</span> <span class="value">0.9777</span>' in row
    assert '<span class="name">val_accuracy</span>' in overview and '<span class="name">test_mse</span>' in overview
    assert "test_accuracy (max)" in row


def test_each_view_has_metrics_first_then_only_the_parameters_that_vary(report):
    html = report.read_text()
    assert headers(view_of(html, "classification")) == [
        "run", "test_accuracy", "test_loss", "best_test_accuracy", "best_epoch", "train_s", "status", "lr"]
    assert headers(view_of(html, "regression")) == ["run", "test_mse", "best_test_mse", "best_epoch", "train_s",
                                                    "status", "hidden"]
    rows = re.findall(ROW + r'.*?</button>([^<]+)</td>', view_of(html, "classification"))
    # the best run (test_accuracy 0.978) first and marked, then the others in natural order
    assert [name for _, _, name in rows] == ["lr_study-trial-1", "fast", "killed", "lr-trial-2", "lr-trial-3",
                                             "lr-trial-10", "lr_study-trial-0", "lr_study-trial-2",
                                             "lr_study-trial-3", "slow"]
    assert view_of(html, "classification").count('class="run-row best-run"') == 1
    assert '<tr class="run-row best-run" id="run-' + rows[0][0] in html
    assert dict((name, status) for _, status, name in rows)["lr_study-trial-2"] == "pruned"


def test_chart_data_holds_every_logged_metric_per_model_and_no_nan(report):
    data = page_data(report.read_text())
    optimizers = next(e for e in data["experiments"] if e["name"] == "optimizers")
    assert optimizers["scatter_y"][:2] == ["Adam_test_loss", "SGD_test_loss"]
    compare = next(run for run in optimizers["runs"].values() if run["label"] == "compare")
    assert {(c["tag"], c["metric"]) for c in compare["curves"]} == {
        (tag, metric) for tag in ("SGD", "Adam") for metric in ("loss", "test_loss", "accuracy", "test_accuracy")}
    diverged = next(run for run in optimizers["runs"].values() if run["label"] == "diverged")
    assert next(c for c in diverged["curves"] if c["metric"] == "loss" and c["tag"] == "")["y"][-1] is None
    assert compare["params"]["note"] == INJECTED  # data is kept as it is; the page shows it as text


def test_text_from_runs_is_escaped_and_json_is_safe_in_script(report):
    html = report.read_text()
    assert '<b id="injected">' not in html and "window.pwned" in html
    assert "&lt;b id=&#34;injected&#34;&gt;" in html
    assert html.count("</script>") == 3  # the JSON, Plotly (text/plain) and the page's script: none from a run


def test_only_the_pages_own_scripts_may_run(embedded):
    html = embedded.read_text()
    csp = unescape(re.search(r'http-equiv="Content-Security-Policy" content="([^"]+)"', html).group(1))
    assert "default-src 'none'" in csp and "img-src data:;" in csp and "unsafe-eval" not in csp
    inline = re.findall(r"<script(?: type=\"text/plain\" id=\"plotly-js\")?>(.*?)</script>", html, re.S)
    assert len(inline) == 2
    for script in inline:
        digest = base64.b64encode(hashlib.sha256(script.encode()).digest()).decode()
        assert f"'sha256-{digest}'" in csp
    markup = re.sub(r"<script.*?</script>", "", html, flags=re.S)  # Plotly's code holds addresses as text
    links = re.findall(r'(?:src|href)="([^"]*)"', markup)
    assert links and all(link.startswith(("data:image/", "#")) for link in links)


def test_plotlys_basic_bundle_unless_a_figure_needs_the_full_one(report):
    assert "plotly.js (basic - minified) v" in report.read_text()
    contour = [{"plots": [{"figure": {"data": [{"type": "scatter"}, {"type": "contour"}]}}]}]
    assert "plotly.js (basic" not in plotly_js(contour) and len(plotly_js(contour)) > 3 * len(plotly_js([]))


def test_figures_are_embedded_only_when_verified_images_inside_their_run(runs_dir, embedded, capfd):
    capfd.readouterr()
    write_report(runs_dir, runs_dir / "again.html", embed_all=True)
    err = capfd.readouterr().err
    html = embedded.read_text()
    slow, fast = detail(html, "slow"), detail(html, "fast")
    assert {"loss.png", "fit.png", "animation.gif"} == set(re.findall(r'alt="([^"]+)"', fast))
    assert 'src="data:image/gif;base64,' in fast
    assert "no figures" in slow  # the link to /etc/hostname, the image outside and the fake one: none shown
    outside_image = Path(os.readlink(runs_dir / "classification" / "slow" / "figures" / "private.png"))
    private = base64.b64encode(outside_image.read_bytes()[:600]).decode()[:200]
    assert private not in html
    assert re.search(r"slow/figures/hostname.png is a symbolic link out of .*slow \(to /etc/hostname\); skipped it",
                     err)
    assert re.search(r"slow/figures/private.png is a symbolic link out of", err)
    assert re.search(r"slow/figures/fake.png: not an image", err)


def test_link_figures_links_the_images_beside_the_page(runs_dir, embedded, tmp_path):
    page = write_report(runs_dir, tmp_path / "elsewhere" / "page.html", link_figures=True)
    html = page.read_text()
    sources = re.findall(r'<img src="([^"]+)"', html)
    assert len(sources) == 3 and 'src="data:image' not in re.sub(r"<script.*?</script>", "", html, flags=re.S)
    for source in sources:
        assert (page.parent / source).resolve().is_file()
    assert "img-src data: &#39;self&#39; file:;" in html
    assert page.stat().st_size < embedded.stat().st_size


def test_study_view_has_optunas_plots_with_pruned_trials(report):
    html = report.read_text()
    view = html.split('<section class="view study" id="study-0"')[1].split("</section>")[0]
    assert [title for title in re.findall(r'<div class="panel"><h3>([^<]+)</h3>', view)] == [
        "Optimisation history", "Parameter importances", "Parallel coordinates", "Slices", "Intermediate values"]
    assert '<span class="badge finished">3 complete</span><span class="badge pruned">1 pruned</span>' in view
    assert view.count('<a href="#run-r') == 4  # each trial links to its run
    (study,) = page_data(html)["studies"]
    history = study["plots"][0]["figure"]
    pruned = next(trace for trace in history["data"] if trace["name"].startswith("Pruned"))
    assert pruned["x"] == [2]
    assert len(study["plots"]) == 5


def test_readers_write_nothing_into_runs_or_studies(runs_dir, tmp_path):
    before = files_below(runs_dir)
    write_report(runs_dir, tmp_path / "page.html")
    assert files_below(runs_dir) == before


def test_output_option_and_user_errors(runs_dir, tmp_path, capsys):
    target = tmp_path / "out" / "page.html"
    assert main(["report", str(runs_dir), "-o", str(target)]) == 0
    assert capsys.readouterr().out.strip() == str(target) and target.stat().st_size > 10_000
    assert not [p for p in target.parent.iterdir() if p.name != "page.html"]  # no temporary file left
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


def wait_until(page, script: str, timeout: float = 20.0):
    """Poll ``script`` (evaluated over the devtools protocol, which the page's CSP allows) until truthy."""
    deadline = time.monotonic() + timeout
    while True:
        value = page.evaluate(script)
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for: {script}")
        time.sleep(0.05)


def visible_column(page, view: str, name: str) -> list[str]:
    return page.evaluate("""([view, name]) => {
        const table = document.querySelector('#' + view + ' table.runs');
        const index = Array.from(table.tHead.rows[0].cells).findIndex(th => th.textContent === name);
        return Array.from(table.tBodies[0].rows).filter(r => r.matches('.run-row') && !r.hidden)
            .map(r => r.cells[index].textContent.trim());
    }""", [view, name])


def open_page(browser, page_path: Path, problems: list, requests: list):
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    page.on("console", lambda msg: problems.append(f"console {msg.type}: {msg.text}")
            if msg.type in ("error", "warning") else None)
    page.on("pageerror", lambda err: problems.append(f"page error: {err}"))
    page.on("dialog", lambda dialog: problems.append(f"dialog: {dialog.message}"))
    page.on("request", lambda request: requests.append(request.url))
    page.goto(page_path.resolve().as_uri())
    wait_until(page, "performance.getEntriesByName('report-ready').length")
    return page


@pytest.mark.external
def test_headless_chromium_compares_runs_and_explains_the_study(runs_dir, report, tmp_path):
    from playwright.sync_api import sync_playwright

    executable = chromium_path()
    linked = write_report(runs_dir, tmp_path / "linked.html", link_figures=True)
    problems, requests = [], []
    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        try:
            page = open_page(browser, report, problems, requests)
            assert page.evaluate("document.compatMode") == "CSS1Compat"  # the stamp line keeps the doctype first
            # every run is on the page (a row in its experiment's table, whichever page of rows shows it)
            assert page.evaluate("document.querySelectorAll('tr.run-row').length") == len(collect_runs(runs_dir))
            # the first screen: every experiment with its best run's held-out metrics
            for experiment, metric in (("classification", "test_accuracy"), ("dogs_vs_cats", "val_accuracy"),
                                       ("regression", "test_mse"), ("autoencoder", "test_mse")):
                cell = page.locator(f'#overview tr[data-experiment="{experiment}"] td.held-out')
                assert metric in cell.text_content() and cell.is_visible()
                assert cell.bounding_box()["y"] + cell.bounding_box()["height"] < 900
            assert page.locator("#injected").count() == 0 and page.evaluate("window.pwned") is None
            page.screenshot(path=str(ARTIFACTS / "report-overview.png"))

            # one experiment: its own columns, natural order, sorting
            page.get_by_role("tab", name=re.compile(r"^classification")).click()
            view = page.locator("section.view:visible")
            view_id = view.get_attribute("id")
            names = page.evaluate(f"Array.from(document.querySelectorAll('#{view_id} table.runs th'))"
                                  ".map(th => th.textContent)")
            assert "lr" in names and not {"seed", "hidden", "epochs", "latent", "image_size", "note"} & set(names)
            names = visible_column(page, view_id, "run")
            assert names[0] == "lr_study-trial-1" and names[3:6] == ["lr-trial-2", "lr-trial-3", "lr-trial-10"]
            assert page.evaluate(f"getComputedStyle(document.querySelector('#{view_id} tr.best-run td.run'), "
                                 "'::after').content") == '"best"'  # the best run marked, first
            view.locator("th", has_text=re.compile(r"^test_accuracy$")).click()
            ascending = [float(v) for v in visible_column(page, view_id, "test_accuracy")]
            assert ascending == sorted(ascending)

            # tick two runs: both runs' curves overlaid in one chart, log scale on request, their diff
            for name in ("fast", "slow"):
                view.get_by_label(f"tick {name}").check()
            traces = page.evaluate(f"document.querySelector('#{view_id} .chart.curves').data.map(t => t.name)")
            assert set(traces) == {f"{run} · {metric}" for run in ("fast", "slow")
                                   for metric in ("test_accuracy", "accuracy")}
            dashes = page.evaluate(f"document.querySelector('#{view_id} .chart.curves').data"
                                   ".map(t => [t.name, t.line.dash])")
            assert {name.split(" · ")[1]: dash for name, dash in dashes} == {"test_accuracy": "solid",
                                                                             "accuracy": "dot"}
            view.locator(".curve-metric[value=test_loss]").check()
            view.locator(".log-y").check()
            assert page.evaluate(f"document.querySelector('#{view_id} .chart.curves').layout.yaxis.type") == "log"
            assert len(page.evaluate(f"document.querySelector('#{view_id} .chart.curves').data")) == 6
            assert view.locator("table.param-diff tr").nth(1).text_content() == "lr0.50.01"
            scatter = page.evaluate(f"document.querySelector('#{view_id} .chart.scatter').data.map(t => t.x.length)")
            assert scatter == [10, 2]  # every run (unfinished ones at their last epoch), and the ticked two ringed
            page.screenshot(path=str(ARTIFACTS / "report-compare.png"), full_page=True)

            # filters: text and status
            view.locator(".filter").fill("lr_study")
            assert len(visible_column(page, view_id, "run")) == 4
            assert view.locator(".shown").text_content() == "4 of 10 runs shown"
            view.locator(".status-filter").select_option("pruned")
            assert visible_column(page, view_id, "run") == ["lr_study-trial-2"]
            view.locator(".filter").fill("")
            view.locator(".status-filter").select_option("")

            # a run's figures load when its row is opened
            view.locator("tr.run-row", has_text="fast").locator("button.open").click()
            wait_until(page, f"Array.from(document.querySelectorAll('#{view_id} tr.detail img'))"
                             ".every(img => img.complete && img.naturalWidth > 0)")
            assert view.locator("tr.detail img").count() == 3

            # the study: Optuna's plots drawn, the pruned trial in the history, a trial links to its run
            page.get_by_role("tab", name="study lr_study").click()
            # plotly.js loads after the first paint: on a busy machine the plots come a moment after the click
            wait_until(page, "Array.from(document.querySelectorAll('.study-plot')).every(d => (d.data || []).length)")
            drawn = page.evaluate("Array.from(document.querySelectorAll('.study-plot'))"
                                  ".map(d => (d.data || []).length)")
            assert len(drawn) == 5 and all(n > 0 for n in drawn), drawn
            assert any(name.startswith("Pruned") for name in page.evaluate(
                "document.querySelector('.study-plot').data.map(t => t.name || '')"))
            page.screenshot(path=str(ARTIFACTS / "report-study.png"), full_page=True)
            page.locator("section.study table.trials a").nth(2).click()
            wait_until(page, f"!document.getElementById('{view_id}').hidden")
            assert page.locator(f"#{view_id} tr.detail:visible").count() >= 1
            page.close()

            # --link-figures: the same figures, read from the run folders beside the page
            page = open_page(browser, linked, problems, requests)
            page.get_by_role("tab", name=re.compile(r"^classification")).click()
            page.locator("section.view:visible tr.run-row", has_text="fast").locator("button.open").click()
            wait_until(page, "Array.from(document.querySelectorAll('tr.detail img'))"
                             ".every(img => img.complete && img.naturalWidth > 0)")
            assert page.locator("tr.detail img").count() == 3
            page.screenshot(path=str(ARTIFACTS / "report-linked.png"))
        finally:
            browser.close()
    assert problems == []
    assert all(url.startswith(("file:", "data:")) for url in requests), requests
    assert (ARTIFACTS / "report-compare.png").stat().st_size > 10_000


# -- figures of the runs that matter, studies side by side, numbers ----------------------------------------------
def regression_runs(root: Path, count: int, figure: bytes | None = None) -> list[str]:
    """``count`` finished regression runs r0, r1, ... (r0 the best: the lowest test_mse), each with ``figure``."""
    names = []
    for i in range(count):
        rows = history_rows(3, 0.1 + 0.01 * i, accuracy=False, loss="mse")
        path = write_run(root / "regression" / f"r{i}", "regression", {"seed": 0, "hidden": 8 + i}, rows, final(rows),
                         {"metric": "test_mse", "value": rows[-1]["test_mse"], "epoch": 3},
                         extra={"objective": {"metric": "test_mse", "mode": "min"}})
        if figure is not None:
            (path / "figures" / "fit.png").write_bytes(figure)
        names.append(f"r{i}")
    return names


@pytest.fixture(scope="module")
def figure_bytes(tmp_path_factory) -> bytes:
    return small_figure(tmp_path_factory.mktemp("figure") / "fit.png", "fit").read_bytes()


def test_by_default_only_the_best_and_named_runs_figures_are_embedded(tmp_path, figure_bytes):
    regression_runs(tmp_path / "runs", 6, figure_bytes)
    default = write_report(tmp_path / "runs", tmp_path / "default.html").read_text()
    named = write_report(tmp_path / "runs", tmp_path / "named.html", figures=["r3", "regression/r4"]).read_text()
    everything = write_report(tmp_path / "runs", tmp_path / "all.html", embed_all=True).read_text()
    encoded = len(base64.b64encode(figure_bytes))

    def embedded(html: str) -> list[str]:
        return sorted(name for name in (f"r{i}" for i in range(6)) if 'src="data:image/png' in detail(html, name))

    assert embedded(default) == ["r0"] and embedded(named) == ["r0", "r3", "r4"] and len(embedded(everything)) == 6
    assert re.search(r'<img src="runs/regression/r1/figures/fit.png"', detail(default, "r1"))  # linked, relative
    assert "img-src data: &#39;self&#39; file:;" in default and "img-src data:;" in everything
    # five figures' base64 fewer than --embed-all on the same runs (a linked figure's address and note instead);
    # three fewer with two runs named
    assert abs(len(everything) - len(default) - 5 * encoded) < 2000
    assert abs(len(everything) - len(named) - 3 * encoded) < 1200


def test_figures_option_names_runs_and_a_wrong_name_is_one_line(tmp_path, figure_bytes, capsys):
    regression_runs(tmp_path / "runs", 3, figure_bytes)
    target = tmp_path / "page.html"
    assert main(["report", str(tmp_path / "runs"), "-o", str(target), "--figures", "r2", "r1"]) == 0
    html = target.read_text()
    assert all('src="data:image/png' in detail(html, name) for name in ("r0", "r1", "r2"))
    capsys.readouterr()
    assert main(["report", str(tmp_path / "runs"), "-o", str(target), "--figures", "r9"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("torchclassics: error: --figures r9: no run of that name below") and err.count("\n") == 1
    with pytest.raises(SystemExit) as refused:  # argparse: the two options exclude each other
        main(["report", str(tmp_path / "runs"), "--embed-all", "--link-figures"])
    assert refused.value.code == 2


def add_sampler_study(root: Path, name: str, sampler: str, values: list[float]) -> None:
    """A finished study of regression (as search leaves it: experiment, metric and sampler remembered); its
    trial 0 the baseline (the experiment's defaults)."""
    import optuna
    from optuna.distributions import FloatDistribution, IntDistribution
    from optuna.storages.journal import JournalFileBackend, JournalStorage
    from optuna.trial import create_trial

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    folder = root / "studies" / name
    folder.mkdir(parents=True)
    study = optuna.create_study(study_name=name, direction="minimize",
                                storage=JournalStorage(JournalFileBackend(str(folder / "journal.log"))))
    for key, value in {"experiment": "regression", "metric": "test_mse", "sampler": sampler}.items():
        study.set_user_attr(key, value)
    space = {"lr": FloatDistribution(1e-3, 1.0, log=True), "hidden": IntDistribution(4, 64)}
    for number, value in enumerate(values):
        study.add_trial(create_trial(params={"lr": 10 ** (-3 + 3 * ((number * 0.37) % 1)), "hidden": 4 + 7 * number},
                                     distributions=space, value=value, user_attrs={"baseline": number == 0}))
    (folder / "best_params.json").write_text(json.dumps({
        "experiment": "regression", "study": name, "metric": "test_mse", "direction": "minimize",
        "sampler": sampler, "best_value": study.best_value, "best_params": study.best_params,
        "best_trial": study.best_trial.number, "n_trials": len(values)}))


@pytest.fixture(scope="module")
def two_studies(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("studies")
    regression_runs(root, 2)
    add_sampler_study(root, "by-tpe", "tpe", [0.5, 0.3, 0.12, 0.1, 0.2, 0.104])
    add_sampler_study(root, "by-random", "random", [0.5, 0.4, 0.45, 0.2, 0.13, 0.3])
    return write_report(root, None)


@pytest.mark.integration
def test_studies_of_one_experiment_side_by_side(two_studies):
    html = two_studies.read_text()
    view = html.split('<section class="view compare" id="compare-0"')[1].split("</section>")[0]
    assert "studies of regression side by side" in view and "best of all 0.1" in view
    rows = [re.findall(r"<td[^>]*>([^<]*)</td>", row) for row in re.findall(r"<tr><td>.*?</tr>", view)]
    # study, sampler, trials, complete, best, baseline, trials to come within 5 % of 0.1 (0.105 or less)
    assert rows == [["by-random", "random", "6", "6", "0.13", "0.5", "not yet"],
                    ["by-tpe", "tpe", "6", "6", "0.1", "0.5", "4"]]
    (compare,) = [s for s in page_data(html)["studies"] if s["view"] == "compare-0"]
    traces = compare["plots"][0]["figure"]["data"]
    assert [t["name"] for t in traces] == ["by-random", "by-tpe"]  # one trace per study
    assert traces[1]["y"] == [0.5, 0.3, 0.12, 0.1, 0.1, 0.1]  # its best so far after each trial
    assert '<a role="tab" href="#compare-0" data-view="compare-0">studies of regression' in html
    assert html.count('<span class="badge baseline">baseline</span>') == 2  # trial 0 of each study


@pytest.mark.integration
def test_each_study_lists_its_parameter_importances(two_studies):
    html = two_studies.read_text()
    for index in (0, 1):
        view = html.split(f'<section class="view study" id="study-{index}"')[1].split("</section>")[0]
        shares = dict(re.findall(r"<tr><td>(\w+)</td><td>([\d.e-]+)</td></tr>",
                                 view.split('<table class="kv importances">')[1].split("</table>")[0]))
        assert set(shares) == {"lr", "hidden"} and sum(map(float, shares.values())) == pytest.approx(1, abs=0.002)
        titles = re.findall(r'<div class="panel"><h3>([^<]+)</h3>', view)
        assert {"Parameter importances", "Parallel coordinates", "Slices"} <= set(titles)


def test_trial_parameters_in_a_study_view_show_four_significant_digits(report):
    view = report.read_text().split('<section class="view study" id="study-0"')[1].split("</section>")[0]
    assert '{&#34;lr&#34;:0.05}' in view or "{&#34;lr&#34;:0.05}" in view
    assert not re.search(r"\d\.\d{6,}", view.split('<table class="trials">')[1])


@pytest.mark.external
def test_headless_chromium_pages_thousands_of_rows_and_colours_each_model(report, tmp_path):
    from playwright.sync_api import sync_playwright

    executable = chromium_path()
    names = regression_runs(tmp_path / "runs", 230)
    many = write_report(tmp_path / "runs", None)
    problems, requests = [], []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        try:
            page = open_page(browser, many, problems, requests)
            page.get_by_role("tab", name=re.compile(r"^regression")).click()
            view = page.locator("section.view:visible")
            view_id = view.get_attribute("id")
            # the table flows in the page (no scroll box), 100 rows laid out at a time, every run on some page
            box = f"document.querySelector('#{view_id} .runs-box')"
            assert page.evaluate(f"getComputedStyle({box}).maxHeight") == "none"
            seen = []
            for _ in range(3):
                shown = visible_column(page, view_id, "run")
                assert len(shown) <= 100
                seen += shown
                if view.locator(".next").is_enabled():
                    view.locator(".next").click()
            assert sorted(seen) == sorted(names) and seen[0] == "r0"  # the best first
            assert view.locator(".page-info").text_content() == "rows 201–230 of 230"
            # a filter pages among the rows it keeps; a link to a run on another page shows that page
            view.locator(".filter").fill("r2")
            assert view.locator(".shown").text_content() == "41 of 230 runs shown"
            assert view.locator(".pager").is_hidden()
            key = page.evaluate(f"document.querySelector('#{view_id} input[aria-label=\"tick r150\"]')"
                                ".closest('tr').dataset.key")
            page.evaluate(f"location.hash = '#run-{key}'")
            wait_until(page, f"!document.getElementById('run-{key}').hidden")
            assert "r150" in visible_column(page, view_id, "run")
            assert view.locator(f"#run-{key} + tr.detail").is_visible()
            page.close()

            # one run training a model per optimizer: each model's curves in its own colour; a diff never clipped
            page = open_page(browser, report, problems, requests)
            page.get_by_role("tab", name=re.compile(r"^optimizers")).click()
            view = page.locator("section.view:visible")
            view_id = view.get_attribute("id")
            view.get_by_label("tick compare").check()
            view.get_by_label("tick diverged").check()
            colours = page.evaluate(f"document.querySelector('#{view_id} .chart.curves').data"
                                    ".map(t => [t.name.split(' · ')[0], t.line.color])")
            by_series = {}
            for series, colour in colours:
                by_series.setdefault(series, set()).add(colour)
            assert set(by_series) == {"compare SGD", "compare Adam", "diverged"}
            assert all(len(c) == 1 for c in by_series.values()) and len(set.union(*by_series.values())) == 3
            diff = view.locator(".diff")
            assert page.evaluate(f"document.querySelector('#{view_id} .diff').getBoundingClientRect().right"
                                 " <= window.innerWidth")
            assert "note" in diff.text_content()
        finally:
            browser.close()
    assert problems == []
    assert all(url.startswith(("file:", "data:")) for url in requests), requests
