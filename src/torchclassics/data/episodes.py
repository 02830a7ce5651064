"""Reinforcement learning as data: episodes of an environment, played by the network being trained.

For the engine an epoch is one episode. :class:`Episodes` plays it with an ε-greedy policy
of the Q-network, stores every transition in a :class:`ReplayMemory` and, once the memory
holds ``learn_start`` transitions, yields one sampled batch after each move: the engine runs
the experiment's TD step on it, so the policy that plays the next move has just learned.

What carries over from one episode to the next (the memory, the count of moves that sets ε)
is in ``state_dict``, which the engine checkpoints at episode boundaries. Everything random
within an episode (the environment's start, exploration, sampling) is drawn from generators
seeded by (run seed, episode number), so a resumed run plays exactly the episodes of the
uninterrupted one.
"""
from __future__ import annotations

import math
from collections.abc import Iterator
from typing import NamedTuple

import numpy as np
import torch
from torch import nn

HELD_OUT_SEEDS = 1_000_000  # evaluation episodes' seeds start here: no training episode reaches them


def episode_seed(seed: int, episode: int) -> int:
    """The environment's reset seed of one training episode (evaluation: ``HELD_OUT_SEEDS + i``)."""
    return seed * 1_000_003 + episode


def make_env(name: str):
    """A gymnasium environment, with a one-line hint when gymnasium is missing."""
    try:
        import gymnasium
    except ImportError:
        from ..core.errors import UserError

        raise UserError("this experiment needs gymnasium: pip install 'gymnasium>=1.0'") from None
    return gymnasium.make(name)


class Transitions(NamedTuple):
    states: torch.Tensor       # (batch, state size)
    actions: torch.Tensor      # (batch,) int64
    next_states: torch.Tensor  # (batch, state size)
    terminated: torch.Tensor   # (batch,) bool: the pole fell or the cart left; no value after it


class ReplayMemory:
    """The last ``capacity`` transitions, in preallocated tensors (a ring buffer)."""

    def __init__(self, capacity: int, state_size: int):
        self.states = torch.zeros(capacity, state_size)
        self.actions = torch.zeros(capacity, dtype=torch.long)
        self.rewards = torch.zeros(capacity)
        self.next_states = torch.zeros(capacity, state_size)
        self.terminated = torch.zeros(capacity, dtype=torch.bool)
        self.size, self.position = 0, 0

    def __len__(self) -> int:
        return self.size

    def push(self, state, action: int, reward: float, next_state, terminated: bool) -> None:
        i = self.position
        self.states[i] = torch.as_tensor(state)
        self.actions[i] = action
        self.rewards[i] = reward
        self.next_states[i] = torch.as_tensor(next_state)
        self.terminated[i] = terminated
        self.position = (i + 1) % len(self.states)
        self.size = min(self.size + 1, len(self.states))

    def sample(self, batch_size: int, generator: torch.Generator) -> tuple[Transitions, torch.Tensor]:
        """(transitions, rewards) of ``batch_size`` stored moves drawn uniformly, with replacement."""
        index = torch.randint(self.size, (batch_size,), generator=generator)
        return (Transitions(self.states[index], self.actions[index], self.next_states[index], self.terminated[index]),
                self.rewards[index])

    def state_dict(self) -> dict:
        return {"states": self.states, "actions": self.actions, "rewards": self.rewards,
                "next_states": self.next_states, "terminated": self.terminated,
                "size": self.size, "position": self.position}

    def load_state_dict(self, state: dict) -> None:
        for key in ("states", "actions", "rewards", "next_states", "terminated"):
            getattr(self, key).copy_(state[key])
        self.size, self.position = int(state["size"]), int(state["position"])


class Episodes:
    """One training episode per ``epoch(n)``; yields (transitions, rewards) batches to learn from."""

    def __init__(self, env_name: str, q_net: nn.Module, *, seed: int, capacity: int, batch_size: int,
                 learn_start: int, epsilon_start: float, epsilon_end: float, epsilon_decay: float,
                 shaped_reward=None, device=None):
        self.env = make_env(env_name)
        self.q_net, self.seed, self.device = q_net, seed, device
        self.n_actions = int(self.env.action_space.n)
        self.memory = ReplayMemory(capacity, self.env.observation_space.shape[0])
        self.batch_size, self.learn_start = batch_size, max(learn_start, 1)
        self.epsilon_start, self.epsilon_end, self.epsilon_decay = epsilon_start, epsilon_end, epsilon_decay
        self.shaped_reward = shaped_reward  # next state -> the reward learned from; None: the env's
        self.moves = 0             # moves played over the whole run: ε decays with them
        self.last_return = 0.0     # the last finished episode's return

    @property
    def epsilon(self) -> float:
        """The chance of a random move now: from ``epsilon_start`` down to ``epsilon_end``,
        exponentially, 1/e of the way left after every ``epsilon_decay`` moves."""
        left = math.exp(-self.moves / self.epsilon_decay) if self.epsilon_decay > 0 else 0.0
        return self.epsilon_end + (self.epsilon_start - self.epsilon_end) * left

    @torch.no_grad()
    def act(self, state, generator: torch.Generator) -> int:
        """ε-greedy: a random move with chance ε, else the move of highest Q-value."""
        explore = torch.rand((), generator=generator) < self.epsilon
        random_move = int(torch.randint(self.n_actions, (), generator=generator))  # drawn always: one stream
        if explore:
            return random_move
        state = torch.as_tensor(state, device=self.device).unsqueeze(0)
        return int(self.q_net(state).argmax(1))

    def epoch(self, episode: int) -> Iterator[tuple[Transitions, torch.Tensor]]:
        generator = torch.Generator().manual_seed(episode_seed(self.seed, episode))
        state, _ = self.env.reset(seed=episode_seed(self.seed, episode))
        total, done = 0.0, False
        while not done:
            action = self.act(state, generator)
            next_state, reward, terminated, truncated, _ = self.env.step(action)
            learned = self.shaped_reward(next_state) if self.shaped_reward else float(reward)
            self.memory.push(state, action, learned, next_state, terminated)
            self.moves += 1
            total, done = total + float(reward), terminated or truncated
            state = next_state
            if len(self.memory) >= self.learn_start:
                transitions, rewards = self.memory.sample(self.batch_size, generator)
                if self.device is not None:
                    transitions = Transitions(*(t.to(self.device) for t in transitions))
                    rewards = rewards.to(self.device)
                yield transitions, rewards
        self.last_return = total

    def state_dict(self) -> dict:
        return {"memory": self.memory.state_dict(), "moves": self.moves, "last_return": self.last_return}

    def load_state_dict(self, state: dict) -> None:
        self.memory.load_state_dict(state["memory"])
        self.moves, self.last_return = int(state["moves"]), float(state["last_return"])


@torch.no_grad()
def greedy_returns(env_name: str, q_net: nn.Module, seeds: list[int], device=None) -> list[float]:
    """The return of one greedy episode per seed, played in lockstep: one forward for every
    live episode per move, not one per episode."""
    envs = [make_env(env_name) for _ in seeds]
    states = [env.reset(seed=s)[0] for env, s in zip(envs, seeds)]
    returns, alive = [0.0] * len(envs), list(range(len(envs)))
    while alive:
        actions = q_net(torch.as_tensor(np.stack([states[i] for i in alive]), device=device)).argmax(1).tolist()
        still = []
        for i, action in zip(alive, actions):
            states[i], reward, terminated, truncated, _ = envs[i].step(action)
            returns[i] += float(reward)
            if not (terminated or truncated):
                still.append(i)
        alive = still
    return returns


@torch.no_grad()
def greedy_states(env_name: str, q_net: nn.Module, seed: int, device=None) -> list[list[float]]:
    """Every state of one greedy episode, the first included: what the policy GIF draws."""
    env = make_env(env_name)
    state, _ = env.reset(seed=seed)
    states, done = [state.tolist()], False
    while not done:
        action = int(q_net(torch.as_tensor(state, device=device).unsqueeze(0)).argmax(1))
        state, _, terminated, truncated, _ = env.step(action)
        states.append(state.tolist())
        done = terminated or truncated
    return states
