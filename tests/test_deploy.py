"""The export's sidecar and its target: ``<file>.json`` is an ExportRecord (the previous release's
format 0 read too); a file of the user's at the output's name or its sidecar's is never replaced
without ``force``; a folder that is not a finished run is named for what it lacks, whatever the
output holds. The run is the previous release's regression run: nothing trains here."""
import json
import shutil
import sys
from pathlib import Path

import pytest

from torchclassics.core.errors import UserError
from torchclassics.deploy import describe, export, sidecar
from torchclassics.rundir.records import FORMAT, ExportRecord

RELEASE = Path(__file__).parent / "fixtures" / "release-0.1.0"
USERS_NOTES = '{"my": "notes about side.pt2, kept by hand"}\n'


@pytest.fixture
def run(tmp_path) -> Path:
    """A copy of the previous release's regression run, and its ONNX export with a format-0 sidecar
    naming the copy (as that release writes it: ``"format": "onnx"``, no ``export_format``)."""
    copy = tmp_path / "regression"
    shutil.copytree(RELEASE / "regression", copy)
    (copy / "export").mkdir()
    shutil.copy(RELEASE / "export" / "model.onnx", copy / "export" / "model.onnx")
    record = json.loads((RELEASE / "export" / "model.onnx.json").read_text())
    assert record["format"] == "onnx" and "export_format" not in record  # format 0
    (copy / "export" / "model.onnx.json").write_text(json.dumps({**record, "run": str(copy.resolve())}))
    return copy


def test_a_users_own_sidecar_is_refused_unchanged_and_replaced_only_with_force(run, tmp_path):
    target = tmp_path / "side.pt2"
    notes = tmp_path / "side.pt2.json"
    notes.write_text(USERS_NOTES)
    with pytest.raises(UserError, match=r"side\.pt2\.json exists and is not the record of an export") as err:
        export(run, "exported", output=target)
    assert err.value.option == "output" and "force" in str(err.value) and "--" not in str(err.value)
    assert notes.read_text() == USERS_NOTES and not target.exists()
    assert export(run, "exported", output=target, force=True) == target
    record = ExportRecord.from_json(json.loads(notes.read_text()))
    assert (record.format, record.export_format, record.run) == (FORMAT, "exported", str(run.resolve()))
    assert record.details["bytes"] == target.stat().st_size


@pytest.mark.integration
def test_a_format_0_sidecar_is_recognised_as_this_runs_export(run):
    old = run / "export" / "model.onnx"
    assert describe(old) == ["  4,155 bytes; largest difference from the model: 0"]
    assert export(run, "onnx") == old  # its own earlier export: replaced without force
    record = json.loads((run / "export" / "model.onnx.json").read_text())
    assert (record["format"], record["export_format"], record["run"]) == (FORMAT, "onnx", str(run.resolve()))


def test_an_export_of_another_run_is_refused_naming_it(run, tmp_path):
    other = tmp_path / "other"
    shutil.copytree(run, other)  # its sidecar still names `run`
    with pytest.raises(UserError, match=f"is an export of {run.resolve()}, not of {other}"):
        export(other, "onnx")
    assert ExportRecord.from_json(json.loads((other / "export" / "model.onnx.json").read_text())).format == 0


def test_a_users_file_without_a_sidecar_is_refused(run, tmp_path):
    thesis = tmp_path / "thesis.onnx"
    thesis.write_text("mine")
    with pytest.raises(UserError, match="exists and is not an export of"):
        export(run, "onnx", output=thesis)
    assert thesis.read_text() == "mine" and not sidecar.sidecar_of(thesis).exists()


@pytest.mark.parametrize("remove, named", [
    ("params.json", "no params.json"),
    ("checkpoints/best.pt", "has no checkpoints/best.pt"),
    ("checkpoints", "has no checkpoints/last.pt"),  # a finished run is read from its last.pt first
])
def test_a_folder_that_is_not_a_finished_run_is_named_for_what_it_lacks(run, tmp_path, remove, named):
    """Not the output: before, an existing -o file of the user's was blamed instead of the run."""
    mine = tmp_path / "mine.onnx"
    mine.write_text("the user's")
    shutil.rmtree(run / remove) if (run / remove).is_dir() else (run / remove).unlink()
    with pytest.raises(UserError, match=named) as err:
        export(run, "onnx", output=mine)
    assert "mine.onnx" not in str(err.value) and mine.read_text() == "the user's"


def test_a_folder_at_the_output_is_refused_even_with_force(run, tmp_path):
    with pytest.raises(UserError, match="is a folder"):
        export(run, "onnx", output=tmp_path, force=True)


@pytest.mark.parametrize("arguments, option", [
    ({"fmt": "tflite"}, "fmt"),
    ({"fmt": "onnx", "quantize": "int8"}, "quantize"),
    ({"fmt": "executorch", "quantize": "int4"}, "quantize"),
    ({"checkpoint_name": "first"}, "checkpoint_name"),
])
def test_bad_arguments_name_the_api_argument(run, arguments, option):
    with pytest.raises(UserError) as err:
        export(run, **arguments)
    assert err.value.option == option and str(err.value).startswith(f"{option}=") and "--" not in str(err.value)
    assert not (run / "export" / "model.pte").exists()


def test_a_missing_extra_names_the_command_for_pypi_and_for_a_clone(run, monkeypatch):
    monkeypatch.setitem(sys.modules, "onnxruntime", None)
    with pytest.raises(UserError) as err:
        export(run, "onnx", output=run / "export" / "again.onnx")
    assert 'pip install "torchclassics[export]" (from PyPI) or pip install ".[export]" (in a clone)' in str(err.value)
    assert not (run / "export" / "again.onnx").exists()


def test_the_old_import_path_is_the_same_function():
    from torchclassics import export as old_module

    assert old_module.export is export and old_module.describe is describe
