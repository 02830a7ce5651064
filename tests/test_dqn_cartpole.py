"""dqn_cartpole: a smoke run with figures, the DQN update's two rules (the target network
stays put between refreshes; no value after a terminal move), and an exact SIGKILL resume
whose checkpoint holds the replay memory."""


import pytest
import torch
from PIL import Image

from helpers import killed_and_resumed, rows

pytest.importorskip("gymnasium")

TINY = ["--set", "learn_start=16", "--set", "batch_size=8", "--set", "memory=300", "--set", "eval_every=3",
        "--set", "eval_episodes=2", "--set", "gif_frames=4"]


def test_smoke_run_writes_rows_figures_and_a_policy_gif(tmp_path):
    from torchclassics import run

    result = run("dqn_cartpole", out=tmp_path / "r", quiet=True, epochs=6, learn_start=16, batch_size=8,
                 memory=300, eval_every=3, eval_episodes=2, gif_frames=4)
    history = rows(tmp_path / "r")
    assert [row["epoch"] for row in history] == [1, 2, 3, 4, 5, 6]
    assert all(row["return"] >= 1 and row["epsilon"] == pytest.approx(0.1) for row in history)
    assert [row["epoch"] for row in history if "test_return" in row] == [3, 6]  # every 3rd episode and the last
    assert any("td_loss" in row for row in history)
    assert result.metrics["test_return"] == history[-1]["test_return"]
    for name in ("returns.png", "loss.png"):
        with Image.open(tmp_path / "r" / "figures" / name) as image:
            assert image.size[0] > 100
    with Image.open(tmp_path / "r" / "figures" / "policy.gif") as gif:
        assert gif.n_frames >= 2



def test_loss_figure_before_any_update_says_why_it_is_empty(tmp_path, monkeypatch):
    from torchclassics.experiments import dqn_cartpole

    drawn = []
    monkeypatch.setattr(dqn_cartpole, "save", lambda fig, path: drawn.append(fig) or path)
    dqn_cartpole.loss_figure([{"epoch": 1, "return": 12.0, "epsilon": 0.1}], tmp_path / "loss.png", learn_start=200)
    td_axes = drawn[0].axes[0]
    assert "learn_start = 200" in td_axes.texts[0].get_text()
    low, high = td_axes.get_xlim()
    assert low < 1 < high  # the one episode on the axis, as on the exploration axes

def transitions(states, terminated):
    from torchclassics.data.episodes import Transitions

    n = len(states)
    return Transitions(states, torch.zeros(n, dtype=torch.long), states + 0.1, torch.tensor(terminated))


class FakeTrainer:
    """What td_step uses of the engine's Trainer."""

    def __init__(self, q_net, target_net):
        from torchclassics.engine.precision import Precision

        self.models = {"q": q_net, "target": target_net}
        self.wrapped = {"q": q_net}
        self.optimizers = {"q": torch.optim.SGD(q_net.parameters(), lr=0.1)}
        self.precision = Precision("fp32", torch.device("cpu"))
        self.step = 0

    def clip(self, name=None):
        pass


def test_target_network_is_refreshed_only_every_target_every_steps():
    from torch import nn

    from torchclassics.experiments.dqn_cartpole import td_step
    from torchclassics.models.qnet import q_network

    torch.manual_seed(0)
    q_net, target_net = q_network(4, 2, 8), q_network(4, 2, 8)
    trainer = FakeTrainer(q_net, target_net)
    step = td_step(gamma=0.9, target_every=3, loss_fn=nn.MSELoss())
    batch = transitions(torch.randn(16, 4), [False] * 16)
    frozen = None
    for n in range(6):
        trainer.step = n
        step(trainer, batch, torch.ones(16))
        target = torch.cat([p.flatten() for p in target_net.parameters()]).clone()
        if n % 3 == 0:  # refreshed from the Q-network just before this update
            frozen = target
        assert torch.equal(target, frozen), f"the target network moved at step {n}"
    trained = torch.cat([p.flatten() for p in q_net.parameters()])
    assert not torch.equal(trained, frozen)  # the Q-network itself kept learning


def test_a_terminal_move_is_worth_its_reward_alone():
    from torch import nn

    from torchclassics.experiments.dqn_cartpole import td_step
    from torchclassics.models.qnet import q_network

    torch.manual_seed(0)
    q_net, seen = q_network(4, 2, 8), {}

    def loss_fn(predicted, wanted):
        seen["wanted"] = wanted
        return nn.functional.mse_loss(predicted, wanted)

    batch = transitions(torch.randn(2, 4), [True, False])
    with torch.no_grad():  # at step 0 the target network becomes a copy of the Q-network
        bootstrapped = 1.0 + 0.9 * q_net(batch.next_states[1:]).max(1).values
    td_step(gamma=0.9, target_every=100, loss_fn=loss_fn)(FakeTrainer(q_net, q_network(4, 2, 8)), batch,
                                                          torch.tensor([1.0, 1.0]))
    assert seen["wanted"][0] == 1.0
    assert seen["wanted"][1:] == pytest.approx(bootstrapped)


@pytest.mark.integration
def test_sigkill_then_resume_matches_uninterrupted(tmp_path, monkeypatch):
    settings = {"epochs": 30, **{k: int(v) for k, v in (item.split("=") for item in TINY[1::2])}}
    killed_and_resumed(tmp_path, monkeypatch, "dqn_cartpole", settings, kill_at=5)
