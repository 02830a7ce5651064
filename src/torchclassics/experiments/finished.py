"""A finished run: one object, built either from the live objects right after training (nothing reloaded)
or read back from its run directory (:func:`read`: evaluate, predict, export, figures), with the same
numbers either way.

Reading a run loads each part's last.pt (its weights, what its hooks recorded, its rows), so the
experiment decides which part is the run's exactly as it did at the end of training; ``best`` then
loads that part's best.pt weights.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from .. import registry
from ..core.errors import UserError
from ..engine.task import Fit, Task
from ..params import sources
from ..plugins import discovery
from ..rundir import layout
from ..rundir.reader import RunFolder
from ..rundir.records import Summary

MAIN = ""  # the tag of a run's one part


@dataclass
class Part:
    """One model of a run, with the parameters its trainer uses and, once trained, its Fit."""

    task: Task
    params: dict
    fit: Fit | None = None
    stopped: str | None = None  # why it stopped early (an optimizer of the comparison that diverged)


@dataclass
class FinishedRun:
    """A trained run: its experiment, parameters, folder, and each part's task (models with the
    run's weights, the data when built) and fit. ``memo`` keeps what several steps compute (the
    test set's predictions) for this run only."""

    experiment: Any
    params: dict
    path: Path
    device: torch.device
    parts: dict[str, Part]
    main: str = MAIN
    summary: Summary | None = None
    memo: dict = field(default_factory=dict)

    @property
    def task(self) -> Task:
        return self.parts[self.main].task

    @property
    def model(self):
        return self.task.model

    @property
    def fits(self) -> dict[str, Fit]:
        return {tag: part.fit for tag, part in self.parts.items() if part.fit is not None}

    @property
    def fit(self) -> Fit:
        """The run's Fit: its one part's, or, for several, every part's rows and the main part's best."""
        fits = self.fits
        if list(fits) == [MAIN]:
            return fits[MAIN]
        main = fits[self.main]
        return Fit([row for fit in fits.values() for row in fit.history],
                   dict(main.best, **{self.experiment.part_label: self.main}),
                   sum(f.train_s for f in fits.values()), sum(f.steps for f in fits.values()), [], main.record,
                   max(f.resumed_from for f in fits.values()))

    def remember(self, key: str, compute: Callable[[], Any]) -> Any:
        if key not in self.memo:
            self.memo[key] = compute()
        return self.memo[key]


def _find_plugin_of(folder: RunFolder, name: str) -> None:
    """A run of an experiment of one's own that nothing names now: its summary says where
    the module was."""
    if name in discovery.all_experiment_names() or not folder.has(layout.SUMMARY):
        return
    module = folder.summary().module
    if module:
        discovery.add_plugin_modules([module])


def read(run_path: str | Path, checkpoint: str = "last", device: str = "cpu", need_data: bool = True) -> FinishedRun:
    """A run directory read back as a :class:`FinishedRun`: its
    parameters, each part's task with the weights and record of its last.pt (``checkpoint="best"``:
    the main part's best.pt weights), and each part's Fit. ``need_data`` False (predict, export)
    makes the model without the data where the experiment can."""
    from ..engine import state
    from ..engine.device import pick_device, seed_everything

    if not layout.is_checkpoint_name(checkpoint):
        raise UserError.for_option("checkpoint", checkpoint, "choose best or last.")
    folder = RunFolder(Path(run_path))
    name = folder.experiment()
    _find_plugin_of(folder, name)
    params = sources.resolve(name, saved=(folder.params(), str(folder.file(layout.PARAMS))))
    experiment = registry.get(name)
    target = pick_device(device)
    seed_everything(params["seed"])
    summary = folder.summary() if folder.has(layout.SUMMARY) else None
    record = _last_state(folder, MAIN).record if _has_checkpoint(folder, MAIN) else {}
    task = experiment.rebuild(params, target, record, need_data)
    parts = experiment.parts(task, params)
    stopped = experiment.stopped_parts(summary)
    for tag, part in parts.items():
        if tag in stopped:
            part.stopped = stopped[tag]
            continue
        last = _last_state(folder, tag)
        _load_models(part.task, last.model, last.models, folder.checkpoint(layout.LAST, tag), name)
        part.task.record.update(last.record)  # what an older release's checkpoint lacks, build made
        if need_data and last.data is not None and callable(getattr(part.task.train, "load_state_dict", None)):
            part.task.train.load_state_dict(last.data)
        part.fit = Fit.from_state(last)
    main = experiment.main_part(parts)
    if checkpoint == layout.BEST:
        path = folder.checkpoint(layout.BEST, main)
        if not path.exists():
            raise UserError(f"{folder.path} has no {path.relative_to(folder.path)} (was the run killed before its "
                            "first checkpoint?).")
        best = state.load_best(path, map_location=target)
        _load_models(parts[main].task, best.model, best.models, path, name)
    for part in parts.values():
        part.task.model.to(target)
    return FinishedRun(experiment, params, folder.path, target, parts, main, summary)


def _has_checkpoint(folder: RunFolder, tag: str) -> bool:
    return layout.checkpoint_path(folder.path, layout.LAST, tag).exists()


def _last_state(folder: RunFolder, tag: str):
    from ..engine import state

    path = folder.checkpoint(layout.LAST, tag)
    if not path.exists():
        raise UserError(f"{folder.path} has no {path.relative_to(folder.path)} (was the run killed before its "
                        "first checkpoint?).")
    return state.load_training_state(path, map_location="cpu")


def _load_models(task, weights: dict, others: dict, path: Path, name: str) -> None:
    from ..engine import state

    state.load_weights(task.model, weights, path, f"a {name} model with these params")
    for other, module in (task.models or {}).items():  # a GAN's discriminator, a DQN's target net
        if module is not task.model and other in others:
            state.load_weights(module, others[other], path, f"the {other} of a {name} run")


def threads_of(run: FinishedRun) -> int:
    """The CPU threads a finished run trained with (params.json), or what it would choose now."""
    from ..engine import threads

    return threads.planned(run.params.get("threads"), run.model, run.task.cpu_threads)
