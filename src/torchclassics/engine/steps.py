"""The training steps the loop runs: the lesson's own step, written out as the lessons write it,
and the same update for an optimizer that needs a closure (LBFGS). An experiment with a step of its
own (a GAN's discriminator-then-generator update) gives ``Task.step`` instead."""
from __future__ import annotations

import torch

# Optimizers whose step() must be given a closure that re-evaluates the loss.
NEEDS_CLOSURE = ("LBFGS",)


def detach_state(state):
    """Truncated back-propagation through time: keep the hidden state's value, cut its graph."""
    if state is None:
        return None
    if isinstance(state, torch.Tensor):
        return state.detach()
    return type(state)(detach_state(s) for s in state)


def lesson_step(trainer, inputs, targets):
    """One optimizer update, as the lessons write it."""
    task, optimizer, amp = trainer.task, trainer.optimizer, trainer.precision
    optimizer.zero_grad(set_to_none=True)
    with amp.autocast():
        outputs, trainer.hidden = task.forward(trainer.train_model, inputs, trainer.hidden)
        loss = task.loss_fn(outputs, targets)
    amp.backward(loss)                      # loss.backward(), scaled under fp16
    trainer.clip()                          # clip_grad_norm, when the params ask for it
    amp.step(optimizer)                     # optimizer.step(), unscaled (or skipped) under fp16
    return {task.loss_name: loss}, outputs


def closure_step(trainer, inputs, targets):
    """The same update for an optimizer that evaluates the loss several times per step (LBFGS)."""
    task, optimizer, amp = trainer.task, trainer.optimizer, trainer.precision
    kept = {}

    def closure():
        optimizer.zero_grad(set_to_none=True)
        with amp.autocast():
            outputs, state = task.forward(trainer.train_model, inputs, trainer.hidden)
            loss = task.loss_fn(outputs, targets)
        loss.backward()
        trainer.clip()
        kept.setdefault("outputs", outputs)  # the first evaluation: before this step's update
        kept.setdefault("loss", loss)
        kept.setdefault("state", state)
        return loss

    optimizer.step(closure)
    trainer.hidden = kept["state"]
    return {task.loss_name: kept["loss"]}, kept["outputs"]
