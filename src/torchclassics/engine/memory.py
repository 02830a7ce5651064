"""Whether a training step fits in memory, estimated before the first step allocates it.

The parameter bounds of the schemas keep every size sane on its own, but their product may not
be: a 1 -> 65,536 -> 1 net on batches of a million points needs half a terabyte of activations.
Without this check such a run is refused only by the allocator, mid-run, after its folder was
claimed. The estimate is deliberately simple and errs high:

* the weights, their gradients and an optimizer's two moments (Adam's): 4 x the parameters' bytes;
* for a task trained by the lesson step, the activations of one batch: every module's output for
  one sample (measured by one forward pass of one sample), times the batch size, kept for the
  backward pass and matched by their gradients (x 2).

It is compared with the memory the device has available (the CPU's: psutil; a GPU's: CUDA's own
count). A task with its own step (a GAN's, a DQN's) is checked for its weights only.
"""
from __future__ import annotations

import psutil
import torch
from torch import nn

from ..core.errors import UserError
from .task import Task, plain_forward

WEIGHT_COPIES = 4        # weights, gradients, two optimizer moments
ACTIVATION_COPIES = 2    # the outputs kept for backward, and their gradients
HEADROOM = 0.9           # of the available memory a run may plan to use


def parameter_bytes(task: Task) -> int:
    seen, total = set(), 0
    for model in task.models.values():
        for p in model.parameters():
            if id(p) not in seen:
                seen.add(id(p))
                total += p.numel() * p.element_size()
    return total


def activation_bytes_per_sample(model: nn.Module, sample) -> int:
    """The bytes of every leaf module's output for one sample (one forward pass, no gradients kept)."""
    total = 0

    def count(_module, _inputs, output):
        nonlocal total
        for tensor in output if isinstance(output, (tuple, list)) else (output,):
            if isinstance(tensor, torch.Tensor):
                total += tensor.numel() * tensor.element_size()

    leaves = [m for m in model.modules() if not list(m.children())]
    handles = [m.register_forward_hook(count) for m in leaves]
    training = model.training
    try:
        with torch.no_grad():
            model.eval()(sample)  # eval: batch norm takes one sample, and its running statistics stay
    finally:
        model.train(training)
        for handle in handles:
            handle.remove()
    return total


def estimate(task: Task) -> tuple[int, str]:
    """(bytes, what they are) of one training step of ``task``."""
    weights = WEIGHT_COPIES * parameter_bytes(task)
    if task.step is not None or task.forward is not plain_forward or not hasattr(task.train, "epoch"):
        return weights, "weights, gradients and optimizer state"
    inputs, _ = next(iter(task.train.epoch(0)))
    per_sample = activation_bytes_per_sample(task.model, inputs[:1])
    return weights + ACTIVATION_COPIES * per_sample * len(inputs), \
        f"weights, gradients, optimizer state and the activations of a batch of {len(inputs):,}"


def available(device: torch.device) -> int:
    if device.type == "cuda":
        return torch.cuda.mem_get_info(device)[0]
    return psutil.virtual_memory().available


class TooLarge(UserError):
    """A step that cannot fit: the caller, who knows which parameters were changed, may name them."""


def check_fits(task: Task, device: torch.device) -> None:
    need, what = estimate(task)
    have = available(device)
    if need > HEADROOM * have:
        raise TooLarge(f"one training step needs about {need / 2**30:,.1f} GiB ({what}); {device.type} has "
                        f"{have / 2**30:,.1f} GiB available. Lower the batch size or the model's size.")
