"""Save and restore a trained net: the state_dict way, and the whole net without pickle.

The old lesson saved the whole network with ``torch.save(net, 'net.pkl')`` and
read it back with ``torch.load``. Since PyTorch 2.6 ``torch.load`` defaults to
``weights_only=True`` and refuses such a file: a pickle names classes to import
and call, so loading one runs whatever code the file asks for. What replaces it:

* parameters only: ``torch.save(net.state_dict())`` + ``net.load_state_dict(
  torch.load(path, weights_only=True))`` into a net built by the same code;
* the whole net (architecture included): a ``torch.export`` archive (``.pt2``),
  a traced graph plus weights that ``torch.export.load`` reads without pickle.
"""
from __future__ import annotations

import tempfile
from pathlib import Path

import torch
from torch import nn

from ..core.files import replaced_atomically
from ..data.synthetic import parabola
from ..models.mlp import sequential_net
from ..viz.plots import new_figure
from ._figure import save_figure


def train_net(x: torch.Tensor, y: torch.Tensor, seed: int = 1, steps: int = 100) -> nn.Module:
    """The tutorial series' net1: Sequential 1-10-1, SGD lr 0.5, 100 full-batch steps of MSE."""
    torch.manual_seed(seed)
    net = sequential_net(1, 10, 1)
    optimizer = torch.optim.SGD(net.parameters(), lr=0.5)
    loss_fn = nn.MSELoss()
    for _ in range(steps):
        loss = loss_fn(net(x), y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return net


def save_and_restore_params(net: nn.Module, path: Path) -> nn.Module:
    """state_dict to disk, then into a freshly built net of the same architecture."""
    with replaced_atomically(path) as tmp:
        torch.save(net.state_dict(), tmp)
    restored = sequential_net(1, 10, 1)
    restored.load_state_dict(torch.load(path, weights_only=True))
    return restored


def export_and_load_whole(net: nn.Module, example: torch.Tensor, path: Path) -> nn.Module:
    """The whole net as a torch.export archive; any batch size is allowed on load."""
    batch = torch.export.Dim("batch")
    exported = torch.export.export(net, (example,), dynamic_shapes={"input": {0: batch}})
    with replaced_atomically(path) as tmp:
        torch.export.save(exported, tmp)
    return torch.export.load(path).module()


def pickled_module_refusal(net: nn.Module) -> str:
    """Pickle the whole module the old way (in a throwaway folder) and let
    ``torch.load(weights_only=True)`` refuse it: the reason it gives."""
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "net.pkl"
        torch.save(net, path)
        try:
            torch.load(path, weights_only=True)
        except Exception as err:  # UnpicklingError; its module moved between versions
            return _refusal_reason(str(err))
    return "not refused"


def _refusal_reason(message: str) -> str:
    for line in message.splitlines():
        if "Unsupported global" in line:
            return line.strip().split(". Please")[0]
    return message.splitlines()[0]


def draw(x: torch.Tensor, y: torch.Tensor, fits: dict[str, torch.Tensor], path: Path) -> Path:
    fig = new_figure(12, 3.8)
    for i, (title, prediction) in enumerate(fits.items(), start=1):
        ax = fig.add_subplot(1, len(fits), i)
        ax.scatter(x.numpy(), y.numpy(), s=8)
        ax.plot(x.numpy(), prediction.numpy(), "r-", lw=4)
        mse = nn.functional.mse_loss(prediction, y).item()
        ax.set(title=f"{title}\nMSE {mse:.4f}")
    return save_figure(fig, path)


def run(out: Path) -> Path:
    out.mkdir(parents=True, exist_ok=True)
    x, y = parabola(100, seed=1, noise=0.2)
    net1 = train_net(x, y)
    net3 = save_and_restore_params(net1, out / "net_params.pt")
    net2 = export_and_load_whole(net1, x, out / "net.pt2")
    with torch.no_grad():
        fits = {"net1: trained": net1(x), "net2: whole net (torch.export)": net2(x),
                "net3: state_dict restored": net3(x)}
    reference = fits["net1: trained"]
    for title, prediction in fits.items():
        print(f"{title:<32} MSE {nn.functional.mse_loss(prediction, y).item():.6f}   "
              f"identical to net1: {torch.equal(prediction, reference)}")
    print(f"state_dict: {out / 'net_params.pt'} (tensors only; needs the code that builds the net)")
    print(f"whole net: {out / 'net.pt2'} (torch.export archive: graph + weights, loads without the class)")
    three = torch.tensor([[-0.5], [0.0], [0.5]])
    with torch.no_grad():
        print(f"net2 takes any batch size (a dynamic 'batch' dimension): net2({three.flatten().tolist()}) = "
              f"{[round(v, 4) for v in net2(three).flatten().tolist()]}")
    reason = pickled_module_refusal(net1)
    print(f"torch.save(net) + torch.load(weights_only=True) is refused: {reason}")
    print("  why: a pickled module names code to import and run when loaded; a file from elsewhere could run "
          "anything. weights_only=True reads tensors and plain containers only.")
    path = draw(x, y, fits, out / "save_restore.png")
    print(f"figure: {path.name} (three identical fits)")
    return out
