"""When a training GIF gets a frame: the one schedule every experiment uses.

A frame is a snapshot a hook keeps in the Task's ``record`` (checkpointed, so a resumed run's GIF is
the uninterrupted run's), taken after an epoch (most lessons train many) or after an optimizer step
(the MNIST lessons train for one or a few epochs); either way about ``gif_frames`` of them in a run.
"""
from __future__ import annotations

import torch


def every_nth_epoch(params: dict) -> int:
    """Epochs between two GIF frames: about ``gif_frames`` frames whatever the length."""
    return max(1, params["epochs"] // max(1, params.get("gif_frames", 40)))


def frames_every(every: int, snapshot):
    """An ``on_epoch_end`` hook keeping ``snapshot(model)`` (a dict of small tensors) at epoch 1
    and every ``every`` epochs, in ``record["frames"]``."""

    def on_epoch_end(epoch, model, record):
        if epoch % every == 0 or epoch == 1:
            model.eval()
            with torch.no_grad():
                record.setdefault("frames", []).append({"epoch": epoch, **snapshot(model)})

    return on_epoch_end


def steps_between_frames(params: dict, steps_per_epoch: int) -> int:
    """Steps between two GIF frames: about ``gif_frames`` frames over the whole run."""
    total = max(1, int(params["epochs"]) * steps_per_epoch)
    return max(1, total // max(1, int(params.get("gif_frames", 10))))


def every_n_steps(every: int, hook):
    """An ``on_step_end`` hook calling ``hook(step)`` after every ``every``-th optimizer step. It runs
    inside the timed loop, so the hook must stay cheap: copy a few kilobytes, no plotting."""
    every = max(1, int(every))

    def on_step_end(step, model, record):
        if step % every == 0:
            hook(step)

    return on_step_end
