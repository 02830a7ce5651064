"""Two ways to build the same net: a class with ``forward``, or ``nn.Sequential``.

They are the same function: give them the same weights and they give the same
outputs. Only the printout differs: the class calls ``F.relu`` inside
``forward``, so the ReLU is not a module and does not appear; Sequential lists
``ReLU()`` as its layer (1).
"""
from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from ..models.mlp import Net, sequential_net


def copy_weights(source: nn.Module, target: nn.Module) -> None:
    """Copy parameters in order: the names differ (``hidden.weight`` vs ``0.weight``),
    the shapes and order do not."""
    names = list(target.state_dict())
    values = list(source.state_dict().values())
    if len(names) != len(values):
        raise ValueError(f"{len(values)} tensors to copy into {len(names)}")
    target.load_state_dict(dict(zip(names, values)))


def same_function(seed: int = 1) -> tuple[nn.Module, nn.Module, float]:
    """Net(1, 10, 1) and its Sequential twin, given Net's weights: the largest
    difference of their outputs on 100 points of [-1, 1]."""
    torch.manual_seed(seed)
    net1 = Net(1, 10, 1)
    net2 = sequential_net(1, 10, 1)
    copy_weights(net1, net2)
    x = torch.linspace(-1, 1, 100).unsqueeze(1)
    with torch.no_grad():
        gap = (net1(x) - net2(x)).abs().max().item()
    return net1, net2, gap


def seeded_twins(seed: int = 1) -> float:
    """Built after the same ``torch.manual_seed``, the two draw their initial weights
    from the random stream in the same order (Linear, then Linear): the largest
    output difference, without copying anything."""
    torch.manual_seed(seed)
    net1 = Net(1, 10, 1)
    torch.manual_seed(seed)
    net2 = sequential_net(1, 10, 1)
    x = torch.linspace(-1, 1, 100).unsqueeze(1)
    with torch.no_grad():
        return (net1(x) - net2(x)).abs().max().item()


def run(out: Path) -> None:
    net1, net2, gap = same_function()
    print("class-based net (Net: layers in __init__, wiring in forward):")
    print(net1)
    print("nn.Sequential of the same layers:")
    print(net2)
    names1, names2 = list(net1.state_dict()), list(net2.state_dict())
    print(f"parameter names: {names1} vs {names2}")
    print(f"after copying Net's weights into the Sequential, max |net1(x) - net2(x)| on 100 points = {gap:g}")
    print(f"same function: {gap == 0.0}  (ReLU has no weights, so it does not need copying)")
    print(f"built after the same torch.manual_seed(1), without copying: max difference = {seeded_twins():g}"
          " (both initialise Linear(1, 10) then Linear(10, 1) from the same random stream)")
    return None
