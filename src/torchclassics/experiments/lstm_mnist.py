"""Handwritten digits read row by row by an LSTM (the tutorial series' "RNN classification")."""
from __future__ import annotations

from ..models.lstm import RowLSTM
from ..registry import experiment
from .cnn_mnist import MnistClassifier


@experiment("lstm_mnist")
class LstmMnist(MnistClassifier):
    """Trains without CUDA graphs (no ``cuda_graphs`` parameter): cuDNN's LSTM captured with
    ``make_graphed_callables`` gave NaN losses within two epochs (H100, torch 2.11)."""

    def make_model(self, params, device):
        # Runs written before the cell parameter existed were LSTMs.
        return RowLSTM(rows=28, hidden=params.get("hidden", 64), n_classes=10, cell=params.get("cell", "lstm"))
