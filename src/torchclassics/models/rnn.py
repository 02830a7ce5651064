"""The recurrent net of the sin -> cos lesson."""
from __future__ import annotations

from torch import nn


class SinCosRNN(nn.Module):
    """nn.RNN(1 -> hidden) with a linear head applied at every time step.

    ``forward(x, h)`` returns ``(prediction, h)``: the hidden state goes in and comes out,
    so the caller can carry it from one window of the curve to the next."""

    def __init__(self, hidden: int = 32):
        super().__init__()
        self.rnn = nn.RNN(input_size=1, hidden_size=hidden, num_layers=1, batch_first=True)
        self.out = nn.Linear(hidden, 1)

    def forward(self, x, h_state=None):
        r_out, h_state = self.rnn(x, h_state)  # r_out: (batch, time, hidden)
        return self.out(r_out), h_state        # the head runs on every step at once
