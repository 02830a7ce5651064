"""RNN and LSTM: why gradients vanish or explode through time, what the LSTM's gates
compute, ``h_n`` against ``c_n``, and why a carried hidden state is detached.

Backpropagation through time multiplies one factor per step. For the scalar
recurrence ``h_t = w h_(t-1) + x_t`` the factor is ``w``, so the gradient k steps
back is ``w^k``: it vanishes when |w| < 1 and explodes when |w| > 1 (the notes' own
picture). A plain RNN's factor is its recurrent matrix times tanh's slope, and
the gradient dies within tens of steps. The LSTM's cell state ``c`` is updated by
``c_t = f_t * c_(t-1) + i_t * g_t``: along that line the factor is the forget gate
``f_t`` itself, with no matrix and no squashing, so when the net holds ``f`` near 1
the gradient survives. At initialisation ``f`` is about 0.5 and the LSTM's
gradient fades as fast as the RNN's; a forget gate opened by a bias of +2 (a common
initialisation is +1) shows what a trained gate can keep.
"""
from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from ..viz.plots import new_figure
from ._figure import save_figure
from .shapes import error_of

STEPS = 60
HIDDEN = 32


def scalar_factors(steps_back: int = 50) -> dict[float, float]:
    """d h_T / d x_(T-k) = w^k for h_t = w h_(t-1) + x_t, at k = ``steps_back``."""
    return {w: w ** steps_back for w in (0.9, 1.0, 1.1)}


def open_forget_gate(lstm: nn.LSTM, bias: float) -> nn.LSTM:
    """Add ``bias`` to the forget gate's bias (PyTorch orders the gates i, f, g, o)."""
    with torch.no_grad():
        lstm.bias_hh_l0[lstm.hidden_size: 2 * lstm.hidden_size] += bias
    return lstm


def recurrent_nets(seed: int = 0) -> dict[str, nn.Module]:
    """The three nets compared, each built after the same seed."""
    nets = {}
    for name in ("RNN", "LSTM", "LSTM, forget gate bias +2"):
        torch.manual_seed(seed)
        nets[name] = nn.RNN(1, HIDDEN, batch_first=True) if name == "RNN" else nn.LSTM(1, HIDDEN, batch_first=True)
    open_forget_gate(nets["LSTM, forget gate bias +2"], 2.0)
    return nets


def gradient_through_time(net: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """|d (sum of the last output) / d x_t| for every step t: how much each input still
    reaches the end. Index -1 is the last step, index 0 the first."""
    x = x.clone().requires_grad_()
    output, _ = net(x)
    output[:, -1].sum().backward()
    return x.grad[0].norm(dim=1)


def gradient_table(seed: int = 0, steps: int = STEPS) -> dict[str, torch.Tensor]:
    x = torch.randn(1, steps, 1, generator=torch.Generator().manual_seed(seed))  # the same sequence for all
    return {name: gradient_through_time(net, x) for name, net in recurrent_nets(seed).items()}


def lstm_step_by_hand(seed: int = 0) -> dict:
    """One LSTM step computed from its weights, next to nn.LSTM's own answer."""
    torch.manual_seed(seed)
    lstm = nn.LSTM(3, 4, batch_first=True)
    x, h, c = torch.randn(2, 3), torch.randn(2, 4), torch.randn(2, 4)
    gates = x @ lstm.weight_ih_l0.T + lstm.bias_ih_l0 + h @ lstm.weight_hh_l0.T + lstm.bias_hh_l0
    i, f, g, o = gates.chunk(4, dim=1)
    i, f, g, o = torch.sigmoid(i), torch.sigmoid(f), torch.tanh(g), torch.sigmoid(o)
    c_next = f * c + i * g          # forget part of the old cell, write the new candidate
    h_next = o * torch.tanh(c_next)  # what the step outputs
    with torch.no_grad():
        output, (h_n, c_n) = lstm(x.unsqueeze(1), (h.unsqueeze(0), c.unsqueeze(0)))
    return {"weights": tuple(lstm.weight_ih_l0.shape), "h_gap": (h_next - h_n[0]).abs().max().item(),
            "c_gap": (c_next - c_n[0]).abs().max().item(),
            "forget_mean": f.mean().item()}


def states_demo(seed: int = 0) -> dict:
    """What nn.LSTM returns for a batch of 2 sequences of 28 steps of 28 numbers."""
    torch.manual_seed(seed)
    lstm = nn.LSTM(28, 64, batch_first=True)
    with torch.no_grad():
        r_out, (h_n, c_n) = lstm(torch.randn(2, 28, 28))
    return {"r_out": tuple(r_out.shape), "h_n": tuple(h_n.shape), "c_n": tuple(c_n.shape),
            "last_is_h_n": torch.equal(r_out[:, -1, :], h_n[-1]), "last_is_c_n": torch.equal(r_out[:, -1, :], c_n[-1])}


def detach_demo(seed: int = 0) -> dict:
    """Two windows in a row, the state carried from the first to the second."""
    torch.manual_seed(seed)
    rnn = nn.RNN(1, 8, batch_first=True)
    first = torch.randn(1, 10, 1, requires_grad=True)
    second = torch.randn(1, 10, 1)

    def carried_without_detach():
        out1, h = rnn(first)
        out1.sum().backward()       # window 1 trained: its graph is freed
        out2, _ = rnn(second, h)    # h still points into window 1's graph
        out2.sum().backward()

    def reached_first_window(carry) -> bool:
        first.grad = None
        _, h = rnn(first)
        out2, _ = rnn(second, carry(h))
        out2.sum().backward()
        return first.grad is not None and bool(first.grad.abs().sum() > 0)

    return {"error": error_of(carried_without_detach),
            "kept_graph_reaches_back": reached_first_window(lambda h: h),
            "detached_reaches_back": reached_first_window(lambda h: h.detach())}


def trained_cells(cells=("lstm", "gru", "rnn")) -> dict[str, float]:
    """Test accuracy of lstm_mnist with each recurrent cell, on the same budget: one epoch of the offline
    4,000-digit MNIST subset, seed 1, one thread (the numbers do not depend on the machine's cores)."""
    import tempfile

    from .. import api

    accuracy = {}
    with tempfile.TemporaryDirectory(prefix="torchclassics-rnn-") as folder:
        empty = Path(folder) / "no_mnist"  # no MNIST files here and no download: the offline subset, always
        empty.mkdir()
        for cell in cells:
            result = api.run("lstm_mnist", out=Path(folder) / cell, figures=False, quiet=True, device="cpu",
                             cell=cell, epochs=1, seed=1, threads=1, data_root=str(empty), download=False)
            accuracy[cell] = result.metrics["test_accuracy"]
    return accuracy


def draw(table: dict[str, torch.Tensor], path: Path) -> Path:
    fig = new_figure(7, 4)
    ax = fig.add_subplot(1, 1, 1)
    for name, grads in table.items():
        back = grads.flip(0).numpy()  # steps back from the last
        ax.semilogy(range(len(back)), back, label=name)
    ax.set(xlabel="steps back from the last output", ylabel="|d output / d input| (log)",
           title=f"gradient through time, {len(back)} steps, hidden {HIDDEN}")
    ax.legend()
    return save_figure(fig, path)


def run(out: Path) -> Path:
    print("scalar recurrence h_t = w * h_(t-1) + x_t: the gradient 50 steps back is w^50")
    for w, factor in scalar_factors().items():
        print(f"  w = {w}: {factor:.3g}")
    table = gradient_table()
    shown = (0, 10, 20, 40, STEPS - 1)
    print(f"\n|d last output / d input k steps back|, one sequence of {STEPS} random numbers, hidden {HIDDEN}:")
    print("  " + " " * 26 + "".join(f"k={k:<9}" for k in shown))
    for name, grads in table.items():
        print(f"  {name:<26}" + "".join(f"{grads[-1 - k].item():<11.1e}" for k in shown))
    print("  at initialisation both fade more than a thousand-fold within 20 steps; an open forget gate keeps "
          "the gradient")

    step = lstm_step_by_hand()
    print(f"\none LSTM step by hand (weight_ih {step['weights']}: the four gates i, f, g, o stacked):")
    print("  gates = x W_ih^T + b_ih + h W_hh^T + b_hh, split in 4; i, f, o = sigmoid, g = tanh")
    print("  c' = f * c + i * g   (forget gate keeps old memory, input gate writes new)")
    print("  h' = o * tanh(c')    (output gate decides what is shown)")
    print(f"  differences from nn.LSTM: h {step['h_gap']:.1e}, c {step['c_gap']:.1e}; "
          f"mean forget gate at initialisation {step['forget_mean']:.2f}")

    s = states_demo()
    print("\nr_out, (h_n, c_n) = nn.LSTM(28, 64, batch_first=True)(x of shape (2, 28, 28)):")
    print(f"  r_out {s['r_out']} (every step's h), h_n {s['h_n']} (last h), c_n {s['c_n']} (last cell state)")
    print(f"  r_out[:, -1, :] equals h_n[-1]: {s['last_is_h_n']}; equals c_n[-1]: {s['last_is_c_n']}"
          " (the notes' h_c is c_n)")

    d = detach_demo()
    print("\ncarrying the hidden state from one window to the next:")
    print(f"  without detach, the second backward fails: {d['error']}")
    print(f"  had window 1's graph been kept (retain_graph=True), window 2's gradient would reach window 1: "
          f"{d['kept_graph_reaches_back']}; every backward would walk back to the very first window")
    print(f"  h.detach() (the notes' h_state.data): the gradient stops at the window's start; reaches window 1: "
          f"{d['detached_reaches_back']}. The state's value still carries over, only its history is cut")

    print("\ntrained: lstm_mnist with each cell, one epoch of the offline MNIST subset, seed 1:")
    accuracy = trained_cells()
    for cell, value in accuracy.items():
        print(f"  cell={cell:<5} test accuracy {value:.3f}")
    print("  the plain RNN learns far less on the same budget: the top rows have faded from its state by row 28")
    path = draw(table, out / "rnn_gradients.png")
    print(f"figure: {path.name}")
    return out
