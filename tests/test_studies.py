"""The one study-figure pipeline (results/studies.py): the same plots and the same data as PNG files
(search) and as Plotly JSON (the report), read from a journal that is never written."""
from __future__ import annotations

import math

import optuna
import pytest
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution
from optuna.trial import TrialState, create_trial

from torchclassics.results import studies
from torchclassics.search import open_storage

PNG = b"\x89PNG\r\n\x1a\n"
WIDE = {"learning_rate": FloatDistribution(1e-6, 1.0, log=True), "hidden": IntDistribution(4, 4096, log=True),
        "dropout": FloatDistribution(0.0, 0.9), "batch_size": CategoricalDistribution([16, 32, 64, 128, 256, 512]),
        "momentum": FloatDistribution(0.8, 0.99999)}


def journal_study(path, name="s", trials=6, space=None, pruned=(2,)):
    """A study in a journal as search leaves it: complete trials, pruned ones with their reports, its metric."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    space = space or {"lr": FloatDistribution(0.01, 0.5, log=True), "hidden": IntDistribution(4, 64)}
    study = optuna.create_study(study_name=name, storage=open_storage(str(path)))
    study.set_user_attr("metric", "test_mse")
    for n in range(trials):
        params = {key: (dist.choices[n % len(dist.choices)] if isinstance(dist, CategoricalDistribution)
                        else type(dist.low)(dist.low + (dist.high - dist.low) * (n + 1) / (trials + 1)))
                  for key, dist in space.items()}
        reports = {epoch: 10.0 ** (-n) * (3 - epoch) for epoch in range(3)}
        state = TrialState.PRUNED if n in pruned else TrialState.COMPLETE
        study.add_trial(create_trial(params=params, distributions=space, intermediate_values=reports, state=state,
                                     value=None if n in pruned else reports[2] + 10.0 ** (-n)))
    return study


@pytest.mark.integration
def test_one_list_gives_the_report_its_plots_and_search_its_pngs(tmp_path):
    study = journal_study(tmp_path / "journal.log")
    plots = studies.plotly_figures(study)
    assert [p["title"] for p in plots] == ["Optimisation history", "Parameter importances", "Parallel coordinates",
                                           "Slices", "Intermediate values"]
    assert all("figure" in p and "template" not in p["figure"]["layout"] for p in plots)
    written = studies.write_pngs(study, tmp_path / "pngs")
    assert sorted(written) == ["contour", "history", "importances", "slice"]
    assert all(path.read_bytes()[:8] == PNG for path in written.values())


def test_both_renderings_show_pruned_trials_at_their_last_value_on_a_log_axis(tmp_path):
    study = journal_study(tmp_path / "journal.log")  # values from 2 down to 2e-5: a log axis
    history = studies.plotly_figures(study)[0]["figure"]
    pruned = next(trace for trace in history["data"] if trace["name"] == studies.PRUNED_NAME)
    assert (pruned["x"], pruned["y"]) == ([2], [pytest.approx(0.01)])
    assert history["layout"]["yaxis"]["type"] == "log"
    figure = studies.png_figure(study, studies.STUDY_PLOTS[0])
    try:
        axes = figure.axes[0]
        assert axes.get_yscale() == "log" and axes.get_ylabel() == "test_mse"
        crosses = [c for c in axes.collections if c.get_label() == studies.PRUNED_NAME]
        assert [tuple(xy) for xy in crosses[0].get_offsets()] == [(2, pytest.approx(0.01))]
    finally:
        studies._close(figure)


def test_importances_are_seeded_so_every_rendering_gives_the_same_shares(tmp_path):
    study = journal_study(tmp_path / "journal.log")
    first = studies.param_importances(study)
    assert set(first) == {"lr", "hidden"} and math.isclose(sum(first.values()), 1.0)
    assert studies.param_importances(study) == first


def test_a_study_too_small_gets_notes_saying_what_it_lacks(tmp_path):
    study = journal_study(tmp_path / "journal.log", trials=1, pruned=())
    assert studies.plot_notes(study, "png") == {"importances": "need 3 complete trials; this study has 1 so far",
                                                "contour": "need 2 complete trials; this study has 1 so far"}
    shown = {p["title"]: p.get("note") for p in studies.plotly_figures(study)}
    assert shown["Parameter importances"] == "need 3 complete trials; this study has 1 so far"
    assert shown["Optimisation history"] is None  # drawn
    one_parameter = journal_study(tmp_path / "one.log", space={"lr": FloatDistribution(0.01, 0.5)})
    assert "contour" not in studies.write_pngs(one_parameter, tmp_path / "one")  # no pair to draw


@pytest.mark.integration
def test_loading_a_study_only_reads_its_journal(tmp_path):
    journal = tmp_path / "journal.log"
    journal_study(journal, name="lr_study")
    before = journal.read_bytes()
    loaded, note = studies.load_study(journal, "another-name")  # its only study, whatever the folder says
    assert note is None and loaded.study_name == "lr_study"
    studies.plotly_figures(loaded)
    studies.write_pngs(loaded, tmp_path / "pngs")
    assert journal.read_bytes() == before and not (tmp_path / "journal.log.lock").exists()
    missing, note = studies.load_study(tmp_path / "none" / "journal.log", "s")
    assert missing is None and "not a file" in note and not (tmp_path / "none").exists()  # never created
    (tmp_path / "bad.log").write_text("not a journal\n")
    damaged, note = studies.load_study(tmp_path / "bad.log", "s")
    assert damaged is None and note.startswith("bad.log holds no study")


@pytest.mark.integration
def test_png_tick_labels_do_not_overlap_even_with_five_parameters(tmp_path):
    study = journal_study(tmp_path / "journal.log", trials=12, space=WIDE, pruned=())
    for plot in studies.STUDY_PLOTS:
        if not plot.png:
            continue
        figure = studies.png_figure(study, plot)
        try:
            studies.room_for_panels(figure)
            studies.untangle_ticks(figure)
            assert studies.overlapping_ticks(figure) == [], plot.key
        finally:
            studies._close(figure)


def value_study(path, name: str, values: list[float], direction: str = "minimize"):
    """A study of one parameter whose complete trials gave ``values``, in order."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(study_name=name, storage=open_storage(str(path)), direction=direction)
    study.set_user_attr("metric", "test_mse")
    space = {"lr": FloatDistribution(0.01, 0.5)}
    for n, value in enumerate(values):
        study.add_trial(create_trial(params={"lr": 0.01 + 0.01 * n}, distributions=space, value=value,
                                     user_attrs={"baseline": n == 0}))
    return study


def test_a_study_whose_trials_all_gave_one_value_has_no_importances_and_says_why(tmp_path):
    study = value_study(tmp_path / "journal.log", "flat", [0.5, 0.5, 0.5, 0.5])  # fANOVA: "zero total variance"
    assert studies.param_importances(study) == {}
    assert studies.plot_notes(study, "png")["importances"].startswith("every complete trial has the same value")


def test_studies_compared_by_best_so_far_and_trials_to_come_within_five_percent(tmp_path):
    slow = value_study(tmp_path / "a.log", "slow", [1.0, 0.9, 0.5, 0.2, 0.104])
    fast = value_study(tmp_path / "b.log", "fast", [1.0, 0.1, 0.3])
    compared = studies.comparison([("slow", slow), ("fast", fast)])
    assert compared["best"] == 0.1 and compared["direction"] == "minimize"
    assert [(r["study"], r["best_value"], r["baseline"], r["to_reach"]) for r in compared["rows"]] == [
        ("slow", 0.104, 1.0, 5), ("fast", 0.1, 1.0, 2)]  # 0.104 is within 5 % of 0.1; 0.2 is not
    traces = compared["figure"]["data"]
    assert [t["name"] for t in traces] == ["slow", "fast"] and traces[1]["y"] == [1.0, 0.1, 0.1]
    assert compared["figure"]["layout"]["yaxis"]["type"] == "linear"
    higher = value_study(tmp_path / "c.log", "higher", [0.5, 0.96, 0.9], direction="maximize")
    assert studies.trials_to_reach(higher, 1.0) == 2 and studies.best_so_far(higher)[1] == [0.5, 0.96, 0.96]
