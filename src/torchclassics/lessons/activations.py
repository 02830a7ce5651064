"""Activation functions and their gradients, with the two ways they fail.

Each function is drawn next to its derivative, which autograd gives us: the
derivative is what backpropagation multiplies by, so its shape explains the
behaviour. Saturation: Sigmoid and Tanh have a near-zero gradient for large
|x|. Dying ReLU: ReLU's gradient is exactly zero for x < 0, so a unit whose
input is always negative never learns again.
"""
from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from ..viz.plots import new_figure
from ._figure import save_figure


def activations() -> dict[str, nn.Module]:
    """The modules, in the order they are drawn (PReLU's slope starts at 0.25, RReLU is in eval mode)."""
    modules = {
        "Sigmoid": nn.Sigmoid(), "Tanh": nn.Tanh(), "ReLU": nn.ReLU(), "Softplus": nn.Softplus(),
        "LeakyReLU": nn.LeakyReLU(0.01), "PReLU": nn.PReLU(), "RReLU": nn.RReLU(),
        "ELU": nn.ELU(), "GELU": nn.GELU(),
    }
    # RReLU draws a random negative slope in training mode; in eval mode it uses
    # the mean slope (lower + upper) / 2, which is what a curve can show.
    modules["RReLU"].eval()
    return modules


def value_and_gradient(module: nn.Module, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """f(x) and f'(x) elementwise; summing makes each x's gradient its own derivative."""
    x = x.detach().clone().requires_grad_(True)
    y = module(x)
    (grad,) = torch.autograd.grad(y.sum(), x)
    return y.detach(), grad


def saturation() -> dict[str, float]:
    """Sigmoid's and Tanh's gradients at x = 0 and x = 10."""
    x = torch.tensor([0.0, 10.0])
    _, sig = value_and_gradient(nn.Sigmoid(), x)
    _, tanh = value_and_gradient(nn.Tanh(), x)
    return {"sigmoid_0": sig[0].item(), "sigmoid_10": sig[1].item(),
            "tanh_0": tanh[0].item(), "tanh_10": tanh[1].item()}


def dead_units(activation: nn.Module | None = None, bias: float = -10.0, seed: int = 0) -> tuple[int, int]:
    """A Linear(4, 8) layer + ``activation`` (ReLU by default) whose bias is pushed far
    negative, as one large update can do: how many of its 8 units get a zero
    gradient on a whole batch, out of 8."""
    activation = activation or nn.ReLU()
    g = torch.Generator().manual_seed(seed)
    layer = nn.Linear(4, 8)
    with torch.no_grad():
        layer.weight.copy_(torch.randn(8, 4, generator=g) * 0.5)
        layer.bias.fill_(bias)
    x = torch.randn(64, 4, generator=g)
    activation(layer(x)).sum().backward()
    dead = int((layer.weight.grad.abs().sum(dim=1) == 0).sum())
    return dead, layer.out_features


def draw(path: Path, x: torch.Tensor) -> Path:
    fig = new_figure(12, 10)
    for i, (name, module) in enumerate(activations().items(), start=1):
        y, grad = value_and_gradient(module, x)
        ax = fig.add_subplot(3, 3, i)
        ax.plot(x.numpy(), y.numpy(), lw=2, label=name)
        ax.plot(x.numpy(), grad.numpy(), "--", lw=2, label="gradient")
        ax.axhline(0, color="grey", lw=0.5)
        ax.set(title=name, ylim=(-1.5, 3.0))
        ax.legend(loc="upper left", fontsize=8)
    return save_figure(fig, path)


def run(out: Path) -> Path:
    x = torch.linspace(-5, 5, 201)
    probe = torch.tensor([-3.0, -0.5, 0.0, 0.5, 3.0])
    print(f"f(x) and f'(x) at x = {probe.tolist()}:")
    for name, module in activations().items():
        y, grad = value_and_gradient(module, probe)
        print(f"  {name:<10} f  {[round(v, 4) for v in y.tolist()]}")
        print(f"  {'':<10} f' {[round(v, 4) for v in grad.tolist()]}")
    s = saturation()
    print(f"saturation: sigmoid'(0) = {s['sigmoid_0']:.4f} but sigmoid'(10) = {s['sigmoid_10']:.2e} and "
          f"tanh'(10) = {s['tanh_10']:.1e} in float32: a saturated unit passes almost no gradient back.")
    dead, total = dead_units(nn.ReLU())
    leaky_dead, _ = dead_units(nn.LeakyReLU(0.01))
    print(f"dying ReLU: with the bias at -10, {dead} of {total} ReLU units output 0 for every input and their "
          f"weights get gradient 0, so they stop learning; with LeakyReLU {leaky_dead} of {total} are stuck.")
    path = draw(out / "activations.png", x)
    print(f"figure: {path.name} (solid: f(x), dashed: f'(x))")
    return out
