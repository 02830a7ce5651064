"""char_rnn_names: names read from the tutorial's folder layout, padding that changes nothing,
a smoke run with figures and predict without the data, the lesson's claim on the shipped
names, and an exact SIGKILL resume."""
import json
from pathlib import Path

import pytest
import torch
from PIL import Image

from helpers import killed_and_resumed
from torchclassics.data.names import BUNDLED, encode, load_names, stratified_split, to_ascii

LANGUAGES = ("Italian", "Japanese", "Polish")


def tutorial_folder(root: Path, per_language: int) -> Path:
    """``<root>/data/names/<Language>.txt`` as the tutorial's data.zip unpacks, with the first
    names of a few shipped lists."""
    folder = root / "data" / "names"
    folder.mkdir(parents=True)
    for language in LANGUAGES:
        names = (BUNDLED / f"{language}.txt").read_text(encoding="utf-8").splitlines()[:per_language]
        (folder / f"{language}.txt").write_text("\n".join(names) + "\n", encoding="utf-8")
    return root


def test_accents_become_ascii_and_other_signs_go():
    assert to_ascii("Ślusàrski") == "Slusarski"
    assert to_ascii("Włodarczyk") == "Wlodarczyk"  # ł does not decompose: spelled out, not lost
    assert to_ascii(" O'Brien-Smith 2 ") == "O'Brien-Smith"


def test_the_tutorial_layout_is_read_and_the_split_keeps_every_language(tmp_path):
    data = load_names(tutorial_folder(tmp_path, 30))
    assert data.languages == list(LANGUAGES) and len(data.names) == 90
    train, test = stratified_split(data.labels, 0.2, seed=3)
    assert sorted(torch.cat([train, test]).tolist()) == list(range(90))
    assert data.labels[test].bincount().tolist() == [6, 6, 6]
    assert torch.equal(stratified_split(data.labels, 0.2, seed=3)[1], test)


def test_padding_changes_no_prediction():
    """The state after a name's last letter is read, so a padded batch classifies each name
    exactly as the name alone."""
    from torchclassics.models.char_rnn import CharRNN

    torch.manual_seed(0)
    model = CharRNN(60, 16, 5, "gru").eval()
    names = ["Li", "Kowalczykowski", "Sato"]
    batch = model(encode(names))
    alone = torch.cat([model(encode([name])) for name in names])
    assert torch.allclose(batch, alone, atol=1e-6)


def test_smoke_run_figures_and_predict_without_the_data(tmp_path):
    from torchclassics import predict, run

    root = tutorial_folder(tmp_path / "data", 40)
    result = run("char_rnn_names", out=tmp_path / "r", quiet=True, data_root=str(root), epochs=2, hidden=16,
                 batch_size=16)
    summary = json.loads((tmp_path / "r" / "summary.json").read_text())
    assert summary["languages"] == list(LANGUAGES)
    assert 0 < summary["metrics"]["test_majority_accuracy"] < 1
    assert {"test_accuracy", "test_loss"} <= result.metrics.keys()
    for name in ("confusion.png", "loss.png"):
        with Image.open(tmp_path / "r" / "figures" / name) as image:
            assert image.size[0] > 100

    names_file = tmp_path / "names.txt"
    names_file.write_text("Kowalski\n\nTanaka\n", encoding="utf-8")
    for path in (root / "data" / "names").glob("*.txt"):
        path.unlink()  # the languages come from the checkpoint, not from the data
    predicted = predict(tmp_path / "r", ["Dostoevsky", str(names_file), "42"])
    assert [row["file"] for row in predicted] == ["Dostoevsky", f"{names_file}:1", f"{names_file}:3", "42"]
    assert all(row["label"] in LANGUAGES and 0 < row["probability"] <= 1 for row in predicted[:3])
    assert "no letters" in predicted[3]["error"]

    from torchclassics.api import finished_run

    run = finished_run(tmp_path / "r", need_data=False)
    as_text = run.experiment.predict(run, [str(names_file)])  # a str (--text) is never opened
    assert len(as_text) == 1 and as_text[0]["file"] == str(names_file) and as_text[0]["label"] in LANGUAGES


@pytest.mark.integration
def test_a_short_run_on_the_shipped_names_beats_the_majority_class(tmp_path):
    from torchclassics import run

    result = run("char_rnn_names", out=tmp_path / "r", quiet=True, figures=False, epochs=1, hidden=32,
                 batch_size=128, data_root=str(tmp_path))  # no names there: the shipped lists
    assert result.metrics["test_accuracy"] > result.metrics["test_majority_accuracy"] + 0.15


@pytest.mark.integration
def test_sigkill_then_resume_matches_uninterrupted(tmp_path, monkeypatch):
    settings = {"epochs": 8, "data_root": str(tutorial_folder(tmp_path / "data", 100)), "hidden": 16, "batch_size": 16}
    killed_and_resumed(tmp_path, monkeypatch, "char_rnn_names", settings, kill_at=3)
