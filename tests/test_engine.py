"""The training engine: metrics over samples, optimizers by name (LBFGS too), schedulers,
clipping, carried hidden state, seeding, and checkpoints that load with weights_only."""
import json
from pathlib import Path

import pytest
import torch
from torch import nn

from torchclassics import run
from torchclassics.data.batches import TensorBatches
from torchclassics.engine import state
from torchclassics.engine.loop import Task, Trainer, accuracy_sum, detach_state
from torchclassics.errors import UserError
from torchclassics.rundir.metrics import Objective
from torchclassics.rundir.writer import RunWriter


def make_trainer(tmp_path, task, **params):
    run_dir = RunWriter(tmp_path / "run")
    run_dir.claim(resume=False)
    run_dir.planned = {"experiment": "test"}
    base = {"optimizer": "SGD", "lr": 0.1, "epochs": 1, "optimizer_args": {}}
    return Trainer(task, {**base, **params}, run_dir, torch.device("cpu"))


class Constant(nn.Module):
    """Predicts class 0 always; one parameter so optimizers have something to hold."""

    def __init__(self):
        super().__init__()
        self.bias = nn.Parameter(torch.zeros(()))

    def forward(self, x):
        return torch.stack([torch.ones(len(x)), torch.zeros(len(x))], dim=1) + self.bias * 0


def test_metrics_are_averaged_over_samples_not_batches(tmp_path):
    # 5 samples in batches of 4 and 1: three of the first four are class 0, the last one too.
    y = torch.tensor([0, 0, 0, 1, 0])
    x = torch.zeros(5, 1)
    task = Task(model=Constant(), train=TensorBatches(x, y, batch_size=4, shuffle=False),
                test=TensorBatches(x, y, batch_size=4, shuffle=False), loss_fn=nn.CrossEntropyLoss(),
                metrics={"accuracy": accuracy_sum})
    trainer = make_trainer(tmp_path, task)
    assert trainer.evaluate()["test_accuracy"] == pytest.approx(4 / 5)  # the batch mean would say 0.875


def test_uneven_batches_and_drop_last():
    data = TensorBatches(torch.arange(10), torch.arange(10), batch_size=4, shuffle=True, seed=3)
    sizes = [len(b[0]) for b in data.epoch(1)]
    assert sizes == [4, 4, 2] and len(data) == 3
    assert sorted(torch.cat([b[0] for b in data.epoch(1)]).tolist()) == list(range(10))
    dropped = TensorBatches(torch.arange(10), torch.arange(10), batch_size=4, drop_last=True)
    assert [len(b[0]) for b in dropped.epoch(1)] == [4, 4] and len(dropped) == 2


def test_shuffling_depends_on_seed_and_epoch_only():
    a = TensorBatches(torch.arange(20), torch.arange(20), batch_size=20, seed=7)
    b = TensorBatches(torch.arange(20), torch.arange(20), batch_size=20, seed=7)
    torch.rand(5)  # global RNG use must not change the order
    assert torch.equal(next(a.epoch(2))[0], next(b.epoch(2))[0])
    assert not torch.equal(next(a.epoch(2))[0], next(a.epoch(3))[0])


def test_ddp_shards_partition_one_permutation():
    shards = [TensorBatches(torch.arange(12), torch.arange(12), batch_size=12, seed=1).shard(r, 3) for r in range(3)]
    seen = torch.cat([next(s.epoch(1))[0] for s in shards])
    assert sorted(seen.tolist()) == list(range(12))


@pytest.mark.parametrize("optimizer, args",
                         [("LBFGS", {"max_iter": 4}), ("Rprop", {}), ("Adam", {"betas": [0.9, 0.99]})])
def test_any_torch_optim_by_name_trains(tmp_path, optimizer, args):
    result = run("regression", out=tmp_path / optimizer, figures=False, optimizer=optimizer,
                 optimizer_args=args, lr=0.05 if optimizer != "LBFGS" else 0.5, epochs=30)
    first = json.loads((tmp_path / optimizer / "metrics.jsonl").read_text().splitlines()[0])
    assert result.metrics["mse"] < first["mse"]


@pytest.mark.parametrize("optimizer, args, fused", [
    ("Adam", {}, True), ("SGD", {"momentum": 0.9}, True),   # a fused kernel exists: one call per step
    ("Adam", {"fused": False}, False), ("Adam", {"foreach": True}, None),  # the params' choice stands
    ("RMSprop", {}, None),                                   # no fused kernel: nothing added
])
def test_optimizers_use_their_fused_kernel_on_the_cpu_unless_told(optimizer, args, fused):
    from torchclassics.engine.loop import build_optimizer

    built = build_optimizer({"optimizer": optimizer, "lr": 0.1, "optimizer_args": args}, nn.Linear(3, 2),
                            torch.device("cpu"))
    assert built.defaults.get("fused") == fused


@pytest.mark.integration
def test_freed_memory_is_kept_for_the_next_step_not_faulted_in_again():
    """Training steps of the MNIST CNN fault fresh pages in at every step with glibc's defaults
    (its activations are freed and mapped afresh); after keep_freed_memory they reuse them."""
    import subprocess
    import sys

    from torchclassics.engine.device import keep_freed_memory

    if not keep_freed_memory():
        pytest.skip("not Linux with glibc: the allocator is left as it is")
    steps = ("import resource, torch{}\n"
             "from torchclassics.models.cnn import CNN\n"
             "model = CNN().to(memory_format=torch.channels_last)\n"
             "optimizer = torch.optim.Adam(model.parameters())\n"
             "x, y = torch.randn(50, 1, 28, 28), torch.randint(0, 10, (50,))\n"
             "def step():\n"
             "    optimizer.zero_grad()\n"
             "    torch.nn.functional.cross_entropy(model(x), y).backward()\n"
             "    optimizer.step()\n"
             "step()\n"
             "before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt\n"
             "for _ in range(40):\n    step()\n"
             "print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)")

    def page_faults(setup: str) -> int:
        done = subprocess.run([sys.executable, "-c", steps.format(setup)], capture_output=True, text=True, check=True)
        return int(done.stdout.split()[-1])

    default = page_faults("")
    kept = page_faults("\nfrom torchclassics.engine.device import keep_freed_memory; keep_freed_memory()")
    assert default > 40 * 100  # hundreds of 4 KB pages per step
    assert kept < default / 4


def test_scheduler_changes_the_learning_rate(tmp_path):
    run("regression", out=tmp_path / "r", figures=False, epochs=4,
        scheduler={"name": "StepLR", "step_size": 2, "gamma": 0.5})
    lrs = [json.loads(line)["lr"] for line in (tmp_path / "r" / "metrics.jsonl").read_text().splitlines()]
    assert lrs == pytest.approx([0.2, 0.1, 0.1, 0.05])


def test_unknown_scheduler_is_a_user_error(tmp_path):
    with pytest.raises(UserError, match="not a torch.optim.lr_scheduler class"):
        run("regression", out=tmp_path / "r", figures=False, scheduler={"name": "Nope"})


def test_gradient_clipping_bounds_the_update(tmp_path):
    x = torch.ones(4, 1) * 100
    y = torch.zeros(4, 1)
    model = nn.Linear(1, 1)
    with torch.no_grad():
        model.weight.fill_(1.0)
        model.bias.fill_(0.0)
    task = Task(model=model, train=TensorBatches(x, y, batch_size=4, shuffle=False), test=None, loss_fn=nn.MSELoss())
    trainer = make_trainer(tmp_path, task, lr=1.0, clip_grad_norm=0.5)
    trainer.fit()
    step = torch.cat([(model.weight - 1.0).flatten(), model.bias.flatten()]).norm()
    assert step.item() == pytest.approx(0.5, rel=1e-4)


def test_divergence_names_what_differs_from_the_defaults(tmp_path):
    with pytest.raises(UserError, match=r"diverged .*what differs from the defaults: lr=1000000.0 \(default 0.2\), "
                                        r"hidden=20 \(default 10\)\.$"):
        run("regression", out=tmp_path / "r", figures=False, lr=1e6, hidden=20, epochs=20)
    assert not (tmp_path / "r" / "summary.json").exists()


def test_detach_state_cuts_the_graph_of_tensors_and_tuples():
    h = torch.ones(2, requires_grad=True) * 2
    c = torch.ones(2, requires_grad=True) * 3
    out = detach_state((h, c))
    assert isinstance(out, tuple) and not any(t.requires_grad for t in out)
    assert detach_state(None) is None


def test_same_seed_same_numbers_other_seed_other_numbers(tmp_path):
    a = run("classification", out=tmp_path / "a", figures=False, epochs=5)
    b = run("classification", out=tmp_path / "b", figures=False, epochs=5)
    c = run("classification", out=tmp_path / "c", figures=False, epochs=5, seed=2)
    assert a.metrics == b.metrics
    assert a.metrics != c.metrics


def test_run_directory_contract(tmp_path):
    result = run("regression", out=tmp_path / "r", epochs=10, figures=False)
    path = Path(result.run_dir)
    summary = json.loads((path / "summary.json").read_text())
    for key in ("experiment", "params", "seed", "device", "wall_s", "train_s", "versions", "metrics", "best"):
        assert key in summary
    assert summary["train_s"] <= summary["wall_s"]
    assert json.loads((path / "params.json").read_text())["epochs"] == 10
    assert len((path / "metrics.jsonl").read_text().splitlines()) == 10
    assert (path / "train.log").read_text()
    assert summary["best"]["metric"] == "test_mse" and 1 <= summary["best"]["epoch"] <= 10
    assert summary["best"]["value"] <= summary["metrics"]["test_mse"]
    for name in ("last", "best"):
        state = torch.load(path / "checkpoints" / f"{name}.pt", weights_only=True)
        assert set(state["model"]) == set(result.model.state_dict())
    assert not list((path / "checkpoints").glob("*.tmp"))


def test_new_run_directory_under_runs_root(isolated_runs_root):
    result = run("regression", epochs=2, figures=False)
    assert Path(result.run_dir).parent == isolated_runs_root / "regression"


def test_atomic_save_keeps_the_old_file_when_writing_fails(tmp_path):
    path = tmp_path / "best.pt"
    state.save(state.BestWeights(model={"x": torch.ones(1)}, epoch=1, best={}), path)

    class Unsaveable:
        def __reduce__(self):
            raise RuntimeError("cannot pickle")

    with pytest.raises(RuntimeError, match="cannot pickle"):
        state.save(state.BestWeights(model={"x": Unsaveable()}, epoch=1, best={}), path)
    assert torch.equal(state.load_best(path).model["x"], torch.ones(1))
    assert [p.name for p in tmp_path.iterdir()] == ["best.pt"]


def test_on_step_end_sees_every_optimizer_step_across_epochs(tmp_path):
    x, y = torch.randn(10, 1), torch.randn(10, 1)
    seen = []
    task = Task(model=nn.Linear(1, 1), train=TensorBatches(x, y, batch_size=4, shuffle=False), test=None,
                loss_fn=nn.MSELoss(),
                on_step_end=lambda step, model, record: seen.append((step, model.weight.item())))
    make_trainer(tmp_path, task, epochs=2).fit()
    assert [step for step, _ in seen] == [1, 2, 3, 4, 5, 6]  # 3 batches an epoch
    assert len({weight for _, weight in seen}) == 6, "called after each update"


# -- the second-generation step: several models, an own step, mixed precision -------------------------
def two_model_task(seed: int = 0) -> Task:
    """A tiny adversarial pair: ``critic`` scores points, ``mover`` shifts noise to fool it."""
    torch.manual_seed(seed)
    mover, critic = nn.Linear(2, 2), nn.Sequential(nn.Linear(2, 8), nn.Tanh(), nn.Linear(8, 1))
    real = torch.randn(64, 2) + 3

    def step(trainer, inputs, targets):
        noise = torch.randn(len(inputs), 2)  # the global generator: checkpointed with the run
        for name, loss_of in (("critic", lambda: critic(mover(noise).detach()).mean() - critic(inputs).mean()),
                              ("mover", lambda: -critic(mover(noise)).mean())):
            trainer.optimizers[name].zero_grad(set_to_none=True)
            loss = loss_of()
            trainer.precision.backward(loss)
            trainer.precision.step(trainer.optimizers[name])
            if name == "critic":
                loss_c = loss
        return {"loss_critic": loss_c, "loss_mover": loss}, None

    return Task(model=mover, models={"mover": mover, "critic": critic}, step=step,
                train=TensorBatches(real, torch.zeros(64), batch_size=16, seed=seed), test=None)


def fit_two_models(tmp_path, name, epochs, resume=False):
    run_dir = RunWriter(tmp_path / name)
    run_dir.claim(resume=resume)
    run_dir.planned = {"experiment": "test"}
    trainer = Trainer(two_model_task(), {"optimizer": "Adam", "lr": 0.01, "epochs": epochs, "optimizer_args": {}},
                      run_dir, torch.device("cpu"), objective=Objective("loss_mover", "min"))
    try:
        return trainer.fit(resume=resume), trainer
    finally:
        run_dir.close()


def test_two_models_two_optimizers_and_an_own_step_resume_exactly(tmp_path):
    whole, trainer = fit_two_models(tmp_path, "whole", 4)
    assert {"loss_critic", "loss_mover"} <= whole.history[-1].keys()  # each loss named in the rows
    assert set(trainer.optimizers) == {"mover", "critic"}
    fit_two_models(tmp_path, "part", 2)
    resumed, _ = fit_two_models(tmp_path, "part", 4, resume=True)
    state = torch.load(tmp_path / "part" / "checkpoints" / "last.pt", weights_only=True)
    assert set(state["optimizers"]) == {"mover", "critic"} and set(state["models"]) == {"critic"}
    strip = lambda rows: [{k: v for k, v in r.items() if k != "train_s"} for r in rows]  # noqa: E731
    assert strip(resumed.history) == strip(whole.history)


def test_bf16_on_the_cpu_trains_and_resumes_exactly(tmp_path):
    straight = run("regression", out=tmp_path / "s", figures=False, epochs=40, precision="bf16")
    fp32 = run("regression", out=tmp_path / "f", figures=False, epochs=40)
    assert straight.metrics["test_mse"] != fp32.metrics["test_mse"]  # autocast did change the arithmetic
    assert straight.metrics["test_mse"] == pytest.approx(fp32.metrics["test_mse"], rel=0.1)
    run("regression", out=tmp_path / "r", figures=False, epochs=20, precision="bf16")
    resumed = run("regression", out=tmp_path / "r", figures=False, epochs=40, resume=True)
    assert resumed.metrics == straight.metrics


def test_a_precision_the_model_cannot_run_is_refused_before_writing(tmp_path):
    with pytest.raises(UserError, match="precision=fp16 needs a CUDA GPU"):
        run("regression", out=tmp_path / "r", figures=False, precision="fp16", device="cpu")
    assert not (tmp_path / "r").exists()


# -- CPU threads: from the machine and the parameters, never from the load ----------------------------
def test_the_thread_count_follows_the_model_and_the_parameters_only():
    from torchclassics.engine import threads

    tiny, large = nn.Linear(2, 2), nn.Linear(400, 400)
    assert threads.planned(None, tiny, None) == 1
    assert threads.planned(None, large, None) == threads.machine_threads()
    assert threads.planned(None, tiny, threads.ALL_CORES) == threads.machine_threads()
    assert threads.planned(None, large, 1) == 1  # an experiment's own fixed choice
    assert threads.planned(3, tiny, 1) == 3      # the params' threads win
    with threads.using(1):
        assert torch.get_num_threads() == 1 and threads.machine_threads() >= 1  # not the current setting


def test_the_threads_are_recorded_and_a_resume_uses_them(tmp_path):
    first = run("regression", out=tmp_path / "r", figures=False, epochs=3)
    saved = json.loads((tmp_path / "r" / "params.json").read_text())
    assert saved["threads"] == first.summary["threads"] == 1
    run("regression", out=tmp_path / "t", figures=False, epochs=3, threads=2)
    assert json.loads((tmp_path / "t" / "params.json").read_text())["threads"] == 2
    assert state.load_training_state(tmp_path / "t" / "checkpoints" / "last.pt").threads == 2
    resumed = run("regression", out=tmp_path / "t", figures=False, epochs=5, resume=True)
    assert resumed.summary["threads"] == 2
