"""Tensors: torch <-> numpy, operations next to numpy, and autograd on mean(x^2).

The old lessons wrapped tensors in ``Variable`` and read ``loss.data[0]``; both
are gone. A tensor with ``requires_grad=True`` *is* the variable, and
``.item()`` reads a scalar.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch


def shared_memory_demo() -> dict:
    """``torch.from_numpy`` and ``.numpy()`` share memory with the array; ``torch.tensor`` copies."""
    array = np.arange(6).reshape(2, 3)
    shared = torch.from_numpy(array)
    copied = torch.tensor(array)
    shared[0, 0] = -1  # written through the tensor, seen in the array
    back = shared.numpy()
    back[1, 2] = 100  # written through the array view, seen in the tensor
    return {"array": array, "shared": shared, "copied": copied}


def not_resizable_demo() -> dict:
    """The book's "the returned tensor is not resizable": the tensor uses memory the array owns, so it
    cannot grow it; in-place changes of values are seen both ways.

    torch (2.14) sets the new shape before it finds the memory cannot grow: the refused tensor claims 5
    entries over 3 and reading it reads past the array (a crash). It is thrown away unread."""
    from .shapes import error_of

    doomed = torch.from_numpy(np.array([1, 2, 3]))
    refused = error_of(lambda: doomed.resize_(5))
    shape_after = tuple(doomed.shape)
    # `doomed` is never read again: its shape no longer matches its memory
    array = np.array([1, 2, 3])
    shared = torch.from_numpy(array)
    shared.add_(10)        # in place through the tensor: the array sees it
    array *= 2             # in place through the array: the tensor sees it
    grown = torch.tensor(array).resize_(5)  # a copy owns its memory: it may grow (new entries uninitialised)
    rebound = shared + 1   # not in place: a new tensor, the array is left alone
    return {"refused": refused, "shape_after": shape_after, "array": array.tolist(), "shared": shared.tolist(),
            "grown": len(grown), "rebound_shares": bool(np.shares_memory(rebound.numpy(), array))}


def operations_demo() -> list[tuple[str, np.ndarray, torch.Tensor]]:
    """The same operation in numpy and torch: (name, numpy result, torch result)."""
    data = [-1, -2, 1, 2]
    matrix = [[1, 2], [3, 4]]
    t, m = torch.tensor(data, dtype=torch.float32), torch.tensor(matrix, dtype=torch.float32)
    return [
        ("abs", np.abs(data), torch.abs(t)),
        ("sin", np.sin(data), torch.sin(t)),
        ("mean", np.mean(data), torch.mean(t)),
        ("matrix product", np.matmul(matrix, matrix), torch.mm(m, m)),
        ("matrix product (@)", np.array(matrix) @ np.array(matrix), m @ m),
    ]


def mean_square_gradient() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """d mean(x^2) / dx = 2x / n, computed by autograd: (x, out, x.grad)."""
    x = torch.tensor([[1.0, 2.0], [3.0, 4.0]], requires_grad=True)
    out = torch.mean(x * x)
    out.backward()
    return x, out, x.grad


def _rounded(values) -> list | float:
    return np.round(np.asarray(values, dtype=float), 4).tolist()


def run(out: Path) -> None:
    demo = shared_memory_demo()
    print("torch.from_numpy(array) shares memory with the array (torch.tensor(array) copies):")
    print(f"  tensor[0, 0] = -1 and tensor.numpy()[1, 2] = 100 ->\n  array  = {demo['array'].tolist()}")
    print(f"  shared = {demo['shared'].tolist()}")
    print(f"  copied = {demo['copied'].tolist()}  (unchanged)")
    print(f"  shares memory: {np.shares_memory(demo['array'], demo['shared'].numpy())}")

    r = not_resizable_demo()
    print("\n\"not resizable\": torch.from_numpy(np.array([1, 2, 3])).resize_(5) raises")
    print(f"  {r['refused']}; the refused tensor is left with shape {r['shape_after']} over 3 entries: "
          "throw it away")
    print(f"  tensor.add_(10), then array *= 2 -> array {r['array']}, tensor {r['shared']} (in place: seen both ways)")
    print(f"  a copy (torch.tensor) resizes: {r['grown']} entries; tensor + 1 is a new tensor sharing nothing: "
          f"{not r['rebound_shares']}")

    print("\nthe same operation in numpy and torch:")
    for name, by_numpy, by_torch in operations_demo():
        same = np.allclose(by_numpy, by_torch.numpy())
        print(f"  {name:<19} numpy {_rounded(by_numpy)}  torch {_rounded(by_torch)}  same: {same}")
    print("  note: numpy's array.dot(array) is a matrix product for 2-D arrays;"
          " torch.dot takes 1-D tensors only, use torch.mm or @")

    x, value, grad = mean_square_gradient()
    print("\nautograd: out = mean(x^2) for x = [[1, 2], [3, 4]]")
    print(f"  out = {value.item():g}   (1 + 4 + 9 + 16) / 4 = {30 / 4:g}")
    print(f"  x.grad = {grad.tolist()}   by hand 2x/4 = x/2 = {(x.detach() / 2).tolist()}")
    print(f"  autograd equals the hand gradient: {torch.allclose(grad, x.detach() / 2)}")
    return None
