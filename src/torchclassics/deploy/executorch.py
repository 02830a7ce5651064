"""ExecuTorch: one ``.pte`` program for Android and iOS apps, optionally int8.

The program takes one input at a time (what an app on a phone classifies), is delegated to XNNPACK
where XNNPACK has the operators, and is run in ExecuTorch's own runtime (the C++ one apps embed,
through its Python bindings) and compared with the model before anything is kept. ``int8``:
weights and activations quantized by XNNPACK's quantizer, calibrated on the run's training data,
with size and held-out metrics before and after. Latency is measured on this CPU.
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
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from ..core import files
from ..core.errors import UserError
from .extras import install_hint
from .formats import TOLERANCE, max_difference, tensors

SUFFIX = ".pte"
QUANTIZE = ("int8",)
# An int8 program is checked against the quantized model it was lowered from (XNNPACK's integer
# kernels round differently from the reference's float arithmetic): a few 8-bit steps of the output.
INT8_TOLERANCE = 0.05        # of the largest |output| of the example
CALIBRATION_BATCHES = 10     # training batches that set the int8 ranges
LATENCY_SECONDS = 0.5        # about how long the latency measurement runs


@dataclass
class ExecuTorch:
    """The parts of ExecuTorch an export uses, imported only for ``fmt="executorch"``."""

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


def tools() -> ExecuTorch:
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
        raise UserError.for_option("fmt", "executorch", f"needs ExecuTorch ({err}): {install_hint('executorch')}; "
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


METADATA_METHOD = "metadata"  # a .pte's method returning the export's description as JSON text


def _lower(et: ExecuTorch, model, row: torch.Tensor, name: str, metadata: dict | None = None) -> tuple[bytes, dict]:
    """The .pte bytes of ``model`` for inputs shaped like ``row``, and how XNNPACK took it; ``metadata`` as a
    constant method (``program.load_method("metadata").execute([])`` gives its JSON text)."""
    try:
        with warnings.catch_warnings():
            # nn.RNN/LSTM/GRU keep their weights in a list torch.export warns about; the program is right
            warnings.filterwarnings("ignore", message=".*were assigned during export")
            program = torch.export.export(model, (row,))
        constants = {METADATA_METHOD: json.dumps(metadata)} if metadata else None
        edge = et.lower(program, partitioner=[et.partitioner()], constant_methods=constants)
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

    def eval(self) -> ProgramAsModel:
        return self

    def __call__(self, inputs: torch.Tensor) -> torch.Tensor:
        return torch.cat([self.method.execute([row.unsqueeze(0).contiguous()])[0] for row in inputs.cpu()])


def _difference_per_row(reference_model, method, rows: torch.Tensor) -> tuple[float, float]:
    """(largest difference between the program and ``reference_model``, largest |reference output|),
    row by row."""
    worst, scale = 0.0, 0.0
    for row in rows.split(1):
        reference = reference_model(row)
        worst = max(worst, max_difference(reference, method.execute([row.contiguous()])))
        scale = max([scale] + [float(t.abs().max()) for t in tensors(reference)])
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
    from ..engine.loop import plain_forward

    if task.train is None or task.test is None or task.loss_fn is None:
        raise UserError.for_option("quantize", "int8", f"{name} has no training data to calibrate on and held-out "
                                   "split to measure accuracy before and after.")
    if task.forward is not plain_forward or not isinstance(task.model(rows), torch.Tensor):
        raise UserError.for_option("quantize", "int8", f"{name}'s model is not one tensor in, one tensor out (the "
                                   "convolutional and feed-forward experiments are: cnn_mnist, dogs_vs_cats, "
                                   "classification, ...).")


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
    from ..engine.loop import evaluate_task

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


def write_program(et: ExecuTorch, experiment, task, path: Path, quantize: str | None,
                  metadata: dict | None = None) -> dict:
    """The run's model as an ExecuTorch program for one input at a time, written to ``path`` only
    once ExecuTorch's runtime has run it as the model does. Returns what the sidecar records."""
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
        program, lowering = _lower(et, reference, row, name, metadata)
        with files.replaced_atomically(path) as tmp:
            tmp.write_bytes(program)
            method = _load_method(et, tmp)  # what was written is what is checked
            difference, limit = _check_program(method, reference, checked_on, quantize)
            if quantize:
                record["before"] = {"bytes": len(_lower(et, model, row, name)[0]), **_held_out(task, model)}
                record["after"] = {"bytes": len(program), **_held_out(task, ProgramAsModel(method))}
            latency, calls = _latency_ms(method, row)
    return {"max_difference": difference, "tolerance": limit,
            "compared_with": "quantized model" if quantize else "model", "bytes": path.stat().st_size,
            "input_shape": list(row.shape[1:]), "batch": 1, "input_dtype": str(row.dtype).removeprefix("torch."),
            **lowering, "latency_ms": latency, "latency_calls": calls, "executorch": et.version, **record}


def _metrics_change(before: dict, after: dict) -> str:
    keys = [k for k in before if k != "bytes" and k in after]
    return ", ".join(f"{k} {before[k]:.4g} -> {after[k]:.4g}" for k in keys)


def describe(details: dict) -> list[str]:
    """What a program's sidecar adds to the size and difference: XNNPACK's share, latency, int8's cost."""
    outside = ", ".join(f"{name} x{count}" for name, count in details["outside_delegate"].items()) or "nothing"
    taken = f"XNNPACK took {details['delegated_parts']} part(s); outside it: {outside}" if details["delegate"] \
        else "XNNPACK took nothing: ExecuTorch's portable kernels run it all"
    latency = (f"  input {details['input_dtype']} {[details['batch'], *details['input_shape']]}; "
               f"{details['latency_ms']:.3g} ms per call (ExecuTorch's Python runtime, this CPU, median of "
               f"{details['latency_calls']:,} calls)")
    lines = [f"  {taken}", latency]
    if details.get("quantize"):
        before, after = details["before"], details["after"]
        lines.append(f"  int8: {before['bytes']:,} -> {after['bytes']:,} bytes; {_metrics_change(before, after)} "
                     f"({details['held_out_samples']:,} held-out samples)")
    return lines
