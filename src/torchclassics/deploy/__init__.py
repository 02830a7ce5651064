"""Deployment: a trained run's model as a file that runs without this package, and no pickle.

* :mod:`.formats`: ONNX (checked in onnxruntime), torch.export's ``.pt2``, TorchScript;
* :mod:`.executorch`: an ExecuTorch ``.pte`` program for Android and iOS, optionally int8;
* :mod:`.sidecar`: ``<file>.json`` beside each export (which run and checkpoint, what was checked).

"Save the whole network" in the old lessons meant pickling the module, which current
``torch.load`` refuses by default (weights_only). These formats carry the architecture as a
graph instead; every export is loaded back and checked against the model on an example batch
before it is kept. An output file that is not an earlier export of the same run (its sidecar
says) is never overwritten without ``force``.

    from torchclassics.deploy import describe, export
    path = export("runs/cnn_mnist/<run>", fmt="onnx")
    print("\\n".join(describe(path)))
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..core.errors import UserError
from ..rundir import layout
from . import executorch, formats, sidecar
from .executorch import QUANTIZE

SUFFIX = {**formats.SUFFIX, "executorch": executorch.SUFFIX}
CHECKPOINTS = sidecar.CHECKPOINTS

__all__ = ["QUANTIZE", "SUFFIX", "default_path", "describe", "export"]


@dataclass
class TrainedModel:
    """What an export needs of a finished run: its experiment (example inputs, name) and its task (the
    model with the checkpoint's weights; the data when ``need_data``)."""

    experiment: object
    task: object


def trained_model(run_path, checkpoint_name: str, need_data: bool) -> TrainedModel:
    """The run's model on the CPU: the one place deploy/ loads a run (params.json first, then the
    checkpoint; each missing one is named)."""
    from ..api import finished_run

    run = finished_run(run_path, checkpoint_name, "cpu", need_data=need_data)
    return TrainedModel(run.experiment, run.task)


def default_path(run_path, fmt: str, quantize: str | None = None) -> Path:
    """``<run>/export/model.<suffix>`` (``model-int8.pte`` when quantized)."""
    return Path(run_path) / layout.EXPORT / f"model{'-' + quantize if quantize else ''}{SUFFIX[fmt]}"


def _check_arguments(fmt: str, quantize: str | None, checkpoint_name: str) -> None:
    if fmt not in SUFFIX:
        raise UserError.for_option("fmt", fmt, f"choose one of {', '.join(SUFFIX)}.")
    if quantize is not None and quantize not in QUANTIZE:
        raise UserError.for_option("quantize", quantize, f"choose one of {', '.join(QUANTIZE)}.")
    if quantize is not None and fmt != "executorch":
        raise UserError.for_option("quantize", quantize, "works with fmt='executorch' only (XNNPACK's int8 kernels).")
    if checkpoint_name not in CHECKPOINTS:
        raise UserError.for_option("checkpoint_name", checkpoint_name, f"choose {' or '.join(CHECKPOINTS)}.")


def export(run_path, fmt: str = "onnx", output=None, checkpoint_name: str = "best", force: bool = False,
           quantize: str | None = None) -> Path:
    """Write the run's model in ``fmt`` (default ``<run>/export/model.<suffix>``), verify it, and record
    where it came from in ``<file>.json``. ``quantize="int8"`` (ExecuTorch only): weights and activations
    in int8, calibrated on the run's training data, with held-out metrics before and after.

    The run is read before the output is looked at, so a run that is not one (no params.json, no
    checkpoint) is named as such, whatever ``output`` holds."""
    _check_arguments(fmt, quantize, checkpoint_name)
    # Before anything is read: a missing extra is the first thing to say.
    tools = executorch.tools() if fmt == "executorch" else None
    trained = trained_model(run_path, checkpoint_name, need_data=quantize is not None)
    path = Path(output) if output else default_path(run_path, fmt, quantize)
    sidecar.check_target(path, run_path, force, formats=SUFFIX)
    if fmt == "executorch":
        row = trained.experiment.example_input(trained.task)[:1]
        described = metadata(trained, run_path, checkpoint_name, list(row.shape[1:]))
        details = executorch.write_program(tools, trained.experiment, trained.task, path, quantize, described)
        details["metadata"] = described
    else:
        example = trained.experiment.example_input(trained.task)
        described = metadata(trained, run_path, checkpoint_name, list(example.shape[1:]))
        details = formats.write_and_verify(fmt, trained.task.model.eval(), example, path, described)
        details["metadata"] = described
    sidecar.write(path, run_path, checkpoint_name, fmt, details)
    return path


def metadata(trained: TrainedModel, run_path, checkpoint_name: str, input_shape) -> dict:
    """What the export says about itself (in an ONNX file's metadata_props and every sidecar): the
    experiment, one input's shape, where it came from, and the experiment's own preparation and classes."""
    return {"experiment": trained.experiment.name, "input_shape": input_shape,
            "source_run": str(Path(run_path).resolve()), "checkpoint": checkpoint_name,
            **trained.experiment.export_metadata(trained.task)}


def describe(path) -> list[str]:
    """What ``<file>.json`` says about an export, in a few lines for the terminal (any release's sidecar)."""
    path = Path(path)
    record = sidecar.read(path)
    if record is None:
        raise UserError(f"{sidecar.sidecar_of(path)} is missing or not the record of an export.")
    details = record.details
    against = details.get("compared_with", "model")
    lines = [f"  {details['bytes']:,} bytes; largest difference from the {against}: {details['max_difference']:.3g}"]
    if record.export_format == "executorch":
        lines += executorch.describe(details)
    return lines
