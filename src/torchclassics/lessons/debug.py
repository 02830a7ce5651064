""""Easy to debug": PyTorch runs ``forward`` as ordinary Python every time (a dynamic graph), so a
print or a breakpoint inside it runs, an ``if`` on the data takes the branch the data asks for, and
an error's traceback ends on the line of ``forward`` that failed.

A compiled graph is recorded once and replayed. ``torch.jit.trace`` records the operations one
example went through: the print runs once (while tracing), the ``if`` is frozen to the example's
branch, and an error is raised inside the TorchScript interpreter, with no Python frame of
``forward`` to stop in. ``torch.export`` refuses the data-dependent ``if`` instead (``torch.cond``
is its way to keep both branches). ``torch.compile`` keeps Python's behaviour by breaking the graph
at such a line, but compiling takes tens of seconds on a small CPU, too slow for a lesson.
"""
from __future__ import annotations

import contextlib
import io
import logging
import traceback
import warnings
from pathlib import Path

import torch
from torch import nn


class Branch(nn.Module):
    """Doubles a positive input, negates any other: the branch depends on the data."""

    def forward(self, x):
        if x.sum() > 0:
            return x * 2
        return -x


class Shout(Branch):
    """The same, printing what it sees."""

    def forward(self, x):
        print(f"    forward sees sum {x.sum().item():g}")
        return super().forward(x)


class SmallNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.hidden = nn.Linear(4, 8)
        self.out = nn.Linear(8, 1)

    def forward(self, x):
        h = torch.relu(self.hidden(x))  # the line a wrong input fails on
        return self.out(h)


def traced(module: nn.Module, example: torch.Tensor):
    """``torch.jit.trace`` without its deprecation and tracer warnings (the lesson shows what they warn of)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return torch.jit.trace(module, example, check_trace=False)  # one call: the print shows it once


def branch_demo() -> dict:
    """The same inputs through the Python module and through its trace from a positive example."""
    module, positive, negative = Shout(), torch.ones(3), -torch.ones(3)
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        eager = (module(positive), module(negative))
        print("    -- tracing")
        trace = traced(module, positive)
        print("    -- calling the trace")
        replayed = (trace(positive), trace(negative))
    return {"eager": [t.tolist() for t in eager], "traced": [t.tolist() for t in replayed],
            "printed": printed.getvalue().rstrip("\n").splitlines(), "code": trace.code.strip()}


def export_refusal() -> str:
    """What torch.export says about the data-dependent ``if`` (its first line). Its warnings and the
    graph it prints while failing are set aside: the lesson shows the refusal alone."""
    shapes_log = logging.getLogger("torch.fx.experimental.symbolic_shapes")
    level = shapes_log.level
    shapes_log.setLevel(logging.ERROR)
    try:
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            torch.export.export(Branch(), (torch.ones(3),))
    except Exception as err:  # torch's GuardOnDataDependentSymNode, a RuntimeError subclass in some versions
        return f"{type(err).__name__}: {str(err).splitlines()[0]}"
    finally:
        shapes_log.setLevel(level)
    return ""


def failing_frame(module, x) -> tuple[str, str]:
    """(the error's first line, the last traceback frame in this file: its function and line, or 'none')."""
    try:
        module(x)
    except RuntimeError as err:
        frames = [f for f in traceback.extract_tb(err.__traceback__) if f.filename == __file__]
        where = f"{frames[-1].name}: {frames[-1].line}" if frames and frames[-1].name == "forward" else "none"
        return str(err).splitlines()[0], where
    return "", "none"


def traceback_demo(seed: int = 0) -> dict:
    torch.manual_seed(seed)
    net = SmallNet()
    wrong = torch.randn(2, 5)  # 5 features where the net takes 4
    return {"eager": failing_frame(net, wrong), "traced": failing_frame(traced(net, torch.randn(2, 4)), wrong)}


def run(out: Path) -> None:
    b = branch_demo()
    print("a forward with print() and an `if` on the data, called with ones(3) and -ones(3):")
    print(f"  Python (dynamic graph): {b['eager'][0]}, {b['eager'][1]}")
    print(f"  torch.jit.trace from ones(3): {b['traced'][0]}, {b['traced'][1]}  <- the negative input doubled")
    print("  what print() inside forward showed:")
    for line in b["printed"]:
        print(line)
    print(f"  the trace's code (the branch frozen): {' '.join(b['code'].split())}")
    print(f"  torch.export refuses the branch: {export_refusal().split(' (')[0]}")

    t = traceback_demo()
    print("\na wrong input (5 features, the first layer takes 4):")
    print(f"  Python: {t['eager'][0]}\n    last frame in our code: {t['eager'][1]}")
    print(f"  traced: {t['traced'][0]}\n    last frame in our code: {t['traced'][1]} "
          "(the error comes from the TorchScript interpreter)")
    return None
