"""The tensor basics the first lessons use without saying so.

Why ``x`` becomes (100, 1) (``unsqueeze`` / ``view``), how the two clusters are
drawn and joined (``torch.normal``, ``torch.cat``), why inputs are float and labels
long, why CrossEntropy takes class indices, what ``torch.max(out, 1)[1]`` is, and
why every step starts with ``zero_grad`` (gradients add up).
"""
from __future__ import annotations

import warnings
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn


def error_of(call) -> str:
    """The first line of the error ``call()`` raises (the lesson prints it), or '' when it runs."""
    try:
        call()
    except (RuntimeError, TypeError) as err:
        return str(err).splitlines()[0]
    return ""


def column_demo() -> dict:
    """A 1-D tensor of 100 numbers is 100 features of one sample to nn.Linear; (100, 1) is
    100 samples of one feature. ``unsqueeze(1)`` and ``view(-1, 1)`` make the same column."""
    x = torch.linspace(-1, 1, 100)
    layer = nn.Linear(1, 10)
    column = x.unsqueeze(1)
    return {
        "flat": tuple(x.shape), "column": tuple(column.shape),
        "same_as_view": torch.equal(column, x.view(-1, 1)),
        "shares_memory": column.data_ptr() == x.data_ptr(),  # a view: no copy
        "flat_error": error_of(lambda: layer(x)),
        "layer_out": tuple(layer(column).shape),
        # view needs memory laid out in order; a transposed tensor is not, reshape copies when it must
        "view_error": error_of(lambda: x.view(10, 10).t().view(-1)),
        "reshape_ok": tuple(x.view(10, 10).t().reshape(-1).shape),
    }


def clusters_demo(seed: int = 1) -> dict:
    """The classification lesson's data: two clouds from torch.normal, joined by torch.cat."""
    g = torch.Generator().manual_seed(seed)
    n_data = torch.ones(100, 2)
    x0 = torch.normal(2 * n_data, 1.0, generator=g)   # every entry from N(2, 1): mean is a tensor, std a number
    x1 = torch.normal(-2 * n_data, 1.0, generator=g)
    y0, y1 = torch.zeros(100), torch.ones(100)
    x = torch.cat((x0, x1), 0)                  # rows after rows: (200, 2)
    y = torch.cat((y0, y1)).long()              # labels: class numbers, int64
    return {
        "x0_mean": x0.mean(0).tolist(), "x1_mean": x1.mean(0).tolist(),
        "x": x, "y": y, "side_by_side": tuple(torch.cat((x0, x1), 1).shape),
    }


def labels_demo(x: torch.Tensor, y: torch.Tensor, seed: int = 1) -> dict:
    """CrossEntropyLoss wants float scores (N, C) and int64 class indices (N,)."""
    torch.manual_seed(seed)
    net = nn.Sequential(nn.Linear(2, 10), nn.ReLU(), nn.Linear(10, 2))
    out = net(x)
    loss = nn.CrossEntropyLoss()
    one_hot = F.one_hot(y, 2).float()
    return {
        "input_dtype": str(x.dtype), "label_dtype": str(y.dtype), "scores": tuple(out.shape),
        "float_labels_error": error_of(lambda: loss(out, y.float())),
        "double_input_error": error_of(lambda: net(x.double())),
        "by_index": loss(out, y).item(),
        "by_one_hot": loss(out, one_hot).item(),  # accepted as class probabilities since PyTorch 1.10
    }


def prediction_demo() -> dict:
    """``torch.max(out, 1)`` is (largest score, its position); [1] is the predicted class.
    Softmax keeps the order of scores, so it changes no prediction."""
    out = torch.tensor([[2.0, -1.0, 0.5], [0.1, 0.3, 3.0], [-2.0, 1.0, 0.0]])
    values, indices = torch.max(out, 1)
    scores = torch.randn(2, 3, 4, generator=torch.Generator().manual_seed(0))  # (batch, time, class)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        implicit = F.softmax(scores)  # the notes' call, without dim
    return {
        "values": values.tolist(), "indices": indices.tolist(), "argmax": out.argmax(1).tolist(),
        "after_softmax": torch.max(F.softmax(out, dim=1), 1)[1].tolist(),
        "warning": str(caught[0].message) if caught else "",
        "implicit_is_dim0": torch.equal(implicit, F.softmax(scores, dim=0)),  # normalised over the batch
    }


def accumulation_demo() -> dict:
    """backward() adds into .grad: two backward calls without zero_grad give twice the gradient."""
    w = torch.tensor([1.0, -2.0], requires_grad=True)
    x = torch.tensor([3.0, 4.0])
    optimizer = torch.optim.SGD([w], lr=0.1)
    (w * x).sum().backward()
    once = w.grad.clone()
    (w * x).sum().backward()
    twice = w.grad.clone()
    optimizer.zero_grad()  # set_to_none=True by default: the gradient is gone, not zero
    return {"once": once.tolist(), "twice": twice.tolist(), "after_zero_grad": w.grad}


def run(out: Path) -> None:
    c = column_demo()
    print("x = torch.linspace(-1, 1, 100):")
    print(f"  shape {c['flat']}; nn.Linear(1, 10)(x) -> RuntimeError: {c['flat_error']}")
    print(f"  x.unsqueeze(1): shape {c['column']} (100 samples, 1 feature) -> nn.Linear(1, 10) gives {c['layer_out']}")
    print(f"  x.view(-1, 1) is the same column: {c['same_as_view']}; no copy, same memory: {c['shares_memory']}")
    print(f"  a transposed tensor cannot be viewed: {c['view_error']}")
    print(f"  .reshape(-1) copies when it must: shape {c['reshape_ok']}")

    d = clusters_demo()
    print("\ntwo clusters: x0 = torch.normal(2 * torch.ones(100, 2), 1), x1 = torch.normal(-2 * torch.ones(100, 2), 1)")
    print(f"  column means of x0 {[round(v, 2) for v in d['x0_mean']]}, of x1 {[round(v, 2) for v in d['x1_mean']]}")
    print(f"  torch.cat((x0, x1), 0): shape {tuple(d['x'].shape)} (rows after rows); "
          f"torch.cat((x0, x1), 1): shape {d['side_by_side']} (columns beside columns)")

    labels = labels_demo(d["x"], d["y"])
    print(f"\ninputs {labels['input_dtype']}, labels {labels['label_dtype']}, scores {labels['scores']}")
    print(f"  CrossEntropyLoss with float labels -> RuntimeError: {labels['float_labels_error']}")
    print(f"  a float64 input into float32 weights -> RuntimeError: {labels['double_input_error']}")
    print(f"  loss with class indices {labels['by_index']:.6f}, with one-hot rows as probabilities "
          f"{labels['by_one_hot']:.6f}: the same number; indices are the usual, smaller form")

    p = prediction_demo()
    print("\nout = [[2, -1, 0.5], [0.1, 0.3, 3], [-2, 1, 0]]")
    print(f"  torch.max(out, 1) = (values {p['values']}, indices {p['indices']}); "
          f"[1] is the predicted class, = out.argmax(1) {p['argmax']}")
    print(f"  after softmax the same classes: {p['after_softmax']} (softmax keeps the order of the scores)")
    print(f"  F.softmax without dim warns: {p['warning']}")
    print(f"  for a 3-D (batch, time, class) tensor it picks dim=0, the batch: {p['implicit_is_dim0']}; "
          "always write dim=")

    a = accumulation_demo()
    print("\ngradients add up: w = [1, -2], loss = (w * [3, 4]).sum()")
    print(f"  after one backward w.grad = {a['once']}, after a second one {a['twice']}")
    print(f"  after optimizer.zero_grad() w.grad = {a['after_zero_grad']}: each step must start from no gradient")
    return None
