"""Loss functions, each on a tiny example checked against a hand computation.

"By hand" means plain Python ``math`` on lists: no torch in the check, so a
match says that the library computes the formula written next to it.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn


@dataclass
class Check:
    name: str
    formula: str
    by_torch: float
    by_hand: float

    @property
    def equal(self) -> bool:
        return math.isclose(self.by_torch, self.by_hand, rel_tol=1e-5, abs_tol=1e-6)


def _log_softmax(row: list[float]) -> list[float]:
    log_total = math.log(sum(math.exp(v) for v in row))
    return [v - log_total for v in row]


def _sigmoid(z: float) -> float:
    return 1 / (1 + math.exp(-z))


# Regression: predictions and targets of four points.
PRED = [2.5, 0.0, 2.0, 8.0]
TARGET = [3.0, -0.5, 2.0, 7.0]
# Classification: raw scores (logits) of three samples over three classes.
LOGITS = [[2.0, 1.0, 0.1], [0.5, 2.5, 0.3], [0.2, 0.4, 1.7]]
LABELS = [0, 2, 2]
CLASS_WEIGHTS = [1.0, 1.0, 5.0]  # class 2 is rare: its mistakes count five times


def regression_checks() -> list[Check]:
    pred, target = torch.tensor(PRED), torch.tensor(TARGET)
    diffs = [p - t for p, t in zip(PRED, TARGET)]
    smooth = [0.5 * d * d if abs(d) < 1 else abs(d) - 0.5 for d in diffs]  # beta = 1
    return [
        Check("MSELoss", "mean((p - t)^2)", nn.MSELoss()(pred, target).item(),
              sum(d * d for d in diffs) / len(diffs)),
        Check("L1Loss", "mean(|p - t|)", nn.L1Loss()(pred, target).item(), sum(abs(d) for d in diffs) / len(diffs)),
        Check("SmoothL1Loss", "mean(0.5 d^2 if |d| < 1 else |d| - 0.5)", nn.SmoothL1Loss()(pred, target).item(),
              sum(smooth) / len(smooth)),
    ]


def classification_checks() -> list[Check]:
    logits, labels = torch.tensor(LOGITS), torch.tensor(LABELS)
    nll_each = [-_log_softmax(row)[y] for row, y in zip(LOGITS, LABELS)]
    weights = [CLASS_WEIGHTS[y] for y in LABELS]
    log_probs = torch.log_softmax(logits, dim=1)
    return [
        Check("CrossEntropyLoss", "mean(-log softmax(z)[y])", nn.CrossEntropyLoss()(logits, labels).item(),
              sum(nll_each) / len(nll_each)),
        Check("NLLLoss", "mean(-logp[y]) on log_softmax", nn.NLLLoss()(log_probs, labels).item(),
              sum(nll_each) / len(nll_each)),
        Check("NLLLoss(weight)", "sum(w[y] * -logp[y]) / sum(w[y])",
              nn.NLLLoss(weight=torch.tensor(CLASS_WEIGHTS))(log_probs, labels).item(),
              sum(w * n for w, n in zip(weights, nll_each)) / sum(weights)),
    ]


def binary_check() -> Check:
    logits, targets = [1.5, -0.3, 0.8], [1.0, 0.0, 0.0]
    each = [-(y * math.log(_sigmoid(z)) + (1 - y) * math.log(1 - _sigmoid(z))) for z, y in zip(logits, targets)]
    by_torch = nn.BCEWithLogitsLoss()(torch.tensor(logits), torch.tensor(targets)).item()
    return Check("BCEWithLogitsLoss", "mean(-(y log s(z) + (1-y) log(1 - s(z))))", by_torch, sum(each) / len(each))


# Per-pixel classification (segmentation): one 2x2 image, 2 classes, scores per pixel.
PIXEL_SCORES = [[[1.0, -1.0], [0.5, 2.0]],   # class 0 score at each pixel
                [[0.0, 1.0], [1.5, -0.5]]]   # class 1 score at each pixel
PIXEL_LABELS = [[0, 1], [1, 0]]


def pixel_check() -> Check:
    """The old ``NLLLoss2d`` is ``NLLLoss`` on (N, C, H, W) log-probabilities and (N, H, W) targets."""
    scores = torch.tensor([PIXEL_SCORES])  # (N=1, C=2, H=2, W=2)
    log_probs = torch.log_softmax(scores, dim=1)
    by_torch = nn.NLLLoss()(log_probs, torch.tensor([PIXEL_LABELS])).item()
    each = []
    for i in range(2):
        for j in range(2):
            pixel = [PIXEL_SCORES[c][i][j] for c in range(2)]
            each.append(-_log_softmax(pixel)[PIXEL_LABELS[i][j]])
    return Check("NLLLoss 2-D", "mean over pixels of -logp[y_ij]", by_torch, sum(each) / len(each))


def book_cross_entropy(true_label: int, prediction: float) -> float:
    """The binary cross-entropy of the book ("Deep Learning with PyTorch", chapter 3):
    -log p for a positive, -log(1 - p) for a negative."""
    return -math.log(prediction) if true_label == 1 else -math.log(1 - prediction)


def book_formula_checks(p: float = 0.1) -> list[Check]:
    """The book's -log p is nn.CrossEntropyLoss on scores whose softmax is [1 - p, p]:
    log-probabilities are valid logits, since softmax(log q) = q."""
    logits = torch.log(torch.tensor([[1 - p, p]]))
    return [Check(f"book -log p (label {y}, p={p})", "CrossEntropyLoss(log[1-p, p], y)",
                  nn.CrossEntropyLoss()(logits, torch.tensor([y])).item(), book_cross_entropy(y, p))
            for y in (1, 0)]


def all_checks() -> list[Check]:
    return regression_checks() + classification_checks() + [binary_check(), pixel_check()] + book_formula_checks()


def second_backward() -> dict:
    """The book called ``output.backward()`` twice on one graph (once inside print):
    the second call fails because the first freed the graph's saved tensors."""
    g = torch.Generator().manual_seed(1)
    scores = torch.randn(3, 5, generator=g, requires_grad=True)
    target = torch.randint(0, 5, (3,), generator=g)
    output = nn.CrossEntropyLoss()(scores, target)
    returned = output.backward()
    first_grad = scores.grad.clone()
    try:
        output.backward()
        error = None
    except RuntimeError as err:
        error = str(err).splitlines()[0]
    # The fix the course notes found: keep the graph on the first call. Gradients then add up.
    scores.grad = None
    output = nn.CrossEntropyLoss()(scores, target)
    output.backward(retain_graph=True)
    output.backward()
    return {"returned": returned, "error": error,
            "accumulated_twice": torch.allclose(scores.grad, 2 * first_grad)}


def run(out: Path) -> None:
    print(f"{'loss':<28} {'torch':>10} {'by hand':>10}  equal  formula")
    for check in all_checks():
        print(f"{check.name:<28} {check.by_torch:>10.6f} {check.by_hand:>10.6f}  {check.equal!s:<5}  {check.formula}")
    print("CrossEntropyLoss takes raw scores (it applies log_softmax itself); NLLLoss takes log-probabilities.")
    plain, weighted = classification_checks()[1:]
    print(f"NLLLoss with weights {CLASS_WEIGHTS}: each class-2 sample counts five times, so the mean moves "
          f"from {plain.by_torch:.4f} to {weighted.by_torch:.4f}; in imbalanced data this keeps the rare "
          "class from being ignored.")
    result = second_backward()
    print(f"\nsecond backward on one graph -> RuntimeError: {result['error']}")
    print("  why: backward() frees the tensors the graph saved for it, so a graph can be walked once.")
    print("  fix: backward(retain_graph=True) on the first call, only if you really need a second walk;"
          f" the gradients then add up (grad after two calls = 2 x one call: {result['accumulated_twice']}).")
    print(f"  and print(output.backward()) prints {result['returned']}: backward fills .grad, it returns nothing.")
    return None
