"""Layers, the book chapter's way: nn.Linear's shapes, chaining layers, and why a stack of
linear layers without an activation is one linear layer.

Linear(in, out) holds ``weight`` (out, in) and ``bias`` (out,) and computes
``x @ weight.T + bias`` for every row of x. Two of them in a row are
``x @ (W2 W1).T + (W2 b1 + b2)``: one linear layer again (the book's
``Y = 2(3X) = 6X``). So stacking linear layers adds parameters but nothing they
can express; an activation between them is what makes depth useful. The book's
class example has two bugs (``__forward__``, ``nn.ReLU(out)``); both are run here.
"""
from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from ..viz.plots import new_figure
from ._figure import save_figure
from .shapes import error_of


def linear_shapes(seed: int = 1) -> dict:
    """Linear(10, 5) on one sample of 10 numbers, and the same by hand."""
    torch.manual_seed(seed)
    layer = nn.Linear(in_features=10, out_features=5)
    x = torch.randn(1, 10)
    by_hand = x @ layer.weight.T + layer.bias
    return {"weight": tuple(layer.weight.shape), "bias": tuple(layer.bias.shape), "out": tuple(layer(x).shape),
            "by_hand_gap": (layer(x) - by_hand).abs().max().item(),
            "parameters": sum(p.numel() for p in layer.parameters())}


def collapse(seed: int = 1) -> dict:
    """Linear(10, 5) then Linear(5, 2), and the single Linear(10, 2) it equals."""
    torch.manual_seed(seed)
    first, second = nn.Linear(10, 5), nn.Linear(5, 2)
    single = nn.Linear(10, 2)
    with torch.no_grad():
        single.weight.copy_(second.weight @ first.weight)                 # W = W2 W1
        single.bias.copy_(second.weight @ first.bias + second.bias)       # b = W2 b1 + b2
        x = torch.randn(1000, 10)
        gap = (second(first(x)) - single(x)).abs().max().item()
    return {"chain_out": tuple(second(first(x[:1])).shape), "gap": gap}


def fit(model: nn.Module, x: torch.Tensor, y: torch.Tensor, steps: int = 300) -> float:
    """Full-batch L-BFGS on the MSE (here it converges in under a hundred iterations); the final MSE."""
    optimizer = torch.optim.LBFGS(model.parameters(), lr=1.0, max_iter=steps, line_search_fn="strong_wolfe")

    def closure():
        optimizer.zero_grad()
        loss = nn.functional.mse_loss(model(x), y)
        loss.backward()
        return loss

    optimizer.step(closure)
    with torch.no_grad():
        return nn.functional.mse_loss(model(x), y).item()


def parabola_fits(seed: int = 1) -> dict:
    """y = x^2 fitted by three stacked Linear layers, with and without a ReLU between them,
    beside the best straight line (least squares)."""
    x = torch.linspace(-1, 1, 100).unsqueeze(1)
    y = x.pow(2)
    design = torch.cat([x, torch.ones_like(x)], dim=1)
    line = design @ torch.linalg.lstsq(design, y).solution
    torch.manual_seed(seed)
    stacked = nn.Sequential(nn.Linear(1, 10), nn.Linear(10, 10), nn.Linear(10, 1))
    torch.manual_seed(seed)
    with_relu = nn.Sequential(nn.Linear(1, 10), nn.ReLU(), nn.Linear(10, 10), nn.ReLU(), nn.Linear(10, 1))
    results = {"x": x, "y": y, "line": line, "line_mse": nn.functional.mse_loss(line, y).item(),
               "stacked_parameters": sum(p.numel() for p in stacked.parameters())}
    for name, model in (("stacked", stacked), ("relu", with_relu)):
        results[f"{name}_mse"] = fit(model, x, y)
        with torch.no_grad():
            results[name] = model(x)
    return results


class MyFirstNetwork(nn.Module):
    """The book's MyFirstNetwork as printed: ``__forward__`` and ``nn.ReLU(out)``."""

    def __init__(self, input_size, hidden_size, output_size):
        super().__init__()
        self.layer1 = nn.Linear(input_size, hidden_size)
        self.layer2 = nn.Linear(hidden_size, output_size)

    def __forward__(self, input):  # the bug shown: nn.Module calls forward, never __forward__
        out = self.layer1(input)
        out = nn.ReLU(out)
        out = self.layer2(out)
        return out


class MyFirstNetworkFixed(MyFirstNetwork):
    """The same layers, wired in ``forward``, with the ReLU applied to the tensor."""

    def forward(self, input):
        return self.layer2(torch.relu(self.layer1(input)))


class MyFirstNetworkNamedForward(MyFirstNetwork):
    """Renaming the method alone is not enough: ``nn.ReLU(out)`` builds a module, it applies nothing."""

    forward = MyFirstNetwork.__forward__


def book_bugs() -> dict:
    x = torch.randn(3, 10)
    return {"forward_missing": error_of(lambda: MyFirstNetwork(10, 5, 2)(x)),
            "relu_module": error_of(lambda: MyFirstNetworkNamedForward(10, 5, 2)(x)),
            "fixed_out": tuple(MyFirstNetworkFixed(10, 5, 2)(x).shape)}


def draw(results: dict, path: Path) -> Path:
    fig = new_figure(6, 4)
    ax = fig.add_subplot(1, 1, 1)
    x = results["x"].flatten().numpy()
    ax.plot(x, results["y"].flatten().numpy(), "k.", ms=4, label="y = x^2")
    ax.plot(x, results["line"].flatten().numpy(), "b-", lw=4, alpha=0.4,
            label=f"best straight line, MSE {results['line_mse']:.4f}")
    ax.plot(x, results["stacked"].flatten().numpy(), "r--",
            label=f"3 Linear layers, no activation, MSE {results['stacked_mse']:.4f}")
    ax.plot(x, results["relu"].flatten().numpy(), "g-", label=f"with ReLU between, MSE {results['relu_mse']:.5f}")
    ax.set(xlabel="x", title="stacked linear layers are one linear layer")
    ax.legend(fontsize=8, loc="upper center")
    return save_figure(fig, path)


def run(out: Path) -> Path:
    s = linear_shapes()
    print(f"nn.Linear(10, 5): weight {s['weight']} (out, in), bias {s['bias']}, {s['parameters']} parameters")
    print(f"  input (1, 10) -> output {s['out']}; x @ weight.T + bias by hand differs by {s['by_hand_gap']:.1e}")
    c = collapse()
    print(f"Linear(10, 5) then Linear(5, 2): input (1, 10) -> output {c['chain_out']}")
    print(f"  one Linear(10, 2) with W = W2 @ W1 and b = W2 @ b1 + b2 gives the same outputs on 1,000 inputs: "
          f"largest difference {c['gap']:.1e} (float rounding)")
    r = parabola_fits()
    print("fitting y = x^2 on 100 points of [-1, 1] (L-BFGS, to convergence):")
    print(f"  best straight line (least squares)      MSE {r['line_mse']:.6f}")
    print(f"  Linear(1,10), Linear(10,10), Linear(10,1) MSE {r['stacked_mse']:.6f}: the same, "
          f"{r['stacked_parameters']} parameters for a line")
    print(f"  the same with ReLU between the layers   MSE {r['relu_mse']:.6f}")
    b = book_bugs()
    print("the book's MyFirstNetwork as printed:")
    print(f"  __forward__ is never called: NotImplementedError: {b['forward_missing']}")
    print(f"  named forward, nn.ReLU(out) makes a layer instead of applying one: TypeError: {b['relu_module']}")
    print(f"  fixed (forward, torch.relu(out) or a self.relu = nn.ReLU() layer): output {b['fixed_out']}")
    path = draw(r, out / "layers.png")
    print(f"figure: {path.name}")
    return out
