"""The LSTM of the MNIST lesson: an image read row by row, as a sequence."""
from __future__ import annotations

import torch
from torch import nn

CELLS = {"lstm": nn.LSTM, "gru": nn.GRU, "rnn": nn.RNN}  # the notes' LSTM, and what it is compared with


class RowLSTM(nn.Module):
    """Each of the 28 rows is one time step of 28 inputs; the last step's output goes to Linear(64, 10).

    ``cell`` picks the recurrent layer: ``lstm`` (the lesson's), ``gru`` or ``rnn`` (plain tanh RNN),
    each with the same hidden size, so the three differ by their memory alone.
    Takes (B, 28, 28) or (B, 1, 28, 28), so it reads the same batches as the CNN."""

    def __init__(self, rows: int = 28, hidden: int = 64, n_classes: int = 10, cell: str = "lstm"):
        super().__init__()
        self.rows = rows
        self.rnn = CELLS[cell](input_size=rows, hidden_size=hidden, num_layers=1, batch_first=True)
        self.out = nn.Linear(hidden, n_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        sequence = x.reshape(x.shape[0], -1, self.rows)  # (batch, time step = row, input = pixels of the row)
        r_out, _ = self.rnn(sequence)                      # None as the first state: zeros; LSTM's is (h_n, h_c)
        return self.out(r_out[:, -1, :])                   # the output at the last time step
