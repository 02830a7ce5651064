"""Data parallelism, both kinds: ``nn.DataParallel`` and ``DistributedDataParallel`` (DDP).

Both split each batch over several replicas of the model and make every replica take the same
step; they differ in how.

* ``nn.DataParallel(model)``: one process. Each forward copies the model from the first GPU to
  every GPU, cuts the batch along dimension 0, runs the pieces in threads and gathers the
  outputs on the first GPU; backward sums the replicas' gradients into the original
  parameters. Without CUDA devices it calls the model as it is.
* ``DistributedDataParallel(model)``: one process per device (started by ``torchrun``), each with
  its own replica and its own share of the data; during backward the gradients are averaged
  over the processes (all-reduce, bucket by bucket, while the rest of backward still runs).
  Works on CPUs (the gloo backend) and across machines.

PyTorch recommends DDP even on one machine: no copy of the model every step, no GIL between
the replicas' threads, no first GPU doing the gathering and the loss for all, and the same
code from one machine to many. Both rest on one piece of arithmetic, which this lesson checks:
the gradient of the mean loss over a batch is the mean of the gradients of its equal shards.

The lesson trains the same experiment (regression on mini-batches) in one process and with
``torchrun --nproc_per_node=2`` on CPU processes (torchclassics' ``batch_size`` is the global
batch, split over the processes, so they train as one), and with ``nn.DataParallel`` where CUDA
devices exist (:func:`data_parallel_fit`: the experiment's model called through it).
"""
from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

import torch
from torch import nn

from ..core.errors import UserError

EXPERIMENT = "regression"
# Mini-batches (the split over processes matters) and a short run: seconds on a CPU.
SETTINGS = {"epochs": 30, "batch_size": 20, "optimizer": "Adam", "lr": 0.01}
PROCESSES = 2


# -- the arithmetic both kinds rely on ---------------------------------------------------------------
def small_net(seed: int = 1) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(1, 10), nn.ReLU(), nn.Linear(10, 1))


def gradients(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Every parameter's gradient of the mean squared error, in one flat vector."""
    model.zero_grad()
    nn.functional.mse_loss(model(x), y).backward()
    return torch.cat([p.grad.flatten() for p in model.parameters()])


def shard_gradients(shards: int = PROCESSES, batch: int = 20) -> dict:
    """The whole batch's gradient against the mean of its shards' (every ``shards``-th sample,
    as the distributed sampler deals them): what DDP's all-reduce computes."""
    model = small_net()
    x = torch.linspace(-1, 1, batch).unsqueeze(1)
    y = x.pow(2)
    whole = gradients(model, x, y)
    averaged = torch.stack([gradients(model, x[i::shards], y[i::shards]) for i in range(shards)]).mean(0)
    return {"shards": shards, "per_shard": batch // shards, "difference": float((whole - averaged).abs().max()),
            "size": float(whole.abs().max())}


def data_parallel_without_gpus() -> dict:
    """What ``nn.DataParallel`` does when no CUDA device is visible: it calls the model itself."""
    model = small_net()
    parallel = nn.DataParallel(model)
    x = torch.linspace(-1, 1, 8).unsqueeze(1)
    with torch.no_grad():
        same = torch.equal(parallel(x), model(x))
    return {"device_ids": list(parallel.device_ids), "same": same,
            "state_dict_keys": next(iter(parallel.state_dict()))}


# -- the same experiment, three ways ----------------------------------------------------------------
def one_process_fit(out: Path, device: str = "cpu") -> dict:
    """The experiment in this process: (final metrics, per-epoch rows)."""
    from ..api import run

    result = run(EXPERIMENT, out=out, device=device, figures=False, quiet=True, **SETTINGS)
    return {"metrics": result.metrics, "history": _rows(out), "world_size": result.summary["world_size"]}


def _rows(run_dir: Path) -> list[dict]:
    from ..rundir.reader import RunFolder

    return RunFolder(run_dir).rows()[0]


def torchrun_command(out: Path, processes: int = PROCESSES) -> list[str]:
    sets = [item for key, value in SETTINGS.items() for item in ("--set", f"{key}={value}")]
    return [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={processes}",
            "-m", "torchclassics", "run", EXPERIMENT, *sets, "--no-figures", "--quiet", "--out", str(out)]


def ddp_fit(out: Path, processes: int = PROCESSES) -> dict:
    """The experiment under ``torchrun --nproc_per_node=processes``, CPU processes (gloo): each
    takes every ``processes``-th sample of the same shuffled order, ``batch_size / processes`` a step."""
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": "", "OMP_NUM_THREADS": "1"}
    done = subprocess.run(torchrun_command(out, processes), capture_output=True, text=True, env=env, timeout=600)
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["no output"])[-1]
        raise UserError(f"lesson parallel: torchrun failed ({last}).")
    from ..rundir.reader import RunFolder

    summary = RunFolder(out).summary()
    return {"metrics": summary.metrics, "history": _rows(out), "world_size": summary.world_size}


def data_parallel_fit(out: Path, name: str = EXPERIMENT, **overrides) -> dict:
    """Experiment ``name`` trained by the engine's own Trainer with its model called through
    ``nn.DataParallel`` over every visible GPU: one process, each batch cut into one piece per GPU.
    Without CUDA, DataParallel calls the model itself (the same code path, on the CPU). The
    checkpoints hold the model's own state_dict (no ``module.`` prefix): they load as any run's."""
    from .. import progress, registry
    from ..engine.device import seed_everything
    from ..engine.loop import Trainer, plain_forward
    from ..experiments.finished import MAIN, FinishedRun, Part
    from ..params import sources
    from ..rundir.writer import RunWriter

    params = sources.resolve(name, overrides={**SETTINGS, **overrides} if name == EXPERIMENT else overrides)
    experiment = registry.get(name)
    # DataParallel keeps the model, and gathers the outputs, on the first GPU
    device = torch.device("cuda", 0) if torch.cuda.is_available() else torch.device("cpu")
    seed_everything(params["seed"])
    task = experiment.build(params, device)
    if task.forward is not plain_forward or task.step is not None:
        raise UserError(f"{name} has its own forward or step; this lesson wraps plain model(inputs) calls.")
    parallel = nn.DataParallel(task.model.to(device))
    task.forward = lambda model, inputs, state: (parallel(inputs), state)  # the wrapper, the same parameters
    run_dir = RunWriter(Path(out))
    run_dir.claim(resume=False)
    run_dir.planned = {"experiment": name, **params}
    try:
        trainer = Trainer(task, params, run_dir, device, objective=experiment.goal(task))
        with progress.quiet():  # as one_process_fit's run: the lesson prints its own comparison
            fit = trainer.fit()
    finally:
        run_dir.close()
    finished = FinishedRun(experiment, params, run_dir.path, device, {MAIN: Part(task, params, fit)})
    return {"metrics": experiment.final_metrics(finished), "history": fit.history,
            "gpus": len(parallel.device_ids) if device.type == "cuda" else 0}


def same_training(a: dict, b: dict, rel: float = 1e-4) -> bool:
    """Equal final metrics, up to the order floating-point sums are taken in."""
    return all(abs(b[k] - v) <= rel * abs(v) + 1e-6 for k, v in a.items() if isinstance(v, float) and k in b)


# -- the lesson -------------------------------------------------------------------------------------------
def draw(fits: dict[str, dict], path: Path) -> Path:
    from ..viz.plots import new_figure
    from ._figure import save_figure

    fig = new_figure(6, 4)
    ax = fig.add_subplot(1, 1, 1)
    for (label, fit), style in zip(fits.items(), ("-", "--", ":")):
        rows = [row for row in fit["history"] if "test_mse" in row]
        ax.plot([row["epoch"] for row in rows], [row["test_mse"] for row in rows], style, lw=2, label=label)
    ax.set(xlabel="epoch", ylabel="test MSE", yscale="log", title=f"{EXPERIMENT}: one training, {len(fits)} ways")
    ax.legend()
    return save_figure(fig, path)


def _say_arithmetic() -> None:
    shards = shard_gradients()
    print(f"1. the arithmetic: a batch of 20 dealt into {shards['shards']} shards of {shards['per_shard']}; the "
          f"mean of the shards' gradients is the batch's gradient: largest difference {shards['difference']:.1e} "
          f"(gradients up to {shards['size']:.2f})")


def _say_data_parallel(folder: Path, plain_gpu: dict | None) -> dict | None:
    print("\n2. nn.DataParallel (one process; each step copies the model to every GPU and cuts the batch):")
    if not torch.cuda.is_available():
        alone = data_parallel_without_gpus()
        print(f"   no CUDA device here: device_ids={alone['device_ids']}, DataParallel(model)(x) is model(x): "
              f"{alone['same']}; its state_dict keys gain 'module.' ({alone['state_dict_keys']}): save "
              "model.state_dict(), not the wrapper's")
        return None
    fit = data_parallel_fit(folder / "data_parallel")
    same = same_training(plain_gpu["metrics"], fit["metrics"], rel=1e-3)
    print(f"   {fit['gpus']} GPU(s): test_mse {fit['metrics']['test_mse']:.6f} vs "
          f"{plain_gpu['metrics']['test_mse']:.6f} without the wrapper on the same GPU; same training: {same}")
    return fit


def run(out: Path) -> Path:
    _say_arithmetic()
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch)
        one = one_process_fit(folder / "one")
        plain_gpu = one_process_fit(folder / "one_gpu", device="cuda") if torch.cuda.is_available() else None
        dp = _say_data_parallel(folder, plain_gpu)
        print(f"\n3. DistributedDataParallel, {PROCESSES} CPU processes (gloo), the batch of "
              f"{SETTINGS['batch_size']} split {SETTINGS['batch_size'] // PROCESSES} + "
              f"{SETTINGS['batch_size'] // PROCESSES}:")
        print("   torchrun " + " ".join(torchrun_command(Path("OUT"))[3:]))
        ddp = ddp_fit(folder / "ddp")
        print(f"   world_size {ddp['world_size']}: test_mse {ddp['metrics']['test_mse']:.6f}, one process "
              f"{one['metrics']['test_mse']:.6f}; same training: {same_training(one['metrics'], ddp['metrics'])}")
        fits = {"1 process": one, f"DDP, {PROCESSES} processes": ddp}
        if dp is not None:
            fits["DataParallel"] = dp
        return draw(fits, Path(out) / "parallel.png").parent
