"""Export a trained run for deployment, without pickle: ONNX, torch.export (.pt2), TorchScript, or
an ExecuTorch program (.pte) for phones.

"Save the whole network" in the old lessons meant pickling the module, which current
``torch.load`` refuses by default (weights_only). These formats carry the architecture as a
graph instead; every export is loaded back and checked against the model on an example batch
(the .pte in ExecuTorch's own runtime, the one Android and iOS apps embed).
Beside each export, ``<file>.json`` says which run and checkpoint it came from: an ``-o`` file
that is not an export of the same run is never overwritten without ``--force``.
"""
from __future__ import annotations

import contextlib
import json
import logging
import os
import statistics
import sys
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import torch

from .core import files as atomic
from .api import load_run
from .errors import UserError

SUFFIX = {"onnx": ".onnx", "exported": ".pt2", "torchscript": ".ts", "executorch": ".pte"}
QUANTIZE = ("int8",)
TOLERANCE = 1e-4


def _tensors(output) -> list[torch.Tensor]:
    if isinstance(output, torch.Tensor):
        return [output]
    return [t for item in output for t in _tensors(item)] if isinstance(output, (tuple, list)) else []


def _max_difference(reference, got) -> float:
    worst = 0.0
    for want, have in zip(_tensors(reference), got):
        have = torch.as_tensor(have)
        if want.shape != have.shape:
            return float("inf")
        worst = max(worst, float((want - have).abs().max()))
    return worst


def _onnx(model, example, path: Path) -> list:
    try:
        import onnxruntime
    except ImportError:
        raise UserError('--format onnx needs onnx, onnxscript and onnxruntime: pip install "torchclassics[export]".') from None
    torch.onnx.export(model, (example,), str(path), dynamo=True, external_data=False, verbose=False,
                      input_names=["input"], dynamic_shapes=({0: torch.export.Dim.AUTO},))
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(None, {session.get_inputs()[0].name: example.numpy()})


def _exported(model, example, path: Path) -> list:
    program = torch.export.export(model, (example,), dynamic_shapes=({0: torch.export.Dim.AUTO},))
    torch.export.save(program, str(path))
    return _tensors(torch.export.load(str(path)).module()(example))


def _torchscript(model, example, path: Path) -> list:
    traced = torch.jit.trace(model, example)
    torch.jit.save(traced, str(path))
    return _tensors(torch.jit.load(str(path))(example))


def _origin(run_path, checkpoint_name: str, fmt: str) -> dict:
    return {"run": str(Path(run_path).resolve()), "checkpoint": checkpoint_name, "format": fmt}


def check_target(path: Path, run_path, force: bool) -> None:
    """Refuse to replace a file that is not an export of this run (unless ``force``)."""
    if not path.exists() or force:
        return
    if path.is_dir():
        raise UserError(f"-o {path} is a folder; give a file name such as {path / 'model.onnx'}.")
    sidecar = path.with_name(path.name + ".json")
    try:
        origin = json.loads(sidecar.read_text()) if sidecar.is_file() else {}
    except (OSError, ValueError):
        origin = {}
    if origin.get("run") != str(Path(run_path).resolve()):
        raise UserError(f"{path} exists and is not an export of {run_path}; choose another -o, or add --force "
                        "to replace it.")


def default_path(run_path, fmt: str, quantize: str | None = None) -> Path:
    """``<run>/export/model.<suffix>`` (``model-int8.pte`` when quantized)."""
    return Path(run_path) / "export" / f"model{'-' + quantize if quantize else ''}{SUFFIX[fmt]}"


def export(run_path, fmt: str = "onnx", output=None, checkpoint_name: str = "best", force: bool = False,
           quantize: str | None = None) -> Path:
    """Write the run's model in ``fmt`` (default ``<run>/export/model.<suffix>``) and verify it.
    ``quantize="int8"`` (ExecuTorch only): weights and activations in int8, calibrated on the
    run's training data, with held-out metrics before and after in ``<file>.json``."""
    if fmt not in SUFFIX:
        raise UserError(f"--format {fmt}: choose one of {', '.join(SUFFIX)}.")
    if quantize is not None and quantize not in QUANTIZE:
        raise UserError(f"--quantize {quantize}: choose one of {', '.join(QUANTIZE)}.")
    if quantize is not None and fmt != "executorch":
        raise UserError(f"--quantize {quantize} works with --format executorch only (XNNPACK's int8 kernels).")
    path = Path(output) if output else default_path(run_path, fmt, quantize)
    check_target(path, run_path, force)
    if fmt == "executorch":
        return _executorch_export(run_path, path, checkpoint_name, quantize)
    experiment, params, task, _, _ = load_run(run_path, checkpoint_name, "cpu", need_data=False)
    model = task.model.eval()
    example = experiment.example_input(task)
    if len(example) < 2:  # a batch of 1 would let the exporter fix the batch size at 1
        example = example.repeat(2, *[1] * (example.dim() - 1))
    writer = {"onnx": _onnx, "exported": _exported, "torchscript": _torchscript}[fmt]
    with torch.no_grad(), atomic.replaced_atomically(path) as tmp:
        reference = model(example)
        difference = _max_difference(reference, writer(model, example, tmp))
        if not difference <= TOLERANCE:
            raise UserError(f"the {fmt} export does not reproduce the model's output (largest difference "
                            f"{difference:.3g} > {TOLERANCE}); nothing was written.")
    atomic.write_json(path.with_name(path.name + ".json"),
                      {**_origin(run_path, checkpoint_name, fmt), "max_difference": difference,
                       "bytes": path.stat().st_size, "input_shape": list(example.shape[1:])})
    return path


# -- ExecuTorch: one program file for Android and iOS -------------------------------------------------
EXECUTORCH_EXTRA = 'pip install "torchclassics[executorch]"'
# An int8 program is checked against the quantized model it was lowered from (XNNPACK's integer
# kernels round differently from the reference's float arithmetic): a few 8-bit steps of the output.
INT8_TOLERANCE = 0.05        # of the largest |output| of the example
CALIBRATION_BATCHES = 10     # training batches that set the int8 ranges
LATENCY_SECONDS = 0.5        # about how long the latency measurement runs


@dataclass
class ExecuTorch:
    """The parts of ExecuTorch an export uses, imported only for ``--format executorch``."""

    lower: Callable       # executorch.exir.to_edge_transform_and_lower
    partitioner: type     # XNNPACK's: the operators it supports run in its optimised CPU kernels
    runtime: Any          # executorch.runtime.Runtime: the C++ runtime apps embed, with Python bindings
    version: str


@contextlib.contextmanager
def _quiet_native_stderr():
    """ExecuTorch's XNNPACK threadpool logs its CPU probing ("Reading file /sys/...") from C++
    straight to file descriptor 2 when a program loads: not for the user's eyes."""
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as devnull:
            os.dup2(devnull.fileno(), 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def executorch_tools() -> ExecuTorch:
    """ExecuTorch's exporter, XNNPACK backend and runtime, or one line naming the extra to install."""
    pytree = logging.getLogger("torch.utils._pytree")  # torchao's import warns about a torch deprecation
    level = pytree.level
    pytree.setLevel(logging.ERROR)
    try:
        from executorch.backends.xnnpack.partition.xnnpack_partitioner import XnnpackPartitioner
        from executorch.exir import to_edge_transform_and_lower
        from executorch.runtime import Runtime
        from executorch.version import __version__
    except ImportError as err:
        raise UserError(f"--format executorch needs ExecuTorch ({err}): {EXECUTORCH_EXTRA}; "
                        "see docs/deploy_mobile.md.") from None
    finally:
        pytree.setLevel(level)
    return ExecuTorch(to_edge_transform_and_lower, XnnpackPartitioner, Runtime, __version__)


def _first_line(err: BaseException) -> str:
    text = " ".join(str(err).split()) or type(err).__name__
    return text[:200]


def _outside_delegate(graph) -> dict[str, int]:
    """The operators XNNPACK did not take (ExecuTorch's portable kernels run them), counted."""
    counts: dict[str, int] = {}
    for node in graph.nodes:
        if node.op != "call_function":
            continue
        name = str(getattr(node.target, "__name__", node.target))
        if name in ("executorch_call_delegate", "getitem") or "sym_size" in name:
            continue
        counts[name] = counts.get(name, 0) + 1
    return counts


def _lower(et: ExecuTorch, model, row: torch.Tensor, name: str) -> tuple[bytes, dict]:
    """The .pte bytes of ``model`` for inputs shaped like ``row``, and how XNNPACK took it."""
    try:
        with warnings.catch_warnings():
            # nn.RNN/LSTM/GRU keep their weights in a list torch.export warns about; the program is right
            warnings.filterwarnings("ignore", message=".*were assigned during export")
            program = torch.export.export(model, (row,))
        edge = et.lower(program, partitioner=[et.partitioner()])
        graph = edge.exported_program().graph
        buffer = edge.to_executorch().buffer
    except Exception as err:  # torch.export and ExecuTorch raise many kinds; all mean "not this model"
        raise UserError(f"{name}: this model does not lower to ExecuTorch ({_first_line(err)}).") from None
    parts = sum(1 for node in graph.nodes if "executorch_call_delegate" in str(node.target))
    return buffer, {"delegate": "XnnpackBackend" if parts else None, "delegated_parts": parts,
                    "outside_delegate": _outside_delegate(graph)}


def _load_method(et: ExecuTorch, path: Path):
    with _quiet_native_stderr():
        return et.runtime.get().load_program(path).load_method("forward")


class ProgramAsModel:
    """An ExecuTorch method called like the model on a batch, one input at a time (the program
    takes one: what an app on a phone classifies), so the engine's evaluation can measure it."""

    def __init__(self, method):
        self.method = method

    def eval(self) -> "ProgramAsModel":
        return self

    def __call__(self, inputs: torch.Tensor) -> torch.Tensor:
        return torch.cat([self.method.execute([row.unsqueeze(0).contiguous()])[0] for row in inputs.cpu()])


def _difference_per_row(reference_model, method, rows: torch.Tensor) -> tuple[float, float]:
    """(largest difference between the program and ``reference_model``, largest |reference output|),
    row by row."""
    worst, scale = 0.0, 0.0
    for row in rows.split(1):
        reference = reference_model(row)
        worst = max(worst, _max_difference(reference, method.execute([row.contiguous()])))
        scale = max([scale] + [float(t.abs().max()) for t in _tensors(reference)])
    return worst, scale


def _latency_ms(method, row: torch.Tensor) -> tuple[float, int]:
    """(median milliseconds of one call on one input, calls timed), over about LATENCY_SECONDS."""
    for _ in range(3):  # the first calls set up XNNPACK's buffers
        method.execute([row])
    times: list[float] = []
    deadline = time.perf_counter() + LATENCY_SECONDS
    while len(times) < 5 or (time.perf_counter() < deadline and len(times) < 2000):
        start = time.perf_counter()
        method.execute([row])
        times.append(time.perf_counter() - start)
    return round(statistics.median(times) * 1000, 4), len(times)


def _check_quantizable(name: str, task, rows: torch.Tensor) -> None:
    """int8 needs training data to calibrate on and a held-out split to measure what it costs."""
    from .engine.loop import plain_forward

    if task.train is None or task.test is None or task.loss_fn is None:
        raise UserError(f"--quantize int8: {name} has no training data to calibrate on and held-out split to "
                        "measure accuracy before and after.")
    if task.forward is not plain_forward or not isinstance(task.model(rows), torch.Tensor):
        raise UserError(f"--quantize int8: {name}'s model is not one tensor in, one tensor out (the convolutional "
                        "and feed-forward experiments are: cnn_mnist, dogs_vs_cats, classification, ...).")


def _int8_model(model, task, rows: torch.Tensor):
    """``model`` quantized by XNNPACK's quantizer through PT2E (torchao): int8 weights (per channel)
    and activations, their ranges observed on CALIBRATION_BATCHES training batches. Returns the
    quantized model (a reference in float arithmetic) and the samples calibrated on."""
    from executorch.backends.xnnpack.quantizer.xnnpack_quantizer import (
        XNNPACKQuantizer,
        get_symmetric_quantization_config,
    )
    from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e, prepare_pt2e

    quantizer = XNNPACKQuantizer().set_global(get_symmetric_quantization_config(is_per_channel=True))
    graph = torch.export.export(model, (rows,), dynamic_shapes=({0: torch.export.Dim.AUTO},)).module()
    observed = prepare_pt2e(graph, quantizer)
    seen = 0
    for _, (inputs, _) in zip(range(CALIBRATION_BATCHES), task.train.epoch(0)):
        observed(inputs.cpu())
        seen += len(inputs)
    return convert_pt2e(observed), seen


def _held_out_rows(task, count: int = 8) -> torch.Tensor:
    inputs, _ = next(iter(task.test.epoch(0)))
    return inputs[:count].cpu().contiguous()


def _held_out(task, model) -> dict:
    from .engine.loop import evaluate_task

    return evaluate_task(task, model, torch.device("cpu"))


def _check_program(method, reference, rows: torch.Tensor, quantize: str | None) -> tuple[float, float]:
    """(largest difference, the limit it passed): a UserError when the program is not the model."""
    difference, scale = _difference_per_row(reference, method, rows)
    limit = INT8_TOLERANCE * scale if quantize else TOLERANCE
    if not difference <= limit:
        against = "the quantized model" if quantize else "the model"
        raise UserError(f"the ExecuTorch program does not reproduce {against}'s output (largest difference "
                        f"{difference:.3g} > {limit:.3g}); nothing was written.")
    return difference, limit


def _executorch_export(run_path, path: Path, checkpoint_name: str, quantize: str | None) -> Path:
    """The run's model as an ExecuTorch program for one input at a time, XNNPACK-delegated where
    XNNPACK has the operators, run in ExecuTorch's runtime and compared with the model before
    anything is kept; int8: quantized, with size and held-out metrics before and after."""
    et = executorch_tools()
    experiment, _, task, _, _ = load_run(run_path, checkpoint_name, "cpu", need_data=quantize is not None)
    name = experiment.name
    # XNNPACK's exporter expects NCHW weights; a model trained channels-last gets its usual layout back.
    model = task.model.eval().to(memory_format=torch.contiguous_format)
    rows = experiment.example_input(task)
    row = rows[:1].contiguous()
    with torch.no_grad():
        reference, checked_on, record = model, rows, {"quantize": None}
        if quantize:
            _check_quantizable(name, task, rows)
            reference, calibrated = _int8_model(model, task, rows)
            checked_on = _held_out_rows(task)  # real inputs: int8 ranges are set for them, not for noise
            record = {"quantize": quantize, "calibration_samples": calibrated, "held_out_samples": task.test.n_samples}
        program, lowering = _lower(et, reference, row, name)
        with atomic.replaced_atomically(path) as tmp:
            tmp.write_bytes(program)
            method = _load_method(et, tmp)  # what was written is what is checked
            difference, limit = _check_program(method, reference, checked_on, quantize)
            if quantize:
                record["before"] = {"bytes": len(_lower(et, model, row, name)[0]), **_held_out(task, model)}
                record["after"] = {"bytes": len(program), **_held_out(task, ProgramAsModel(method))}
            latency, calls = _latency_ms(method, row)
    atomic.write_json(path.with_name(path.name + ".json"), {
        **_origin(run_path, checkpoint_name, "executorch"), "max_difference": difference, "tolerance": limit,
        "compared_with": "quantized model" if quantize else "model", "bytes": path.stat().st_size,
        "input_shape": list(row.shape[1:]), "batch": 1, "input_dtype": str(row.dtype).removeprefix("torch."),
        **lowering, "latency_ms": latency, "latency_calls": calls, "executorch": et.version, **record})
    return path


def _metrics_change(before: dict, after: dict) -> str:
    keys = [k for k in before if k != "bytes" and k in after]
    return ", ".join(f"{k} {before[k]:.4g} -> {after[k]:.4g}" for k in keys)


def describe(path: Path) -> list[str]:
    """What ``<file>.json`` says about an export, in a few lines for the terminal."""
    record = json.loads(path.with_name(path.name + ".json").read_text())
    against = record.get("compared_with", "model")
    lines = [f"  {record['bytes']:,} bytes; largest difference from the {against}: {record['max_difference']:.3g}"]
    if record["format"] != "executorch":
        return lines
    outside = ", ".join(f"{name} x{count}" for name, count in record["outside_delegate"].items()) or "nothing"
    taken = f"XNNPACK took {record['delegated_parts']} part(s); outside it: {outside}" if record["delegate"] \
        else "XNNPACK took nothing: ExecuTorch's portable kernels run it all"
    lines.append(f"  {taken}")
    lines.append(f"  input {record['input_dtype']} {[record['batch'], *record['input_shape']]}; "
                 f"{record['latency_ms']:.3g} ms per call (ExecuTorch's Python runtime, this CPU, median of "
                 f"{record['latency_calls']:,} calls)")
    if record.get("quantize"):
        before, after = record["before"], record["after"]
        lines.append(f"  int8: {before['bytes']:,} -> {after['bytes']:,} bytes; {_metrics_change(before, after)} "
                     f"({record['held_out_samples']:,} held-out samples)")
    return lines
