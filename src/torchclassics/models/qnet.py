"""The Q-network of DQN: a state in, one value per action out."""
from __future__ import annotations

from torch import nn


def q_network(n_states: int, n_actions: int, hidden: int, layers: int = 1) -> nn.Sequential:
    """``layers`` hidden ReLU layers of ``hidden`` units (the tutorial series' net has one)."""
    sizes = [n_states] + [hidden] * layers
    body = [m for a, b in zip(sizes, sizes[1:]) for m in (nn.Linear(a, b), nn.ReLU())]
    return nn.Sequential(*body, nn.Linear(sizes[-1], n_actions))
