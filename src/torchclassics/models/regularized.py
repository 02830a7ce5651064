"""The nets of the tutorial series' dropout and batch-normalization lessons."""
from __future__ import annotations

import torch
from torch import nn

ACTIVATIONS = {"tanh": nn.Tanh, "relu": nn.ReLU, "sigmoid": nn.Sigmoid}


def dropout_net(hidden: int, p: float) -> nn.Sequential:
    """The dropout lesson's 1 -> hidden -> hidden -> 1 ReLU net, ``Dropout(p)`` after each hidden
    Linear as the lesson places it (before ReLU: the same function as after it, since
    ReLU(m * z) = m * ReLU(z) for a mask m >= 0). With p = 0 the Dropout layers are Identity, so
    both nets have the same layers at the same indices and one's weights load into the other."""

    def drop() -> nn.Module:
        return nn.Dropout(p) if p > 0 else nn.Identity()

    return nn.Sequential(nn.Linear(1, hidden), drop(), nn.ReLU(),
                         nn.Linear(hidden, hidden), drop(), nn.ReLU(),
                         nn.Linear(hidden, 1))


class DeepNet(nn.Module):
    """The batch-normalization lesson's net: ``layers`` hidden Linear layers of ``hidden`` units,
    each followed by the activation; with ``batch_norm`` a BatchNorm1d normalizes the input and
    each layer's output before its activation. Weights ~ N(0, weight_std), biases = bias_init
    (the lesson's deliberately bad -0.2)."""

    def __init__(self, layers: int, hidden: int, activation: str, batch_norm: bool, momentum: float = 0.5,
                 weight_std: float = 0.1, bias_init: float = -0.2):
        super().__init__()
        self.input_norm = nn.BatchNorm1d(1, momentum=momentum) if batch_norm else nn.Identity()
        self.fcs = nn.ModuleList(nn.Linear(1 if i == 0 else hidden, hidden) for i in range(layers))
        self.norms = nn.ModuleList(nn.BatchNorm1d(hidden, momentum=momentum) if batch_norm else nn.Identity()
                                   for _ in range(layers))
        self.activation = ACTIVATIONS[activation]()
        self.predict = nn.Linear(hidden, 1)
        for layer in (*self.fcs, self.predict):
            nn.init.normal_(layer.weight, mean=0.0, std=weight_std)
            nn.init.constant_(layer.bias, bias_init)

    def pre_activations(self, x: torch.Tensor, normalized: bool = True) -> list[torch.Tensor]:
        """What the first layer reads, then what each layer's activation function receives:
        after batch normalization (``normalized``) or before it (what each BatchNorm1d layer
        normalizes: the raw input, each Linear's output). Without batch_norm both are the same."""
        raw, x = x, self.input_norm(x)
        seen = [x if normalized else raw]
        for fc, norm in zip(self.fcs, self.norms):
            raw = fc(x)
            z = norm(raw)
            seen.append(z if normalized else raw)
            x = self.activation(z)
        return seen

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.predict(self.activation(self.pre_activations(x)[-1]))

    def batch_norms(self) -> dict[str, nn.BatchNorm1d]:
        """The BatchNorm1d layers by name ("input", "layer 1", ...); empty without batch_norm."""
        named = {"input": self.input_norm, **{f"layer {i + 1}": n for i, n in enumerate(self.norms)}}
        return {name: m for name, m in named.items() if isinstance(m, nn.BatchNorm1d)}
