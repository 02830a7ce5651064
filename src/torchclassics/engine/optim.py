"""Optimizers and learning-rate schedulers from a run's parameters, and the check that they can train
for the whole planned schedule before anything is written."""
from __future__ import annotations

import inspect
import math
from typing import Any

import torch
from torch import nn

from ..core.errors import UserError
from .steps import NEEDS_CLOSURE

# Devices where an optimizer that has a fused kernel (Adam, AdamW, SGD, Adagrad) uses it unless
# optimizer_args say otherwise: one kernel per step for all parameters instead of a dozen small
# ops per parameter. cnn_mnist: 4.0x -> 5.6x the tutorial on an H100; epoch 5-10% shorter on a
# 2-core CPU (measured).
FUSED_ON = ("cuda", "cpu")
# Epochs of a schedule the check steps through: a longer one is checked up to here (the learning
# rate of the common schedulers is monotone or periodic well within it).
CHECKED_EPOCHS = 100_000


def optimizer_kwargs(params: dict, cls, device: torch.device | None) -> dict:
    kwargs = dict(params.get("optimizer_args") or {})
    for key, value in kwargs.items():
        if isinstance(value, list):  # JSON has no tuples: betas=[0.9, 0.99]
            kwargs[key] = tuple(value)
    if device is not None and device.type in FUSED_ON and not {"fused", "foreach"} & kwargs.keys() \
            and "fused" in inspect.signature(cls).parameters:
        kwargs["fused"] = True
    return kwargs


def text_where_numbers_go(cls, kwargs: dict) -> str | None:
    """Why an argument given as text cannot be meant (``milestones="soon"``: torch would take its letters
    as milestones and never decay), or None. Text goes only where the class takes text: a parameter whose
    default is text, or whose annotation names ``str`` or ``Literal``."""
    try:
        signature = inspect.signature(cls)
    except (TypeError, ValueError):
        return None
    for key, value in kwargs.items():
        parameter = signature.parameters.get(key)
        if parameter is None or not isinstance(value, str):
            continue
        kind = parameter.annotation
        annotation = "" if kind is inspect.Parameter.empty else kind.__name__ if isinstance(kind, type) else str(kind)
        if isinstance(parameter.default, str) or "str" in annotation or "Literal" in annotation:
            continue
        return f"{key}={value!r} is text, and {cls.__name__} takes {annotation or 'a number or a list'} there"
    return None


def _described(params: dict) -> str:
    return f"optimizer={params.get('optimizer', 'SGD')!r} with optimizer_args={params.get('optimizer_args') or {}}"


def build_optimizer(params: dict, parameters, device: torch.device | None = None,
                    capturable: bool = False) -> torch.optim.Optimizer:
    """``torch.optim.<optimizer>(parameters, lr=lr, **optimizer_args)``; ``capturable``: its state on
    the GPU, so a CUDA graph can replay its step."""
    name = params.get("optimizer", "SGD")
    cls = getattr(torch.optim, name, None)
    if not (isinstance(cls, type) and issubclass(cls, torch.optim.Optimizer)):
        raise UserError(f"optimizer={name!r}: not a torch.optim optimizer.")
    if isinstance(parameters, nn.Module):
        parameters = parameters.parameters()
    parameters = list(parameters)
    kwargs = optimizer_kwargs(params, cls, device)
    wrong = text_where_numbers_go(cls, kwargs)
    if wrong:
        raise UserError(f"{_described(params)}: {wrong}.")
    if capturable:
        kwargs["capturable"] = True
    try:
        try:
            return cls(parameters, lr=params["lr"], **kwargs)
        except RuntimeError:
            if "fused" in (params.get("optimizer_args") or {}) or not kwargs.pop("fused", False):
                raise
            return cls(parameters, lr=params["lr"], **kwargs)  # a torch without this fused kernel
    except Exception as err:  # TypeError, ValueError, IndexError (betas=[0.9]), ...: all the user's arguments
        raise UserError(f"{_described(params)} and lr={params['lr']}: {_first_line(err)}.") from None


def build_scheduler(params: dict, optimizer) -> Any:
    """``scheduler: {"name": "StepLR", "step_size": 10, "gamma": 0.5}`` or null; stepped once per epoch."""
    spec = params.get("scheduler")
    if not spec:
        return None
    spec = dict(spec)
    name = spec.pop("name", None)
    cls = getattr(torch.optim.lr_scheduler, str(name), None)
    if not isinstance(cls, type):
        raise UserError(f"scheduler name {name!r}: not in torch.optim.lr_scheduler (e.g. StepLR, CosineAnnealingLR).")
    wrong = text_where_numbers_go(cls, spec)
    if wrong:
        raise UserError(f"scheduler={params['scheduler']}: {wrong}.")
    try:
        return cls(optimizer, **spec)
    except Exception as err:
        raise UserError(f"scheduler={params['scheduler']}: {_first_line(err)}.") from None


def is_plateau(scheduler) -> bool:
    return isinstance(scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau)


def _first_line(err: BaseException) -> str:
    text = " ".join(str(err).split()) or type(err).__name__
    return text[:200]


def check_training_setup(params: dict) -> None:
    """Build the optimizer and scheduler of ``params`` on one dummy parameter and run the whole planned
    schedule (one optimizer step, then one scheduler step per epoch), so that arguments only a step
    can judge (SparseAdam on dense gradients, OneCycleLR shorter than the run, a gamma that drives the
    learning rate negative or to infinity) fail here, before anything is written, naming them."""
    weight = nn.Parameter(torch.zeros(1))
    optimizer = build_optimizer(params, [weight])
    scheduler = build_scheduler(params, optimizer)
    weight.grad = torch.zeros_like(weight)
    try:
        if params.get("optimizer") in NEEDS_CLOSURE:
            optimizer.step(lambda: (weight * 0).sum())
        else:
            optimizer.step()
    except Exception as err:
        raise UserError(f"{_described(params)} cannot train: {_first_line(err)}.") from None
    cause = f"scheduler={params['scheduler']}" if scheduler is not None else ""
    _check_rate(params, optimizer, 0, cause)  # a scheduler may set the rate when it is made (CyclicLR)
    if scheduler is None:
        return
    for epoch in range(1, min(int(params.get("epochs", 1)), CHECKED_EPOCHS) + 1):
        try:
            scheduler.step(0.0) if is_plateau(scheduler) else scheduler.step()
        except Exception as err:
            raise UserError(f"scheduler={params['scheduler']} fails at epoch {epoch} of {params.get('epochs')} "
                            f"({_first_line(err)}).") from None
        _check_rate(params, optimizer, epoch, cause)


def _check_rate(params: dict, optimizer, epoch: int, cause: str) -> None:
    for group in optimizer.param_groups:
        lr = group["lr"]
        lr = float(lr) if not isinstance(lr, torch.Tensor) else float(lr.item())
        if not (math.isfinite(lr) and lr >= 0):
            by = cause or f"lr={params.get('lr')!r}"
            raise UserError(f"{by}: the learning rate becomes {lr:g} at epoch {epoch} of {params.get('epochs')}; it "
                            f"must stay finite and >= 0. Change {'the scheduler' if cause else 'lr'}.")
