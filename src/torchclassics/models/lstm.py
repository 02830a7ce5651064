"""The LSTM of the MNIST lesson: an image read row by row, as a sequence."""
from __future__ import annotations

import torch
from torch import nn


class RowLSTM(nn.Module):
    """Each of the 28 rows is one time step of 28 inputs; the last step's output goes to Linear(64, 10).

    Takes (B, 28, 28) or (B, 1, 28, 28), so it reads the same batches as the CNN."""

    def __init__(self, rows: int = 28, hidden: int = 64, n_classes: int = 10):
        super().__init__()
        self.rows = rows
        self.rnn = nn.LSTM(input_size=rows, hidden_size=hidden, num_layers=1, batch_first=True)
        self.out = nn.Linear(hidden, n_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        sequence = x.reshape(x.shape[0], -1, self.rows)  # (batch, time step = row, input = pixels of the row)
        r_out, (h_n, h_c) = self.rnn(sequence)             # None as the first hidden state: zeros
        return self.out(r_out[:, -1, :])                   # the output at the last time step
