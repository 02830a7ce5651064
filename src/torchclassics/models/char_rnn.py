"""The character-level RNN that reads a name letter by letter and names its language."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

CELLS = {"rnn": nn.RNN, "gru": nn.GRU, "lstm": nn.LSTM}


class CharRNN(nn.Module):
    """One-hot letters (index 0 = padding) -> ``cell`` -> Linear on the state after each name's
    last letter.

    A batch is padded on the right, and a one-way RNN's output at step t depends on steps
    up to t only, so the output at a name's last letter is exactly what the RNN gives the
    name alone: the padding is masked by picking that step, with no packing needed."""

    def __init__(self, n_letters: int, hidden: int, n_classes: int, cell: str = "gru"):
        super().__init__()
        self.n_inputs = n_letters + 1  # the padding index has its own (never read) input
        self.rnn = CELLS[cell](self.n_inputs, hidden, batch_first=True)
        self.out = nn.Linear(hidden, n_classes)

    def forward(self, codes: torch.Tensor) -> torch.Tensor:
        """(batch, letters) int64 -> (batch, classes) logits."""
        lengths = (codes != 0).sum(1).clamp(min=1)
        outputs, _ = self.rnn(F.one_hot(codes, self.n_inputs).float())
        last = outputs[torch.arange(len(codes), device=codes.device), lengths - 1]
        return self.out(last)
