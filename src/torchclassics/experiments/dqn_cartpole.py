"""DQN balances a pole on a cart (the tutorial series' "DQN 强化学习", on gymnasium's CartPole-v1).

A Q-network learns the value of each move (push left, push right) from a replay memory of
past moves, against a target network: a copy of the Q-network, not trained, refreshed every
``target_every`` steps, so the value the network chases does not move with each update. An
epoch of the engine is one episode (data/episodes.py); every ``eval_every`` episodes the
greedy policy plays ``eval_episodes`` held-out episodes and their mean return is
``test_return`` (CartPole-v1 ends an episode at 500; 195 is the classic "solved")."""
from __future__ import annotations

import copy
import math

import torch
from matplotlib.patches import Rectangle
from torch import nn

from ..data.episodes import HELD_OUT_SEEDS, Episodes, greedy_returns, greedy_states
from ..engine.loop import Task
from ..models.qnet import q_network
from ..registry import experiment
from ..rundir.metrics import Objective
from ..viz.animate import FrameWriter
from ..viz.plots import log_scale_if_wide, marker_for, new_figure, save, whole_number_ticks
from ._base import Experiment

ENV = "CartPole-v1"
N_STATES, N_ACTIONS = 4, 2           # cart position, cart velocity, pole angle, pole angular velocity
SOLVED = 195.0                       # the classic threshold (CartPole-v0's), kept as a reference line
TRACK_LIMIT = 2.4                    # the cart leaves the track beyond |x| = 2.4: the episode ends
POLE_LENGTH = 1.0                    # the environment's pole is 2 x its "length" of 0.5
ANGLE_LIMIT = math.radians(12)       # the pole falls beyond 12 degrees: the episode ends
LOSSES = {"huber": nn.SmoothL1Loss(), "mse": nn.MSELoss()}


def centred_and_upright(state) -> float:
    """The tutorial series' reward: the closer the cart to the middle and the pole to upright,
    the higher (from -1.3 to 0.7), instead of CartPole's 1 per move."""
    x, _, angle, _ = state
    return float((TRACK_LIMIT - abs(x)) / TRACK_LIMIT - 0.8 + (ANGLE_LIMIT - abs(angle)) / ANGLE_LIMIT - 0.5)


def td_step(gamma: float, target_every: int, loss_fn):
    """The DQN update as an engine step: Q(s, a) towards r + gamma * max_a' Q_target(s', a'),
    with no value after a terminal move; the target network refreshed every ``target_every``
    steps (the step count is checkpointed, so a resumed run refreshes on the same steps)."""

    def step(trainer, transitions, rewards):
        q_net, target_net, optimizer = trainer.models["q"], trainer.models["target"], trainer.optimizers["q"]
        if trainer.step % target_every == 0:
            target_net.load_state_dict(q_net.state_dict())
        optimizer.zero_grad(set_to_none=True)
        with torch.no_grad():
            next_value = target_net(transitions.next_states).max(1).values
            wanted = rewards + gamma * next_value * (~transitions.terminated)
        with trainer.precision.autocast():
            predicted = trainer.wrapped["q"](transitions.states).gather(1, transitions.actions[:, None]).squeeze(1)
            loss = loss_fn(predicted.float(), wanted)
        trainer.precision.backward(loss)
        trainer.clip("q")
        trainer.precision.step(optimizer)
        return {"td_loss": loss}, None

    return step


def held_out_seeds(params: dict) -> list[int]:
    return [HELD_OUT_SEEDS + params["seed"] * 1000 + i for i in range(params["eval_episodes"])]


def episode_metrics(episodes: Episodes, params: dict, device):
    """The Task's evaluate: the row's per-episode values, the training episode's return and ε (the
    engine's train metrics are batch averages, which these are not) and, every ``eval_every``
    episodes and at the last, ``test_return``: the greedy policy's mean return over
    ``eval_episodes`` held-out episodes."""

    def evaluate(trainer) -> dict:
        episode = trainer.epoch + 1  # the engine evaluates before it counts the episode as done
        row = {"return": episodes.last_return, "epsilon": round(episodes.epsilon, 6)}
        if episode % params["eval_every"] == 0 or episode == params["epochs"]:
            returns = greedy_returns(ENV, trainer.models["q"].eval(), held_out_seeds(params), device)
            row["test_return"] = sum(returns) / len(returns)
        return row

    return evaluate


@experiment("dqn_cartpole")
class DQNCartPole(Experiment):
    objective = Objective("test_return", "max")

    def build(self, params, device):
        q_net = q_network(N_STATES, N_ACTIONS, params["hidden"], params["layers"])
        target_net = copy.deepcopy(q_net).requires_grad_(False)
        episodes = Episodes(ENV, q_net, seed=params["seed"], capacity=params["memory"],
                            batch_size=params["batch_size"], learn_start=params["learn_start"],
                            epsilon_start=params["epsilon_start"], epsilon_end=params["epsilon_end"],
                            epsilon_decay=params["epsilon_decay"], device=device,
                            shaped_reward=centred_and_upright if params["reward"] == "shaped" else None)
        return Task(model=q_net, models={"q": q_net, "target": target_net}, optimized=("q",),
                    train=episodes, test=None, loss_name="td_loss",
                    step=td_step(params["gamma"], params["target_every"], LOSSES[params["loss"]]),
                    evaluate=episode_metrics(episodes, params, device))

    def model_alone(self, params, device, record):
        """The Q-network alone (predict, export): no environment needed."""
        return Task(model=q_network(N_STATES, N_ACTIONS, params["hidden"], params["layers"]), train=None, test=None)

    def example_input(self, task):
        """Two cart states (position, velocity, angle, angular velocity)."""
        return torch.tensor([[0.0, 0.0, 0.02, 0.0], [0.5, -0.3, -0.05, 0.4]])

    def results(self, run):
        solved = [row["epoch"] for row in run.fit.history if row.get("test_return", 0) >= SOLVED]
        return {"solved_at_episode": solved[0] if solved else None, "solved_threshold": SOLVED}

    # -- figures ---------------------------------------------------------------------------
    def figures(self, run, folder):
        params, history = run.params, run.fit.history
        returns_figure(history, folder / "returns.png")
        loss_figure(history, folder / "loss.png", params["learn_start"])
        states = greedy_states(ENV, run.model.eval(), held_out_seeds(params)[0], run.device)
        every = max(1, len(states) // params["gif_frames"])
        shown = list(range(0, len(states), every))
        if shown[-1] != len(states) - 1:
            shown.append(len(states) - 1)  # the last state: balanced to the end, or the fall
        policy_animation(states, shown, folder / "policy.gif")


def returns_figure(history: list[dict], path):
    fig = new_figure(7, 4)
    ax = fig.add_subplot(1, 1, 1)
    episodes = [row["epoch"] for row in history]
    ax.plot(episodes, [row["return"] for row in history], lw=0.8, marker=marker_for(len(episodes)), ms=3,
            color="tab:blue", label="training episode (ε-greedy)")
    tested = [row for row in history if "test_return" in row]
    ax.plot([r["epoch"] for r in tested], [r["test_return"] for r in tested], "o-", ms=3, color="tab:red",
            label="greedy policy, mean of held-out episodes")
    ax.axhline(SOLVED, ls="--", color="gray", lw=1, label=f"{SOLVED:.0f} (solved)")
    ax.set(xlabel="episode", ylabel="return (moves balanced)", title="dqn_cartpole: return per episode")
    whole_number_ticks(ax, episodes)
    ax.legend(loc="upper left", fontsize=8)
    return save(fig, path)


def loss_figure(history: list[dict], path, learn_start: int):
    fig = new_figure(10, 4)
    ax = fig.add_subplot(1, 2, 1)
    episodes = [row["epoch"] for row in history]
    trained = [row for row in history if "td_loss" in row]  # no update before the memory holds learn_start moves
    losses = [r["td_loss"] for r in trained]
    ax.plot([r["epoch"] for r in trained], losses, lw=0.8, marker=marker_for(len(trained)), ms=3,
            label="mean TD loss of the episode")
    if not trained:
        ax.set_xlim(min(episodes, default=1) - 0.5, max(episodes, default=1) + 0.5)
        ax.text(0.5, 0.5, f"no update yet: the replay memory\nheld fewer than learn_start = {learn_start} moves",
                ha="center", va="center", transform=ax.transAxes)
    ax.set(xlabel="episode", ylabel="TD loss", title="TD loss")
    log_scale_if_wide(ax, losses, span=10)
    whole_number_ticks(ax, episodes)
    ax.legend()
    ax = fig.add_subplot(1, 2, 2)
    ax.plot(episodes, [r["epsilon"] for r in history], marker=marker_for(len(episodes)), ms=3, color="tab:green",
            label="ε at episode end")
    ax.set(xlabel="episode", ylabel="ε (chance of a random move)", ylim=(0, 1.05), title="exploration")
    whole_number_ticks(ax, episodes)
    ax.legend()
    return save(fig, path)


def policy_animation(states: list[list[float]], shown: list[int], path):
    """The cart and its pole at the ``shown`` moves of one greedy episode, drawn from the states
    alone (no pygame rendering). The track and axes are drawn once; a frame moves the cart and
    the pole, and redraws the title and the legend (which the pole can pass behind)."""
    writer = FrameWriter((6, 2.4))  # the height that the track's equal-aspect axes, title and labels fill
    ax = writer.figure.add_subplot(1, 1, 1)
    ax.plot([-TRACK_LIMIT - 0.3, TRACK_LIMIT + 0.3], [0, 0], color="black", lw=1, label="track")
    ax.axvline(-TRACK_LIMIT, color="gray", ls=":", lw=1, label="track ends (x = ±2.4)")
    ax.axvline(TRACK_LIMIT, color="gray", ls=":", lw=1)
    cart = ax.add_patch(Rectangle((-0.25, 0.0), 0.5, 0.15, color="tab:blue", label="cart"))
    (pole,) = ax.plot([0, 0], [0.15, 0.15 + POLE_LENGTH], color="tab:orange", lw=5, solid_capstyle="round",
                      label="pole")
    ax.set(xlim=(-TRACK_LIMIT - 0.4, TRACK_LIMIT + 0.4), ylim=(-0.3, 1.35), aspect="equal",
           xlabel="cart position x", ylabel="height")
    legend = ax.legend(loc="upper right", fontsize=7)
    writer.changing(cart, pole, ax.title, legend)
    last = len(states) - 1
    for t in shown:
        x, _, angle, _ = states[t]
        cart.set_x(x - 0.25)
        pole.set_data([x, x + POLE_LENGTH * math.sin(angle)], [0.15, 0.15 + POLE_LENGTH * math.cos(angle)])
        ax.set_title(f"greedy policy, move {t} of {last}   pole angle {math.degrees(angle):+.1f}°")
        writer.grab()
    return writer.write(path, fps=20)
