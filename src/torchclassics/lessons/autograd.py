"""Autograd beyond one scalar loss: a non-scalar output's ``backward(gradient=...)``, several losses
combined into one scalar, and the last layer and loss of each problem type as the book lists them.

``backward()`` computes the gradient of a *scalar*. For a vector output ``y`` it needs a vector
``v`` of the same shape and computes ``v^T J`` (the vector-Jacobian product), which is the gradient
of the scalar ``(v * y).sum()``. Several losses are summed (with weights) into one scalar before
one ``backward()``; gradients of separate ``backward()`` calls add up to the same thing.

The book's last layers: a regression ends in a linear layer with one output (MSE loss); a binary
classifier in a sigmoid (binary cross-entropy); a multi-class classifier in a softmax (cross-entropy).
In PyTorch the sigmoid and the softmax are best left inside the loss (``BCEWithLogitsLoss``,
``CrossEntropyLoss`` take the linear layer's raw output, the logits): the same value, computed
without rounding the probability to 0 or 1 first.
"""
from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from .shapes import error_of


def vector_backward() -> dict:
    """y = x^2 element-wise: backward() refuses, backward(gradient=v) gives v * 2x."""
    x = torch.tensor([1.0, 2.0, 3.0], requires_grad=True)
    y = x * x
    refused = error_of(lambda: y.backward())
    v = torch.tensor([1.0, 0.1, 0.01])
    y.backward(gradient=v, retain_graph=True)
    with_gradient = x.grad.clone()
    x.grad = None
    (v * y).sum().backward()
    return {"refused": refused, "with_gradient": rounded(with_gradient), "as_scalar": rounded(x.grad),
            "by_hand": rounded(v * 2 * x.detach())}


def rounded(values: torch.Tensor) -> list[float]:
    return [round(value, 6) for value in values.tolist()]


def combined_losses(seed: int = 0) -> dict:
    """A net with a value head and a class head: one backward of mse + 0.5 * ce, against two backwards."""
    torch.manual_seed(seed)
    body, value_head, class_head = nn.Linear(4, 8), nn.Linear(8, 1), nn.Linear(8, 3)
    x, value, label = torch.randn(16, 4), torch.randn(16, 1), torch.randint(0, 3, (16,))

    def losses():
        h = torch.relu(body(x))
        return nn.functional.mse_loss(value_head(h), value), nn.functional.cross_entropy(class_head(h), label)

    mse, ce = losses()
    (mse + 0.5 * ce).backward()
    together = body.weight.grad.clone()
    body.weight.grad = None
    mse, ce = losses()
    mse.backward(retain_graph=True)  # the second backward goes through the same body: keep its graph
    (0.5 * ce).backward()
    return {"mse": mse.item(), "ce": ce.item(), "same": torch.allclose(together, body.weight.grad, atol=1e-7)}


def last_layers(seed: int = 0) -> list[tuple[str, str, float, float]]:
    """(problem, last layer + loss, loss with the book's last layer, loss with the logits form)."""
    torch.manual_seed(seed)
    features = torch.randn(5, 6)
    price = torch.randn(5, 1)
    is_shirt = torch.tensor([[1.0], [0.0], [1.0], [1.0], [0.0]])
    kind = torch.tensor([0, 3, 1, 2, 3])  # T-shirt, jeans, shirt, dress
    regression, binary, multi = nn.Linear(6, 1), nn.Linear(6, 1), nn.Linear(6, 4)
    with torch.no_grad():
        mse = nn.MSELoss()(regression(features), price).item()
        logit, logits = binary(features), multi(features)
        bce = nn.BCELoss()(torch.sigmoid(logit), is_shirt).item()
        bce_logits = nn.BCEWithLogitsLoss()(logit, is_shirt).item()
        nll = nn.NLLLoss()(torch.log(torch.softmax(logits, dim=1)), kind).item()
        ce = nn.CrossEntropyLoss()(logits, kind).item()
    return [("regression (price)", "Linear(6, 1), MSELoss", mse, mse),
            ("binary (T-shirt or not)", "Linear(6, 1) + Sigmoid, BCELoss | BCEWithLogitsLoss", bce, bce_logits),
            ("multi-class (4 kinds)", "Linear(6, 4) + Softmax, log + NLLLoss | CrossEntropyLoss", nll, ce)]


def saturated_logit() -> dict:
    """A confident wrong answer (logit 40, label 0): the sigmoid rounds to 1.0 in float32 and BCELoss
    clamps its log at -100; BCEWithLogitsLoss gives the true loss, 40."""
    logit, label = torch.tensor([40.0]), torch.tensor([0.0])
    return {"sigmoid": torch.sigmoid(logit).item(), "bce": nn.BCELoss()(torch.sigmoid(logit), label).item(),
            "bce_logits": nn.BCEWithLogitsLoss()(logit, label).item(),
            "softmax_twice": nn.CrossEntropyLoss()(torch.softmax(torch.tensor([[9.0, 0.0]]), 1),
                                                   torch.tensor([0])).item(),
            "logits_once": nn.CrossEntropyLoss()(torch.tensor([[9.0, 0.0]]), torch.tensor([0])).item()}


def run(out: Path) -> None:
    v = vector_backward()
    print("y = x * x for x = [1, 2, 3]: y is a vector")
    print(f"  y.backward() refuses: {v['refused']}")
    print(f"  y.backward(gradient=v), v = [1, 0.1, 0.01]: x.grad = {v['with_gradient']}")
    print(f"  (v * y).sum().backward():                  x.grad = {v['as_scalar']}")
    print(f"  by hand v * 2x = {v['by_hand']}: the gradient argument weighs each output")

    c = combined_losses()
    print("\ntwo heads on one body, one loss each (MSE for a value, cross-entropy for a class):")
    print(f"  mse {c['mse']:.4f}, ce {c['ce']:.4f}; total = mse + 0.5 * ce, one backward")
    print(f"  the body's gradient equals that of two backwards (mse, then 0.5 * ce), added: {c['same']}")

    print("\nthe last layer and loss of each problem type (the book's list; loss of an untrained layer):")
    for problem, layers, book, logits in last_layers():
        print(f"  {problem:<24} {layers:<58} {book:.6f} {logits:.6f}")
    s = saturated_logit()
    print(f"\nwhy the logits form: logit 40 for label 0: sigmoid = {s['sigmoid']} in float32, "
          f"BCELoss = {s['bce']:g} (clamped), BCEWithLogitsLoss = {s['bce_logits']:g}")
    print(f"  softmax before CrossEntropyLoss applies it twice: {s['softmax_twice']:.4f} "
          f"instead of {s['logits_once']:.6f} for a right, confident answer")
    return None
