"""The records of a run directory as typed values, each with a ``format`` number.

* :class:`Summary` (summary.json): what a finished run did and measured;
* :class:`TrialMarker` (trial.json): which search study and trial a run is, and how it ended;
* :class:`ExportRecord` (``<export>.json``): which run and checkpoint an exported model came from;
* :class:`Row` (a line of metrics.jsonl): one epoch's bookkeeping and metrics.

Writing always writes :data:`FORMAT`. Reading accepts every earlier format:

* format 0, the release before formats (0.1.0): no ``format`` key; an export record's export
  format was under ``format`` (now ``export_format``); rows written before the loss was named
  per experiment say ``loss`` where the summary says ``mse`` (:func:`renamed_legacy_loss`).

A record from a newer release (a larger number) is read for what this release knows of it.
Values of the wrong type are dropped (a warning-worthy problem is given back in ``problems``),
never raised: one damaged run must not stop a reader of many.
"""
from __future__ import annotations

from dataclasses import dataclass, field, fields

from .metrics import BOOKKEEPING, HELD_OUT_SPLITS, Objective, held_out, split_of

FORMAT = 1


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _finite_or_none(value):
    """A number that is an int or a float a reader can show; None for anything else (a 400-digit
    integer from a tampered summary is turned into a float that fits, or None)."""
    if not _is_number(value):
        return None
    if isinstance(value, int):
        try:
            return value if abs(value) < 2**63 else float(value)
        except OverflowError:
            return None
    return value


def _format_of(data: dict) -> int:
    value = data.get("format")
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else 0


def plain_numbers(value):
    """``value`` with every integer too large for a float64 replaced by None, recursively."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int):
        return _finite_or_none(value)
    if isinstance(value, dict):
        return {str(k): plain_numbers(v) for k, v in value.items()}
    if isinstance(value, list):
        return [plain_numbers(v) for v in value]
    return value


def _typed(data: dict, name: str, kind, default, problems: list):
    value = data.get(name, default)
    if value is default or value is None:
        return default
    if kind is float:
        ok = _is_number(value)
    elif kind is int:
        ok = isinstance(value, int) and not isinstance(value, bool)
    else:
        ok = isinstance(value, kind)
    if not ok:
        problems.append(f"{name} is {type(value).__name__}, not {kind.__name__}")
        return default
    return plain_numbers(value)


# -- summary.json ---------------------------------------------------------------------------------
@dataclass
class Summary:
    experiment: str
    params: dict
    metrics: dict
    best: dict = field(default_factory=dict)     # {"metric", "value", "epoch"} (+ which model, if several)
    objective: Objective | None = None
    seed: int | None = None
    device: str | None = None
    world_size: int = 1
    threads: int | None = None                   # CPU threads the training used
    epochs: int | None = None
    steps: int | None = None
    resumed_from_epoch: int = 0
    train_s: float | None = None                 # inside the training loop alone
    wall_s: float | None = None                  # the whole run: building, training, evaluation, figures
    versions: dict = field(default_factory=dict)
    run: str | None = None                       # the folder's name when it was written
    study: str | None = None                     # a search trial's study and number
    trial: int | None = None
    module: str | None = None                    # an experiment of one's own: where its code was
    results: dict = field(default_factory=dict)  # the experiment's own facts (best_optimizer, classes, ...)
    format: int = FORMAT
    problems: list = field(default_factory=list, compare=False)

    def to_json(self) -> dict:
        """The experiment's own results sit at the top level, as summary.json always had them."""
        known = {"format": self.format, "experiment": self.experiment, "run": self.run, "params": self.params,
                 "seed": self.seed, "device": self.device, "world_size": self.world_size, "threads": self.threads,
                 "epochs": self.epochs, "steps": self.steps, "resumed_from_epoch": self.resumed_from_epoch,
                 "metrics": self.metrics, "objective": self.objective.as_dict() if self.objective else None,
                 "best": self.best, "train_s": self.train_s, "wall_s": self.wall_s, "versions": self.versions,
                 "study": self.study, "trial": self.trial, "module": self.module}
        written = {key: value for key, value in known.items()
                   if value is not None or key in ("format", "experiment", "params", "metrics")}
        return {**written, **{k: v for k, v in self.results.items() if k not in known}}

    @classmethod
    def from_json(cls, data: dict) -> Summary:
        problems: list[str] = []
        objective = data.get("objective")
        goal = None
        if (isinstance(objective, dict) and isinstance(objective.get("metric"), str)
                and objective.get("mode") in ("min", "max")):
            goal = Objective(objective["metric"], objective["mode"])
        metrics = _typed(data, "metrics", dict, {}, problems)
        for key, value in metrics.items():  # a metric is a number (NaN included) or nothing
            if value is not None and not _is_number(value):
                problems.append(f"metrics.{key} is {type(value).__name__}, not a number")
        metrics = {key: value for key, value in metrics.items() if value is None or _is_number(value)}
        names = {f.name for f in fields(cls)}
        return cls(
            experiment=str(data.get("experiment") or ""),
            params=_typed(data, "params", dict, {}, problems),
            metrics={str(k): _finite_or_none(v) if _is_number(v) else v for k, v in metrics.items()},
            best=_typed(data, "best", dict, {}, problems), objective=goal,
            seed=_typed(data, "seed", int, None, problems), device=_typed(data, "device", str, None, problems),
            world_size=_typed(data, "world_size", int, 1, problems),
            threads=_typed(data, "threads", int, None, problems),
            epochs=_typed(data, "epochs", int, None, problems), steps=_typed(data, "steps", int, None, problems),
            resumed_from_epoch=_typed(data, "resumed_from_epoch", int, 0, problems),
            train_s=_typed(data, "train_s", float, None, problems),
            wall_s=_typed(data, "wall_s", float, None, problems),
            versions=_typed(data, "versions", dict, {}, problems), run=_typed(data, "run", str, None, problems),
            study=_typed(data, "study", str, None, problems), trial=_typed(data, "trial", int, None, problems),
            module=_typed(data, "module", str, None, problems),
            results=plain_numbers({k: v for k, v in data.items() if k not in names and k != "objective"}),
            format=_format_of(data), problems=problems)


# -- trial.json -----------------------------------------------------------------------------------
TRIAL_STATES = ("complete", "pruned", "failed", "interrupted")


@dataclass
class TrialMarker:
    study: str
    trial: int
    state: str                   # one of TRIAL_STATES
    metric: str | None = None
    params: dict = field(default_factory=dict)   # what the sampler chose
    value: float | None = None   # the objective (complete), or its last reported value (pruned)
    epoch: int | None = None     # where a pruned trial stopped
    reason: str | None = None    # why a trial failed
    threads: int | None = None
    format: int = FORMAT

    def to_json(self) -> dict:
        return {k: v for k, v in self.__dict__.items() if v is not None}

    @classmethod
    def from_json(cls, data: dict) -> TrialMarker:
        problems: list[str] = []
        state = data.get("state")
        return cls(study=str(data.get("study") or ""), trial=_typed(data, "trial", int, -1, problems),
                   state=state if state in TRIAL_STATES else "unknown",
                   metric=_typed(data, "metric", str, None, problems),
                   params=_typed(data, "params", dict, {}, problems), value=_finite_or_none(data.get("value")),
                   epoch=_typed(data, "epoch", int, None, problems), reason=_typed(data, "reason", str, None, problems),
                   threads=_typed(data, "threads", int, None, problems), format=_format_of(data))


# -- an export's sidecar ------------------------------------------------------------------------
@dataclass
class ExportRecord:
    run: str                     # the run directory, absolute
    checkpoint: str              # best or last
    export_format: str           # onnx, exported, torchscript, executorch
    details: dict = field(default_factory=dict)  # sizes, differences, input shape, latency, ...
    format: int = FORMAT

    def to_json(self) -> dict:
        return {"format": self.format, "run": self.run, "checkpoint": self.checkpoint,
                "export_format": self.export_format, **self.details}

    @classmethod
    def from_json(cls, data: dict) -> ExportRecord:
        version = _format_of(data) if not isinstance(data.get("format"), str) else 0
        exported = data.get("export_format") if version else data.get("format")  # format 0: "format": "onnx"
        details = {k: v for k, v in data.items() if k not in ("format", "run", "checkpoint", "export_format")}
        return cls(run=str(data.get("run") or ""), checkpoint=str(data.get("checkpoint") or ""),
                   export_format=str(exported or ""), details=details, format=version)


# -- metrics.jsonl ------------------------------------------------------------------------------
@dataclass
class Row:
    epoch: int
    step: int
    metrics: dict
    lr: float | None = None
    train_s: float | None = None
    tag: str = ""

    def to_json(self) -> dict:
        row = {"epoch": self.epoch, "step": self.step, **self.metrics, "lr": self.lr, "train_s": self.train_s}
        if self.tag:
            row["tag"] = self.tag
        return {k: v for k, v in row.items() if v is not None or k in self.metrics}

    @classmethod
    def from_json(cls, data: dict) -> Row | None:
        """None for a line that is not a row (no whole-number epoch)."""
        epoch = data.get("epoch")
        if not isinstance(epoch, int) or isinstance(epoch, bool):
            return None
        step = data.get("step")
        return cls(epoch=epoch, step=step if isinstance(step, int) and not isinstance(step, bool) else 0,
                   metrics={k: plain_numbers(v) for k, v in data.items() if k not in BOOKKEEPING},
                   lr=_finite_or_none(data.get("lr")), train_s=_finite_or_none(data.get("train_s")),
                   tag=str(data.get("tag") or ""))


def renamed_legacy_loss(rows: list[dict], metrics: dict) -> list[dict]:
    """Rows written before the loss was named per experiment say ``loss``/``test_loss`` where
    summary.json says ``mse``/``test_mse``: give the rows the summary's names, so one experiment's
    old and new runs show the same curves."""
    in_rows = {key for row in rows for key in row}
    if "loss" not in in_rows or "loss" in metrics:
        return rows
    held_out_names = {rest for split, rest in map(split_of, metrics) if split is not None}
    names = [name for name in held_out_names if name in metrics and name not in in_rows]
    if len(names) != 1:
        return rows
    renamed = {"loss": names[0], **{held_out(split, "loss"): held_out(split, names[0]) for split in HELD_OUT_SPLITS}}
    return [{renamed.get(k, k): v for k, v in row.items()} for row in rows]
