"""The whole training step as one CUDA graph: forward, loss, backward and optimizer step replayed
with a single launch (``cuda_graphs: true``, CUDA only).

A small net's step is a few dozen tiny kernels; launching them one by one from Python costs
more than running them. Captured once per batch shape (an epoch's last, shorter batch gets a
graph of its own, sharing the memory pool) and replayed for every batch of that shape, the step
runs at the speed of the GPU. What it needs, and checks before choosing it:

* the lesson's own step (plain forward, no carried hidden state, no closure optimizer);
* Adam or AdamW, built with ``capturable=True`` (their step count lives on the GPU);
* no scheduler (a graph keeps the learning rate it was captured with), no fp16 GradScaler
  (its overflow check synchronises with the CPU), one process (DDP reduces gradients between
  backward and step), data already on the GPU.

Otherwise the run trains eagerly and says why once. Warming up before a capture takes real
optimizer steps; they are undone (weights, buffers and optimizer state restored in place), so a
graphed run trains exactly as an eager one would.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from ..core import messages

GRAPHABLE_OPTIMIZERS = ("Adam", "AdamW")
WARMUP_STEPS = 3


def why_not(trainer) -> str | None:
    """None when the whole step can be captured; otherwise the reason, in a few words."""
    params, task = trainer.params, trainer.task
    reasons = [
        (trainer.device.type != "cuda", "not on a CUDA GPU"),
        (task.step is not None, "the experiment has its own step"),
        (task.carry_state or task.forward.__name__ != "plain_forward", "the forward carries a hidden state"),
        (params.get("optimizer") not in GRAPHABLE_OPTIMIZERS,
         f"optimizer {params.get('optimizer')} (Adam or AdamW only)"),
        (bool(params.get("scheduler")), "a scheduler changes the learning rate"),
        (trainer.precision.scaler is not None, "precision fp16 (its GradScaler)"),
        (trainer.distributed is not None, "several processes (DDP)"),
        (len(task.optimized) != 1, "several optimizers"),
    ]
    return next((reason for failed, reason in reasons if failed), None)


def wanted(params: dict, device: torch.device) -> bool:
    return bool(params.get("cuda_graphs")) and device.type == "cuda"


@dataclass
class Captured:
    graph: torch.cuda.CUDAGraph
    inputs: torch.Tensor
    targets: torch.Tensor
    outputs: torch.Tensor
    loss: torch.Tensor


class GraphedLessonStep:
    """``lesson_step``, replayed from one CUDA graph per batch shape."""

    def __init__(self):
        self.graphs: dict[tuple, Captured] = {}
        self.pool = None

    def __call__(self, trainer, inputs, targets):
        key = (tuple(inputs.shape), inputs.dtype, tuple(targets.shape), targets.dtype)
        if key not in self.graphs:
            self.graphs[key] = self.capture(trainer, inputs, targets)
        captured = self.graphs[key]
        captured.inputs.copy_(inputs)
        captured.targets.copy_(targets)
        captured.graph.replay()
        # the static tensors are overwritten by the next replay: hand out copies
        return {trainer.task.loss_name: captured.loss.clone()}, captured.outputs.clone()

    def capture(self, trainer, inputs, targets) -> Captured:
        model, optimizer, task, amp = trainer.train_model, trainer.optimizer, trainer.task, trainer.precision
        static_inputs, static_targets = inputs.clone(), targets.clone()

        def step():
            with amp.autocast(cache=False):  # autocast's cast cache cannot live across replays
                outputs = model(static_inputs)
                loss = task.loss_fn(outputs, static_targets)
            loss.backward()
            trainer.clip()
            optimizer.step()
            return outputs, loss

        saved = _snapshot(model, optimizer)
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):  # warm-up: cuBLAS/cuDNN handles, optimizer state allocated
            for _ in range(WARMUP_STEPS):
                optimizer.zero_grad(set_to_none=True)
                step()
        torch.cuda.current_stream().wait_stream(side)
        _restore(model, optimizer, saved)
        graph = torch.cuda.CUDAGraph()
        optimizer.zero_grad(set_to_none=True)  # the graph allocates its own gradients
        with torch.cuda.graph(graph, pool=self.pool):
            outputs, loss = step()
        self.pool = self.pool or graph.pool()
        messages.status(f"captured the training step as a CUDA graph for batches of {tuple(inputs.shape)}")
        return Captured(graph, static_inputs, static_targets, outputs, loss)


def _snapshot(model, optimizer) -> dict:
    return {
        "tensors": [t.detach().clone() for t in _model_tensors(model)],
        "state": {id(p): {k: v.clone() if torch.is_tensor(v) else v for k, v in s.items()}
                  for p, s in optimizer.state.items()},
    }


def _restore(model, optimizer, saved: dict) -> None:
    """Undo the warm-up in place, keeping every tensor the graph is about to capture."""
    with torch.no_grad():
        for tensor, value in zip(_model_tensors(model), saved["tensors"]):
            tensor.copy_(value)
        for param, state in optimizer.state.items():
            before = saved["state"].get(id(param))
            for key, value in state.items():
                if not torch.is_tensor(value):
                    continue
                if before is None:  # a fresh optimizer: Adam's state starts at zero
                    value.zero_()
                else:
                    value.copy_(before[key])


def _model_tensors(model) -> list[torch.Tensor]:
    return [p for p in model.parameters()] + [b for b in model.buffers()]
