"""The search space: ``KEY=SPEC`` entries parsed into :class:`Dimension`, and checked against the
experiment's parameters (every corner of every range must be a valid value) and against a
continued study's earlier trials (the same kind of range per name) before any trial starts."""
from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from ..core.errors import UserError
from ..params import sources
from ..params.sources import KEYWORD

SPEC_FORMS = ("loguniform:LOW:HIGH, uniform:LOW:HIGH, int:LOW:HIGH[:STEP], logint:LOW:HIGH, "
              "choice:V1,V2,... (e.g. lr=loguniform:1e-4:1e-1, hidden=int:4:64, batch_size=choice:32,64,128)")
KINDS = ("loguniform", "uniform", "int", "logint", "choice")
GRID_POINTS = 3       # values of a numeric range in a grid, ends included


@dataclass(frozen=True)
class Dimension:
    """One searched parameter: ``key=kind:...`` parsed."""

    key: str
    kind: str
    low: float | int | None = None
    high: float | int | None = None
    step: int | None = None
    choices: tuple = ()

    def suggest(self, trial) -> Any:
        if self.kind == "choice":
            return trial.suggest_categorical(self.key, list(self.choices))
        if self.kind in ("int", "logint"):
            return trial.suggest_int(self.key, self.low, self.high, step=self.step or 1, log=self.kind == "logint")
        return trial.suggest_float(self.key, self.low, self.high, log=self.kind == "loguniform")

    def distribution(self):
        """The Optuna distribution ``suggest`` asks for (to check it against earlier trials)."""
        from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

        if self.kind == "choice":
            return CategoricalDistribution(list(self.choices))
        if self.kind in ("int", "logint"):
            return IntDistribution(self.low, self.high, step=self.step or 1, log=self.kind == "logint")
        return FloatDistribution(self.low, self.high, log=self.kind == "loguniform")

    def spec(self) -> str:
        if self.kind == "choice":
            return "choice:" + ",".join(json.dumps(c) if not isinstance(c, str) else c for c in self.choices)
        return f"{self.kind}:{self.low}:{self.high}" + (f":{self.step}" if self.step else "")

    def corners(self) -> list:
        """The values that, if accepted by the experiment, make every sample acceptable."""
        return list(self.choices) if self.kind == "choice" else [self.low, self.high]

    def grid(self, points: int) -> list:
        """The values a grid search tries: the choices, or ``points`` values across the range,
        ends included (evenly, or evenly in log scale), integers on the range's steps."""
        import numpy as np

        if self.kind == "choice":
            return list(self.choices)
        spread = np.geomspace if self.kind in ("loguniform", "logint") else np.linspace
        if self.kind in ("int", "logint"):
            values = list(range(self.low, self.high + 1, self.step or 1))
            if len(values) <= points:
                return values
            wanted = spread(self.low, values[-1], points)
            return sorted({min(values, key=lambda v: abs(v - w)) for w in wanted})  # a log grid may repeat one
        # Six significant digits read better in a trial list than 0.010000000000000002.
        return [min(max(float(f"{v:.6g}"), self.low), self.high) for v in spread(self.low, self.high, points)]


# -- parsing ----------------------------------------------------------------------------------------
class _Where:
    """Where a spec came from, for its error: an API argument (``space``) or a search.json entry."""

    def __init__(self, key: str, spec, option: str | None):
        self.key, self.spec, self.option = key, spec, option

    def error(self, reason: str) -> UserError:
        if self.option:
            return UserError.for_option(self.option, f"{self.key}={self.spec}", reason)
        return UserError(f"search space {self.key}={self.spec}: {reason}")


def _number(text: str, integer: bool, where: _Where) -> float | int:
    try:
        value = float(text)
    except ValueError:
        raise where.error(f"'{text}' is not a number. Allowed forms: {SPEC_FORMS}.") from None
    if integer:
        if not value.is_integer():
            raise where.error(f"'{text}' is not an integer.")
        return int(value)
    return value


def _choice_value(text: str, where: _Where) -> Any:
    """JSON values (numbers, true/false, "quoted") or, failing that, the bare string."""
    try:
        value = json.loads(text)
    except json.JSONDecodeError:
        value = text
    if value is not None and not isinstance(value, (bool, int, float, str)):
        raise where.error(f"choice '{text}' must be a number, string or boolean.")
    return value


def parse_dimension(key: str, spec: str, option: str | None = None) -> Dimension:
    """``("lr", "loguniform:1e-4:1e-1")`` -> Dimension; a UserError listing the forms otherwise.
    ``option``: the API argument the spec came in (its error names it), None for a search.json entry."""
    if not isinstance(spec, str):
        raise UserError(f"search space {key}: expected a string such as \"loguniform:1e-4:1e-1\", "
                        f"got {json.dumps(spec)}.")
    where = _Where(key, spec, option)
    kind, _, rest = spec.strip().partition(":")
    kind = kind.strip().lower()
    if kind not in KINDS:
        raise where.error(f"unknown kind '{kind}'. Allowed forms: {SPEC_FORMS}.")
    if kind == "choice":
        choices = tuple(_choice_value(v.strip(), where) for v in rest.split(",") if v.strip())
        if not choices:
            raise where.error(f"no choices. Write e.g. {key}=choice:32,64,128.")
        return Dimension(key, kind, choices=choices)
    parts = rest.split(":") if rest else []
    integer = kind in ("int", "logint")
    allowed = (2, 3) if kind == "int" else (2,)
    if len(parts) not in allowed:
        raise where.error(f"expected {kind}:LOW:HIGH{'[:STEP]' if kind == 'int' else ''}. Allowed forms: {SPEC_FORMS}.")
    low, high = (_number(p.strip(), integer, where) for p in parts[:2])
    step = _number(parts[2].strip(), True, where) if len(parts) == 3 else None
    if not low < high:
        raise where.error(f"LOW ({low}) must be smaller than HIGH ({high}).")
    if kind in ("loguniform", "logint") and low <= 0:
        raise where.error(f"a log scale needs LOW > 0 (got {low}).")
    if step is not None and step <= 0:
        raise where.error(f"STEP must be > 0 (got {step}).")
    return Dimension(key, kind, low, high, step)


def parse_param(text: str) -> Dimension:
    """One ``KEY=SPEC`` entry of the ``space`` argument (the CLI's ``--param``)."""
    key, sep, spec = text.partition("=")
    if not sep or not key.strip():
        raise UserError.for_option("space", text, "expected KEY=SPEC, e.g. lr=loguniform:1e-4:1e-1.")
    return parse_dimension(key.strip(), spec.strip(), option="space")


def load_space(name: str, params: list[str] | None) -> list[Dimension]:
    """The ``space`` entries when there are any (they replace search.json), else the experiment's
    search.json (the user's ./experiments/NAME/search.json, else the package's)."""
    if params:
        space = [parse_param(p) for p in params]
        source = "space"
    else:
        path = sources.experiment_file(name, "search.json")
        if path is None:
            raise UserError(f"no search space for '{name}': give KEY=SPEC entries (e.g. lr=loguniform:1e-4:1e-1), "
                            f"or write experiments/{name}/search.json in your project (an object key -> spec; "
                            f"`torchclassics init {name}` starts one). Forms: {SPEC_FORMS}.", option="space")
        space = [parse_dimension(key, spec) for key, spec in sources.read_params(path).items()]
        source = str(path)
    keys = [d.key for d in space]
    repeated = sorted({k for k in keys if keys.count(k) > 1})
    if repeated:
        raise UserError(f"{source}: {', '.join(repeated)} given more than once.", option="space" if params else None)
    if not space:
        raise UserError(f"{source}: the search space is empty; give at least one KEY=SPEC.")
    return space


def check_space(name: str, space: list[Dimension], sets: list[str]) -> dict:
    """Fail before any trial starts: every key must exist and every corner of its range must be a
    valid value (type, range). Returns the fixed parameters."""
    both = sorted({sources.parse_set(s)[0] for s in sets} & {d.key for d in space})
    if both:
        raise UserError.for_option("sets", ", ".join(both), "both fixed and searched (space or search.json); keep one.")
    params = sources.resolve(name, sets=sets)
    for dim in space:
        for value in dim.corners():
            try:
                sources.resolve(name, sets=sets, overrides={dim.key: value})
            except UserError as err:  # the corner as the parameter layer names it, without its source's label
                corner = str(err).removeprefix(f"{KEYWORD} ")
                raise UserError.for_option("space", f"{dim.key}={dim.spec()}", corner) from None
    return params


# -- against a continued study ---------------------------------------------------------------------
def describe(distribution) -> str:
    """An Optuna distribution written back as a spec (``loguniform:0.01:0.5``)."""
    from optuna.distributions import CategoricalDistribution, IntDistribution

    if isinstance(distribution, CategoricalDistribution):
        return "choice:" + ",".join(str(c) for c in distribution.choices)
    log = getattr(distribution, "log", False)
    if isinstance(distribution, IntDistribution):
        kind = "logint" if log else "int"
        step = f":{distribution.step}" if distribution.step not in (None, 1) else ""
        return f"{kind}:{distribution.low}:{distribution.high}{step}"
    return f"{'loguniform' if log else 'uniform'}:{distribution.low:g}:{distribution.high:g}"


def check_space_against_study(study, space: list[Dimension]) -> None:
    """Optuna refuses to sample a name with another kind of range than earlier trials used
    (uniform vs log, int vs float, other choices); say so before a trial starts."""
    from optuna.distributions import check_distribution_compatibility

    for dim in space:
        wanted = dim.distribution()
        for trial in study.get_trials(deepcopy=False):
            earlier = trial.distributions.get(dim.key)
            if earlier is None:
                continue
            try:
                check_distribution_compatibility(earlier, wanted)
            except ValueError as err:
                raise UserError.for_option(
                    "space", f"{dim.key}={dim.spec()}",
                    f"trial {trial.number} of study '{study.study_name}' searched {dim.key}={describe(earlier)} "
                    f"({err}) Keep the same kind of range, or start a new study (another study name).") from None
            break  # one earlier trial is enough: the study holds one kind per name
