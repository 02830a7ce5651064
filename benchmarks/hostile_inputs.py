"""Hostile inputs and faults against the torchclassics command line, each classified automatically.

Every case runs in its own temporary folder (``$TORCHCLASSICS_RUNS`` set there, proxies pointed at a
closed port so nothing is downloaded) and calls ``python -m torchclassics ...`` (or, where the command
line cannot reach, a few lines of the Python API) in a fresh subprocess with a timeout. A case is
**handled** when it ends as documented:

* refused: exit status 2, exactly one line ``torchclassics: error: ...`` on stderr (argparse's usage
  lines and the project's own ``note:``/``warning:`` lines may precede it), no traceback, and nothing
  in the case's folder written, changed or deleted by the refused command (its ``.lock`` files aside);
* succeeded: exit 0 and the exact result the case checks (a resumed run's rows equal to an
  uninterrupted run's, a bad run skipped and listed with its reason, a planted link's target untouched).

Anything else is **not handled**: a traceback, exit 0 where an error was due, another exit status, more
than one error line, a user's file changed or deleted, a hang (timeout), a half-written run folder.

    python benchmarks/hostile_inputs.py                  # every case (about 10 minutes on 2 cores)
    python benchmarks/hostile_inputs.py --list           # the catalogue, one case a line
    python benchmarks/hostile_inputs.py --only links/    # the cases whose name holds this text
    python benchmarks/hostile_inputs.py --fast --jobs 2  # the quick subset tests/test_hostile_sweep.py runs
    python benchmarks/hostile_inputs.py --json out.json --keep /tmp/hostile   # keep each case's folder

The commands run the torchclassics that this Python imports (``export PYTHONPATH=$PWD/src`` to sweep a
checkout rather than an installed copy). Running as root, permission cases (a read-only folder) cannot be
provoked and are listed as skipped.
"""
from __future__ import annotations

import argparse
import collections
import concurrent.futures
import contextlib
import datetime
import hashlib
import json
import os
import random
import re
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

TIMEOUT_S = 90          # one command; a hang is a case's outcome, never the sweep's
FIFO_TIMEOUT_S = 15     # commands that might block on a FIFO
ERROR_PREFIX = "torchclassics: error: "
# argparse names the sub-command in its own errors ("torchclassics run: error: the following arguments ...")
ERROR_LINE = re.compile(r"^torchclassics(?: [a-z]+)?: error: ")
OWN_LINES = ("torchclassics: ",)  # the project's warnings, notes and status lines ("torchclassics: search ...")
# Runs a command with SIGINT at its default (a non-interactive shell starts children with it ignored, and
# Python then never raises KeyboardInterrupt) and, when asked, a limit on the size of any file it writes
# (a full disk, as far as a process can see it: writes beyond the limit fail with EFBIG).
# A hang shows where it waits: SIGUSR1 dumps every thread's stack (faulthandler) before the kill.
LAUNCHER = ("import faulthandler, os, resource, runpy, signal, sys\n"
            "signal.signal(signal.SIGINT, signal.default_int_handler)\n"
            "faulthandler.register(signal.SIGUSR1, all_threads=True)\n"
            "limit = int(os.environ.pop('HOSTILE_FSIZE', '0'))\n"
            "if limit:\n"
            "    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)\n"
            "    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))\n"
            "kind, what, *args = sys.argv[1:]\n"
            "sys.argv = [what if kind == '-m' else '-c', *args]\n"
            "if kind == '-m':\n"
            "    runpy.run_module(what, run_name='__main__', alter_sys=True)\n"
            "else:\n"
            "    sys.path.insert(0, '')\n"
            "    exec(compile(what, '<string>', 'exec'), {'__name__': '__main__'})\n")


# -- results and verdicts ------------------------------------------------------------------------------
@dataclass
class Result:
    """One command's end."""

    argv: list[str]
    returncode: int | None
    stdout: str
    stderr: str
    seconds: float
    timed_out: bool = False

    def error_lines(self) -> list[str]:
        return [line for line in self.stderr.splitlines() if ERROR_LINE.match(line)]

    def stray_lines(self) -> list[str]:
        """stderr lines that are neither the error line, argparse's usage, nor the project's notes."""
        lines, in_usage = [], False
        for line in self.stderr.splitlines():
            if line.startswith("usage: "):
                in_usage = True
                continue
            if in_usage and (line.startswith(" ") or not line.strip()):
                continue
            in_usage = False
            if line.strip() and not ERROR_LINE.match(line) and not line.startswith(OWN_LINES):
                lines.append(line)
        return lines

    def has_traceback(self) -> bool:
        return "Traceback (most recent call last)" in self.stderr or "Exception ignored" in self.stderr

    def first_lines(self, n: int = 3) -> str:
        lines = [line for line in self.stderr.splitlines() if line.strip() and not line.startswith(("usage:", " "))]
        if self.has_traceback():  # the last lines name the exception
            lines = lines[-n:]
        return " / ".join(line.strip()[:220] for line in lines[:n]) or "(stderr empty)"


class Problem(Exception):
    """A case's own check failed: what was found instead of the exact result."""


class Skip(Exception):
    """The case cannot be provoked here (running as root, a missing tool)."""


@dataclass
class Verdict:
    name: str
    category: str
    handled: bool | None        # None: skipped
    outcome: str
    detail: str = ""
    seconds: float = 0.0


# -- the folder of one case ----------------------------------------------------------------------------
def base_env(folder: Path) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TORCHCLASSICS_", "RANK", "WORLD_SIZE"))}
    dead = "http://127.0.0.1:9"  # nothing listens there: any download fails at once
    env.update({"TORCHCLASSICS_RUNS": str(folder / "runs"), "MPLBACKEND": "Agg", "PYTHONUNBUFFERED": "1",
                "http_proxy": dead, "https_proxy": dead, "HTTP_PROXY": dead, "HTTPS_PROXY": dead, "no_proxy": "",
                "HF_HUB_OFFLINE": "1", "TORCHCLASSICS_CHECKPOINT_SECONDS": "0", "PYTHONDONTWRITEBYTECODE": "1"})
    return env  # PYTHONPATH as given: the commands run the torchclassics this Python imports


def describe(path: Path):
    """What a path is, without following it, without blocking (FIFOs, devices are not read)."""
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        return None
    if stat.S_ISLNK(info.st_mode):
        return ("link", os.readlink(path))
    if stat.S_ISREG(info.st_mode):
        return ("file", hashlib.sha256(path.read_bytes()).hexdigest())
    if stat.S_ISDIR(info.st_mode):
        return ("dir",)
    return ("special", stat.S_IFMT(info.st_mode))


def snapshot(folder: Path) -> dict[str, tuple]:
    """Every entry below ``folder`` (links not followed) but run locks and bytecode caches."""
    seen = {}
    for top, dirs, names in os.walk(folder):
        dirs[:] = [d for d in dirs if d != "__pycache__"]
        for name in dirs + names:
            path = Path(top) / name
            what = describe(path)
            if name == ".lock" and what and what[0] == "file":
                continue  # the project's own lock file may be taken (and left) by a refused command
            seen[path.relative_to(folder).as_posix()] = what
    return seen


def differences(before: dict, after: dict) -> list[str]:
    changed = []
    for name in sorted(set(before) | set(after)):
        if name not in after:
            changed.append(f"deleted {name}")
        elif name not in before:
            changed.append(f"made the folder {name}" if after[name] == ("dir",) else f"wrote {name}")
        elif before[name] != after[name]:
            changed.append(f"changed {name}")
    return changed


class Sandbox:
    """A case's temporary folder, its environment, the user's files it watches and the commands it ran."""

    def __init__(self, root: Path, bases: Bases):
        self.root, self.bases = root, bases
        self.runs = root / "runs"
        self.env = base_env(root)
        self.watched: dict[Path, tuple] = {}
        self.before: dict | None = None
        self.last: Result | None = None
        self.procs: list[subprocess.Popen] = []

    def path(self, relative: str) -> Path:
        return self.root / relative

    # files
    def write(self, relative: str, data: str | bytes, watch: bool = True) -> Path:
        """A file of the user's (watched: it must end byte-identical)."""
        path = self.path(relative)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data.encode() if isinstance(data, str) else data)
        if watch:
            self.watch(path)
        return path

    def watch(self, path: Path) -> None:
        """``path`` (a file, a link or a folder and all below it) must end as it is now."""
        self.watched[path] = (describe(path), snapshot(path) if path.is_dir() and not path.is_symlink() else None)

    def run_copy(self, base: str = "regression", relative: str = "run") -> Path:
        """A copy of a finished run built once per sweep (see :class:`Bases`)."""
        target = self.path(relative)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copytree(self.bases.get(base), target, symlinks=True)
        return target

    # commands
    def _popen(self, argv: list[str], env: dict | None, fsize: int | None, stdout=subprocess.PIPE,
               stdin=subprocess.DEVNULL) -> subprocess.Popen:
        env = dict(env or self.env)
        if fsize:
            env["HOSTILE_FSIZE"] = str(fsize)
        proc = subprocess.Popen([sys.executable, "-c", LAUNCHER, *argv], cwd=self.root, env=env, stdin=stdin,
                                stdout=stdout, stderr=subprocess.PIPE, start_new_session=True)
        self.procs.append(proc)
        return proc

    def start(self, *args: str, env: dict | None = None, fsize: int | None = None) -> subprocess.Popen:
        """``torchclassics ARGS`` started, not waited for."""
        return self._popen(["-m", "torchclassics", *map(str, args)], env, fsize)

    def finish(self, proc: subprocess.Popen, timeout: float = TIMEOUT_S, started: float | None = None) -> Result:
        started = started or time.monotonic()
        try:
            out, err = proc.communicate(timeout=timeout)
            timed_out = False
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.kill(proc.pid, signal.SIGUSR1)  # where it hangs, on its stderr
            time.sleep(1)
            kill_group(proc)
            out, err = proc.communicate()
            timed_out = True
        result = Result([str(a) for a in proc.args[3:]], proc.returncode, (out or b"").decode(errors="replace"),
                        (err or b"").decode(errors="replace"), time.monotonic() - started, timed_out)
        self.last = result
        return result

    def cli(self, *args: str, timeout: float = TIMEOUT_S, env: dict | None = None, fsize: int | None = None) -> Result:
        """``torchclassics ARGS`` to its end; the folder is snapshot before it (the decisive command is the last)."""
        self.before = snapshot(self.root)
        started = time.monotonic()
        return self.finish(self.start(*args, env=env, fsize=fsize), timeout, started)

    def python(self, code: str, timeout: float = TIMEOUT_S) -> Result:
        """A few lines of the Python API in a fresh interpreter (where the command line cannot reach)."""
        self.before = snapshot(self.root)
        started = time.monotonic()
        return self.finish(self._popen(["-c", code], None, None), timeout, started)

    # checks inside a case
    def step(self, result: Result, what: str, codes=(0,)) -> Result:
        """An intermediate command that must end with one of ``codes`` and no traceback."""
        if result.timed_out:
            raise Problem(f"{what}: hang (timeout after {result.seconds:.0f} s): {hang_detail(result)}")
        if result.has_traceback() or result.returncode not in codes:
            raise Problem(f"{what}: exit {result.returncode}: {result.first_lines()}")
        return result

    def changes(self) -> list[str]:
        problems = []
        for path, (what, below) in self.watched.items():
            name = path.relative_to(self.root).as_posix() if path.is_relative_to(self.root) else str(path)
            now = describe(path)
            if now != what:
                problems.append(f"{'deleted' if now is None else 'changed'} {name}")
            elif below is not None:
                problems += [f"{d} in {name}" for d in differences(below, snapshot(path))]
        return problems

    def close(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                kill_group(proc)
                with contextlib.suppress(Exception):
                    proc.communicate(timeout=10)


def kill_group(proc: subprocess.Popen) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)


def check(condition: bool, why: str) -> None:
    if not condition:
        raise Problem(why)


# -- runs built once per sweep ------------------------------------------------------------------------------
BASES = {
    # name: (experiment, arguments, checkpoint seconds)
    "regression": ("regression", ["--set", "epochs=3", "--set", "gif_frames=2"], "0"),
    "regression4": ("regression", ["--set", "epochs=4", "--set", "gif_frames=2", "--no-figures"], "0"),
    "regression_long": ("regression", ["--set", "epochs=4000", "--set", "gif_frames=2", "--no-figures"], "0.25"),
    "linear": ("linear", ["--set", "epochs=3", "--no-figures"], "0"),
    "cnn_mnist": ("cnn_mnist", ["--set", "download=false", "--no-figures"], "0"),
}


class Bases:
    """Finished runs that many cases copy, built once (on first use, one at a time) in ``folder``."""

    def __init__(self, folder: Path):
        self.folder = folder
        self._locks = collections.defaultdict(threading.Lock)
        self._guard = threading.Lock()
        self._failed: dict[str, str] = {}

    def get(self, name: str) -> Path:
        with self._guard:
            lock = self._locks[name]
        with lock:
            out = self.folder / name
            if name in self._failed:
                raise RuntimeError(self._failed[name])
            if not (out / "summary.json").is_file():
                experiment, args, seconds = BASES[name]
                env = {**base_env(self.folder), "TORCHCLASSICS_CHECKPOINT_SECONDS": seconds}
                argv = [sys.executable, "-m", "torchclassics", "run", experiment, "--out", str(out), "-q", *args]
                done = subprocess.run(argv, env=env, cwd=self.folder, capture_output=True, text=True, timeout=600,
                                      check=False)
                if done.returncode != 0:
                    self._failed[name] = f"base run {name} failed: {done.stderr[-500:]}"
                    raise RuntimeError(self._failed[name])
                (out / ".lock").unlink(missing_ok=True)
            return out

    def rows(self, name: str) -> list[dict]:
        return comparable_rows(self.get(name))


def comparable_rows(run: Path) -> list[dict]:
    """metrics.jsonl without the wall-clock column."""
    path = run / "metrics.jsonl"
    if not path.is_file():
        return []
    return [{k: v for k, v in json.loads(line).items() if k != "train_s"} for line in path.read_text().splitlines()]


# -- the catalogue --------------------------------------------------------------------------------------
@dataclass
class Case:
    category: str
    name: str
    body: Callable[[Sandbox], Result]
    expect: str = "refused"        # "refused"; "ok" (the exact result); "safe" (refused, or exit 0 with every
                                   # watched file of the user's, a planted link's target, untouched)
    says: str | None = None        # the error line must hold this (the right cause named)
    fast: bool = False             # one of QUICK: tests/test_hostile_sweep.py runs these
    note: str = ""
    users_traceback: bool = False  # a plugin's own bug: its traceback (its frames only) may precede the line

    @property
    def id(self) -> str:
        return f"{self.category}/{self.name}"


CATALOGUE: list[Case] = []


def case(category: str, name: str, expect: str = "refused", says: str | None = None, note: str = ""):
    def register(body):
        CATALOGUE.append(Case(category, name, body, expect, says, note=note))
        return body
    return register


def refused_run(category: str, name: str, sets: list[str], experiment: str = "regression", says: str | None = None,
                extra: tuple = ()):
    """A ``run`` whose settings must be refused before the run folder exists."""
    def body(sb: Sandbox) -> Result:
        args = [a for s in sets for a in ("--set", s)]
        return sb.cli("run", experiment, "--out", sb.path("out"), "-q", "--no-figures", *args, *extra)
    body.__doc__ = f"run {experiment} " + " ".join(f"--set {s}" for s in sets)
    CATALOGUE.append(Case(category, name, body, "refused", says))


def classify(case_: Case, sb: Sandbox, result: Result | None, problem: str | None) -> tuple[bool, str, str]:
    """(handled, outcome, detail) of a case's end."""
    last = result or sb.last
    detail = last.first_lines() if last else ""
    if problem and "hang (timeout" in problem:
        return False, problem, ""
    if last is not None and last.timed_out:
        return False, f"hang (timeout after {last.seconds:.0f} s): {' '.join(last.argv[:3])}", hang_detail(last)
    if last is not None and last.has_traceback() and not (case_.users_traceback and only_users_frames(last)):
        return False, "traceback", detail
    changed = sb.changes()
    if changed:  # a user's file (or a planted link's target) changed: the worst outcome, named first
        return False, ", ".join(changed[:4]), detail
    if case_.expect == "safe" and last is not None and last.returncode == 0 and not problem:
        return True, "exit 0, nothing outside the run touched", ""
    if case_.expect in ("refused", "safe") and last is not None:
        errors = last.error_lines()
        if last.returncode == 0:
            return False, "exit 0 where an error was due", detail or last.stdout.strip()[:200]
        if last.returncode != 2:
            return False, f"exit {last.returncode}", detail
        if len(errors) != 1:
            return False, f"{len(errors)} error lines", detail
        if last.stray_lines() and not (case_.users_traceback and only_users_frames(last)):
            return False, "more than the error line on stderr", " / ".join(last.stray_lines()[:3])
        if case_.says and case_.says not in errors[0]:
            return False, f"wrong cause (expected '{case_.says}')", errors[0]
        written = differences(sb.before or {}, snapshot(sb.root)) if sb.before is not None else []
        if written:
            return False, "refused, but " + ", ".join(written[:4]), errors[0]
        if problem:
            return False, problem, errors[0]
        return True, "exit 2, one line", errors[0]
    if problem:
        return False, problem, detail
    if case_.expect == "ok" and last is not None and last.returncode != 0:
        return False, f"exit {last.returncode}", detail
    return True, "exact result", ""


def only_users_frames(result: Result) -> bool:
    """A traceback of the user's own code alone (a plugin's bug), not the project's or Python's machinery."""
    frames = [line for line in result.stderr.splitlines() if line.strip().startswith("File ")]
    return bool(frames) and not any("torchclassics" in f or "<frozen" in f or "importlib" in f for f in frames)


def hang_detail(result: Result) -> str:
    """Where a hung command waited: the innermost frames of its main thread's dump."""
    dump = result.stderr.split("Current thread", 1)
    frames = [line.strip() for line in dump[-1].splitlines() if line.strip().startswith("File ")]
    return " / ".join(frames[:4]) or result.first_lines()


def run_case(case_: Case, bases: Bases, keep: Path | None = None) -> Verdict:
    folder = Path(tempfile.mkdtemp(prefix="hostile-"))
    sb = Sandbox(folder, bases)
    started = time.monotonic()
    result = problem = None
    try:
        try:
            result = case_.body(sb)
        except Problem as err:
            problem = str(err)
        handled, outcome, detail = classify(case_, sb, result, problem)
    except Skip as why:
        handled, outcome, detail = None, f"skipped: {why}", ""
    except Exception as err:  # noqa: BLE001  (the harness's own failure: shown, never counted as handled)
        handled, outcome, detail = False, f"harness error: {type(err).__name__}: {err}", traceback.format_exc(limit=3)
    finally:
        sb.close()
        if keep:
            shutil.copytree(folder, keep / case_.id.replace("/", "__"), symlinks=True, dirs_exist_ok=True,
                            ignore_dangling_symlinks=True, copy_function=_copy_plain)
        with contextlib.suppress(OSError):
            make_removable(folder)
            shutil.rmtree(folder)
    return Verdict(case_.id, case_.category, handled, outcome, detail, time.monotonic() - started)


def _copy_plain(src, dst):
    if stat.S_ISREG(os.lstat(src).st_mode):
        shutil.copy2(src, dst)


def make_removable(folder: Path) -> None:
    for top, dirs, _ in os.walk(folder):
        for d in dirs:
            path = Path(top) / d
            if not path.is_symlink():
                with contextlib.suppress(OSError):
                    path.chmod(0o755)


# ======================================================================================================
# The cases, by category
# ======================================================================================================

# -- cli: the command line itself ----------------------------------------------------------------------
def simple(category: str, name: str, *args, says: str | None = None, expect: str = "refused",
           env: dict | None = None):
    def body(sb: Sandbox) -> Result:
        return sb.cli(*[a.format(root=sb.root) for a in args], env={**sb.env, **(env or {})})
    CATALOGUE.append(Case(category, name, body, expect, says))


simple("cli", "unknown-command", "frobnicate")
simple("cli", "unknown-flag", "run", "regression", "--frobnicate")
simple("cli", "no-command")
simple("cli", "run-without-name", "run")
simple("cli", "unknown-experiment", "run", "regresion", says="regression")
simple("cli", "empty-name", "run", "")
simple("cli", "unicode-name", "run", "régression✓")
simple("cli", "path-as-name", "run", "../regression")
simple("cli", "newline-in-name", "run", "regression\nclassification")
simple("cli", "set-unknown-key", "run", "regression", "--set", "lrr=1", says="lrr")
simple("cli", "set-without-equals", "run", "regression", "--set", "lr")
simple("cli", "set-empty-key", "run", "regression", "--set", "=1")
simple("cli", "set-deep-unknown-key", "run", "regression", "--set", "optimizer_args.a.b.c=1")
simple("cli", "set-huge-value", "run", "regression", "--set", "lr=" + "9" * 5000)
simple("cli", "params-command-bad-value", "params", "regression", "--set", "lr=abc")
simple("cli", "params-unknown-experiment", "params", "nosuch")
simple("cli", "resume-without-out", "run", "regression", "--resume")
simple("cli", "evaluate-nonexistent", "evaluate", "{root}/nowhere")
simple("cli", "figures-nonexistent", "figures", "{root}/nowhere")
simple("cli", "export-nonexistent", "export", "{root}/nowhere")
simple("cli", "predict-without-inputs", "predict", "{root}/nowhere")
simple("cli", "lesson-unknown", "lesson", "nosuch")
simple("cli", "synthesize-nonexistent-root", "synthesize", "{root}/nowhere")
simple("cli", "report-nonexistent-root", "report", "{root}/nowhere")
simple("cli", "checkpoint-seconds-not-a-number", "run", "regression", "--out", "{root}/out",
       env={"TORCHCLASSICS_CHECKPOINT_SECONDS": "soon"})
simple("cli", "search-trials-negative", "search", "regression", "--trials", "-1")
simple("cli", "search-trials-not-int", "search", "regression", "--trials", "many")
simple("cli", "search-workers-zero", "search", "regression", "--workers", "0", "--trials", "1")
simple("cli", "search-grid-points-zero", "search", "regression", "--sampler", "grid", "--grid-points", "0")
simple("cli", "search-bad-param-spec", "search", "regression", "--param", "lr=bogus:1:2")
simple("cli", "search-param-unknown-key", "search", "regression", "--param", "lrr=uniform:0.1:0.2")
simple("cli", "search-param-reversed-range", "search", "regression", "--param", "lr=uniform:0.5:0.1")
simple("cli", "search-param-log-of-zero", "search", "regression", "--param", "lr=loguniform:0:0.1")
simple("cli", "search-empty-study-name", "search", "regression", "--study", "", "--trials", "1")


@case("cli", "evaluate-a-users-folder")
def _evaluate_users_folder(sb: Sandbox) -> Result:
    sb.write("mine/notes.txt", "my notes\n")
    return sb.cli("evaluate", sb.path("mine"))


@case("cli", "evaluate-a-regular-file")
def _evaluate_file(sb: Sandbox) -> Result:
    return sb.cli("evaluate", sb.write("notes.txt", "my notes\n"))


@case("cli", "runs-root-is-a-file")
def _runs_root_file(sb: Sandbox) -> Result:
    sb.write("runs", "not a folder\n")
    return sb.cli("synthesize")


@case("cli", "runs-variable-is-a-file-then-run")
def _runs_variable_file(sb: Sandbox) -> Result:
    sb.write("runs", "not a folder\n")
    return sb.cli("run", "regression", "-q", "--no-figures", "--set", "epochs=2")


# -- paths: odd names and places ------------------------------------------------------------------------
@case("paths", "out-with-spaces-and-newline", expect="ok")
def _out_odd_name(sb: Sandbox) -> Result:
    out = sb.path("my runs/first\nsecond  run")
    result = sb.cli("run", "regression", "--out", out, "-q", "--no-figures", "--set", "epochs=2")
    if result.returncode == 0:
        check((out / "summary.json").is_file() and len(comparable_rows(out)) == 2, "no complete run in the odd folder")
    return result


@case("paths", "out-name-not-utf8", expect="ok", note="a name of raw bytes, as a foreign disk may hold")
def _out_not_utf8(sb: Sandbox) -> Result:
    out = sb.root / os.fsdecode(b"caf\xe9-run")
    result = sb.cli("run", "regression", "--out", out, "-q", "--no-figures", "--set", "epochs=2")
    if result.returncode == 0:
        check((out / "summary.json").is_file(), "no summary.json in the folder")
    return result


@case("paths", "out-is-a-users-file")
def _out_file(sb: Sandbox) -> Result:
    target = sb.write("thesis.tex", "\\section{mine}\n")
    return sb.cli("run", "regression", "--out", target, "-q")


@case("paths", "out-is-a-dangling-link")
def _out_dangling(sb: Sandbox) -> Result:
    (sb.path("dangling")).symlink_to(sb.path("nowhere/else"))
    return sb.cli("run", "regression", "--out", sb.path("dangling"), "-q", "--no-figures", "--set", "epochs=2")


@case("paths", "out-links-to-a-users-folder")
def _out_link_folder(sb: Sandbox) -> Result:
    sb.write("mine/notes.txt", "my notes\n")
    sb.watch(sb.path("mine"))
    sb.path("link").symlink_to(sb.path("mine"))
    return sb.cli("run", "regression", "--out", sb.path("link"), "-q")


@case("paths", "out-below-a-file")
def _out_below_file(sb: Sandbox) -> Result:
    sb.write("file", "x")
    return sb.cli("run", "regression", "--out", sb.path("file/run"), "-q", "--no-figures")


@case("paths", "out-in-proc")
def _out_proc(sb: Sandbox) -> Result:
    return sb.cli("run", "regression", "--out", "/proc/hostile-run", "-q", "--no-figures", "--set", "epochs=2")


@case("paths", "runs-dir-below-dev-null")
def _runs_dev_null(sb: Sandbox) -> Result:
    return sb.cli("run", "regression", "--runs-dir", "/dev/null/runs", "-q", "--no-figures", "--set", "epochs=2")


@case("paths", "read-only-out-folder")
def _read_only(sb: Sandbox) -> Result:
    if os.geteuid() == 0:
        raise Skip("running as root: a read-only folder is writable")
    sb.path("ro").mkdir()
    sb.path("ro").chmod(0o555)
    return sb.cli("run", "regression", "--out", sb.path("ro/run"), "-q", "--no-figures", "--set", "epochs=2")


@case("paths", "full-disk-mid-run-then-resume", expect="ok",
      note="RLIMIT_FSIZE 6 KB: the first checkpoint cannot be written (EFBIG); then --resume without the limit")
def _full_disk(sb: Sandbox) -> Result:
    out = sb.path("out")
    first = sb.cli("run", "regression", "--out", out, "-q", "--no-figures", "--set", "epochs=4", "--set",
                   "gif_frames=2", fsize=6000)
    sb.step(first, "the run on a full disk", codes=(2,))
    check(len(first.error_lines()) == 1 and str(out) in first.error_lines()[0],
          f"the full disk's error does not name a path in the run: {first.first_lines()}")
    damaged = [p.name for p in out.rglob("*") if p.is_file() and p.stat().st_size == 0 and p.suffix in (".json", ".pt")]
    check(not damaged, f"empty files left by the full disk: {damaged}")
    resumed = sb.cli("run", "regression", "--out", out, "--resume", "-q", "--no-figures")
    if resumed.returncode == 0:
        check(comparable_rows(out) == sb.bases.rows("regression4"), "resumed rows differ from an uninterrupted run's")
    return resumed


# -- links planted in a run folder or a data folder --------------------------------------------------------
def planted(sb: Sandbox, run: Path, member: str) -> Path:
    """``run/member`` replaced by a link to a user's file outside the run."""
    target = sb.write("precious.txt", "the user's own file\n")
    path = run / member
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    else:
        path.unlink(missing_ok=True)
    path.symlink_to(target)
    return target


def link_case(member: str, expect: str = "safe", command: str = "resume"):
    @case("links", f"{member.replace('/', '-')}-link-then-{command}", expect=expect)
    def body(sb: Sandbox) -> Result:
        run = sb.run_copy()
        planted(sb, run, member)
        if command == "resume":
            return sb.cli("run", "regression", "--out", run, "--resume", "-q", "--no-figures", "--set", "epochs=4")
        return sb.cli(command, run)
    return body


for _member in (".lock", "train.log", "metrics.jsonl", "summary.json", "checkpoints/last.pt", "params.json"):
    link_case(_member)


@case("links", "lock-link-in-a-fresh-out-folder")
def _lock_fresh(sb: Sandbox) -> Result:
    sb.path("out").mkdir()
    planted(sb, sb.path("out"), ".lock")
    return sb.cli("run", "regression", "--out", sb.path("out"), "-q", "--no-figures", "--set", "epochs=2")


@case("links", "figure-link-then-figures", expect="ok")
def _figure_link(sb: Sandbox) -> Result:
    run = sb.run_copy()
    figure = min((run / "figures").glob("*.png"))
    planted(sb, run, f"figures/{figure.name}")
    result = sb.cli("figures", run)
    check(not figure.is_symlink(), "the planted figure link is still there")
    return result


@case("links", "figures-folder-links-out")
def _figures_folder(sb: Sandbox) -> Result:
    run = sb.run_copy()
    sb.path("elsewhere").mkdir()
    sb.watch(sb.path("elsewhere"))
    shutil.rmtree(run / "figures")
    (run / "figures").symlink_to(sb.path("elsewhere"))
    return sb.cli("figures", run)


@case("links", "checkpoints-folder-links-out", expect="safe")
def _checkpoints_folder(sb: Sandbox) -> Result:
    run = sb.run_copy()
    shutil.copytree(run / "checkpoints", sb.path("mine"))
    sb.watch(sb.path("mine"))
    shutil.rmtree(run / "checkpoints")
    (run / "checkpoints").symlink_to(sb.path("mine"))
    return sb.cli("run", "regression", "--out", run, "--resume", "-q", "--no-figures", "--set", "epochs=4")


@case("links", "tensorboard-folder-links-out", expect="safe")
def _tensorboard_folder(sb: Sandbox) -> Result:
    run = sb.run_copy()
    sb.path("mine").mkdir()
    sb.write("mine/keep.txt", "mine\n")
    sb.watch(sb.path("mine"))
    shutil.rmtree(run / "tensorboard", ignore_errors=True)
    (run / "tensorboard").symlink_to(sb.path("mine"))
    return sb.cli("run", "regression", "--out", run, "--resume", "-q", "--no-figures", "--set", "epochs=4")


def image_folder(sb: Sandbox, relative: str, classes=("cat", "dog"), per_class: int = 6, size: int = 40) -> Path:
    """A tiny ImageFolder of drawn PNGs (each class its own colour)."""
    from PIL import Image

    root = sb.path(relative)
    for k, name in enumerate(classes):
        (root / name).mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            colour = (200 * (k == 0) + i, 40 + i * 3, 200 * (k == 1))
            Image.new("RGB", (size, size), colour).save(root / name / f"{name}{i}.png")
    return root


LISTING = ("import json, sys\nfrom torchclassics.data.images import list_image_folder\n"
           "l = list_image_folder(sys.argv[1] if len(sys.argv) > 1 else 'data')\n"
           "print(json.dumps({'files': l.files, 'labels': l.labels, 'classes': l.classes, "
           "'unusable': l.unusable}))\n")


def listing(sb: Sandbox) -> tuple[Result, dict]:
    result = sb.python(LISTING)
    sb.step(result, "list_image_folder")
    return result, json.loads(result.stdout)


@case("links", "class-folder-link-up", expect="ok", note="data/cat/up -> .. (the Python API's listing)")
def _class_up(sb: Sandbox) -> Result:
    root = image_folder(sb, "data")
    (root / "cat" / "up").symlink_to("..")
    result, found = listing(sb)
    check(len(found["files"]) == 12, f"{len(found['files'])} samples listed from 12 files")
    check(all(found["classes"][label] == f.split("/")[0] for f, label in zip(found["files"], found["labels"])),
          "a file is labelled by a folder it does not lie in")
    return result


@case("links", "class-folder-link-out-of-root", expect="ok")
def _class_out(sb: Sandbox) -> Result:
    root = image_folder(sb, "data")
    image_folder(sb, "other", classes=("elsewhere",))
    (root / "cat" / "more").symlink_to(sb.path("other/elsewhere"))
    result, found = listing(sb)
    check(len(found["files"]) == 12, f"{len(found['files'])} samples listed: a link out of the root was followed")
    return result


@case("links", "runs-root-link-loop", expect="ok")
def _runs_loop(sb: Sandbox) -> Result:
    run = sb.run_copy("regression", "runs/regression/a")
    (run.parent / "loop").symlink_to("..")
    result = sb.cli("synthesize", "--format", "json")
    if result.returncode == 0:
        rows = json.loads(result.stdout).get("regression", [])
        check(len(rows) == 1, f"{len(rows)} rows for one run below a link loop")
    return result


@case("links", "report-output-is-a-link-to-a-users-file")
def _report_link(sb: Sandbox) -> Result:
    sb.run_copy("regression", "runs/regression/a")
    target = sb.write("thesis.tex", "\\section{mine}\n")
    sb.path("page.html").symlink_to(target)
    return sb.cli("report", "-o", sb.path("page.html"))


@case("links", "export-output-is-a-link-to-a-users-file")
def _export_link(sb: Sandbox) -> Result:
    run = sb.run_copy()
    target = sb.write("thesis.tex", "\\section{mine}\n")
    sb.path("model.onnx").symlink_to(target)
    return sb.cli("export", run, "-o", sb.path("model.onnx"))


# -- checkpoints: damaged and tampered ----------------------------------------------------------------------
def flip_a_bit_of_the_weights(path: Path) -> None:
    """One exponent bit of the first tensor's data: torch's reader does not check the zip's CRC."""
    import struct
    import zipfile

    data = bytearray(path.read_bytes())
    with zipfile.ZipFile(path) as archive:
        member = next(i for i in archive.infolist() if i.filename.endswith("data/0"))
    start = member.header_offset
    name_length, extra_length = struct.unpack("<HH", data[start + 26:start + 30])
    data[start + 30 + name_length + extra_length + 3] ^= 0x40
    path.write_bytes(bytes(data))


class Evil:
    """Unpickled, it would create the file ``marker``: a checkpoint must never be unpickled as objects."""

    def __init__(self, marker: Path):
        self.marker = str(marker)

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def damage_best(sb: Sandbox, best: Path, damage: str) -> None:
    if damage == "flipped-bit":
        flip_a_bit_of_the_weights(best)
    elif damage == "text":
        best.write_text("these are not weights\n")
    elif damage == "link-to-text":
        best.unlink()
        best.symlink_to(sb.write("notes.txt", "hello\n"))
    elif damage == "empty":
        best.write_bytes(b"")
    elif damage == "cut-in-half":
        best.write_bytes(best.read_bytes()[: best.stat().st_size // 2])
    elif damage == "folder":
        best.unlink()
        best.mkdir()
    elif damage == "missing":
        best.unlink()
    elif damage == "pickled-code":
        import torch

        torch.save({"model": Evil(sb.path("pwned")), "epoch": 1}, best)
    elif damage == "wrong-shapes":
        import torch

        saved = torch.load(best, weights_only=True)
        saved["model"] = {k: torch.zeros(*(s + 1 for s in v.shape)) for k, v in saved["model"].items()}
        torch.save(saved, best)
    elif damage == "fifo":
        best.unlink()
        os.mkfifo(best)


for _damage in ("flipped-bit", "text", "link-to-text", "empty", "cut-in-half", "folder", "missing", "pickled-code",
                "wrong-shapes", "fifo"):
    def _body(sb: Sandbox, damage=_damage) -> Result:
        run = sb.run_copy()
        damage_best(sb, run / "checkpoints" / "best.pt", damage)
        result = sb.cli("evaluate", run, timeout=FIFO_TIMEOUT_S if damage == "fifo" else TIMEOUT_S)
        check(not sb.path("pwned").exists(), "the pickled code ran")
        return result
    CATALOGUE.append(Case("checkpoints", f"best-{_damage}-then-evaluate", _body))


@case("checkpoints", "best-flipped-bit-then-export")
def _flipped_export(sb: Sandbox) -> Result:
    run = sb.run_copy()
    flip_a_bit_of_the_weights(run / "checkpoints" / "best.pt")
    return sb.cli("export", run, "-o", sb.path("model.onnx"))


def tamper(last: Path, values: dict) -> None:
    import torch

    saved = torch.load(last, weights_only=True)
    saved.update(values)
    torch.save(saved, last)


def tampered_values(name: str) -> dict:
    import torch

    return {
        "epoch-negative": {"epoch": -5}, "epoch-text": {"epoch": "abc"}, "epoch-beyond-history": {"epoch": 99},
        "history-int": {"history": 5}, "best-text": {"best": "x"}, "record-list": {"record": [1, 2]},
        "rng-wrong-shape": {"rng": {"torch": torch.zeros(3, dtype=torch.uint8), "numpy": {}, "python": (3, (), None)}},
        "step-losses-text": {"step_losses": ["a"]}, "threads-zero": {"threads": 0},
        "history-rows-text": {"history": ["a", "b", "c"]}, "train-s-nan": {"train_s": float("nan")},
        "format-newer": {"format": 99}, "optimizers-garbage": {"optimizers": {"": {"state": 5}}},
        "model-missing": {"model": {}},
    }[name]


TAMPERED = ("epoch-negative", "epoch-text", "epoch-beyond-history", "history-int", "best-text", "record-list",
            "rng-wrong-shape", "step-losses-text", "threads-zero", "history-rows-text", "train-s-nan",
            "format-newer", "optimizers-garbage", "model-missing")

for _tampered in TAMPERED:
    def _body(sb: Sandbox, what=_tampered) -> Result:
        run = sb.run_copy()
        tamper(run / "checkpoints" / "last.pt", tampered_values(what))
        return sb.cli("run", "regression", "--out", run, "--resume", "-q", "--no-figures", "--set", "epochs=4")
    CATALOGUE.append(Case("checkpoints", f"last-{_tampered}-then-resume", _body))


@case("checkpoints", "last-of-another-experiment-then-resume")
def _last_other(sb: Sandbox) -> Result:
    run = sb.run_copy()
    other = sb.bases.get("linear")
    shutil.copy2(other / "checkpoints" / "last.pt", run / "checkpoints" / "last.pt")
    return sb.cli("run", "regression", "--out", run, "--resume", "-q", "--no-figures", "--set", "epochs=4")


@case("checkpoints", "last-empty-then-resume")
def _last_empty(sb: Sandbox) -> Result:
    run = sb.run_copy()
    (run / "checkpoints" / "last.pt").write_bytes(b"")
    return sb.cli("run", "regression", "--out", run, "--resume", "-q", "--no-figures", "--set", "epochs=4")


# -- a user's files -----------------------------------------------------------------------------------------
@case("userdata", "out-on-users-tmp-files")
def _out_tmp(sb: Sandbox) -> Result:
    sb.write("mine/.backup.tmp", "backup")
    sb.write("mine/.draft.tmp.txt", "draft")
    return sb.cli("run", "regression", "--out", sb.path("mine"), "-q")


@case("userdata", "out-on-users-notes")
def _out_notes(sb: Sandbox) -> Result:
    sb.write("mine/notes.txt", "notes")
    return sb.cli("run", "regression", "--out", sb.path("mine"), "-q")


@case("userdata", "out-on-users-own-params-json")
def _out_params(sb: Sandbox) -> Result:
    sb.write("mine/params.json", json.dumps({"experiment": "regression", "notes": "mine"}))
    return sb.cli("run", "regression", "--out", sb.path("mine"), "--resume", "-q")


@case("userdata", "out-on-users-lookalike-temp-file")
def _out_lookalike(sb: Sandbox) -> Result:
    sb.write("mine/.torchclassics.notes.txt", "a name that looks like ours, but the user's")
    return sb.cli("run", "regression", "--out", sb.path("mine"), "-q", "--no-figures", "--set", "epochs=2")


@case("userdata", "export-over-a-users-file")
def _export_over(sb: Sandbox) -> Result:
    run = sb.run_copy()
    target = sb.write("model.onnx", "my own model\n")
    return sb.cli("export", run, "-o", target)


@case("userdata", "export-over-a-users-sidecar")
def _export_sidecar(sb: Sandbox) -> Result:
    run = sb.run_copy()
    sb.write("model.onnx.json", '{"mine": true}\n')
    return sb.cli("export", run, "-o", sb.path("model.onnx"))


@case("userdata", "export-into-a-run-folder")
def _export_into_run(sb: Sandbox) -> Result:
    run = sb.run_copy()
    sb.watch(run / "summary.json")
    return sb.cli("export", run, "-o", run / "summary.json")


@case("userdata", "report-over-a-users-file")
def _report_over(sb: Sandbox) -> Result:
    sb.run_copy("regression", "runs/regression/a")
    return sb.cli("report", "-o", sb.write("thesis.tex", "\\section{mine}\n"))


@case("userdata", "report-over-a-runs-params")
def _report_params(sb: Sandbox) -> Result:
    run = sb.run_copy("regression", "runs/regression/a")
    return sb.cli("report", "-o", run / "params.json")


@case("userdata", "report-over-a-runs-params-with-force")
def _report_params_force(sb: Sandbox) -> Result:
    run = sb.run_copy("regression", "runs/regression/a")
    return sb.cli("report", "-o", run / "params.json", "--force")


@case("userdata", "report-output-is-a-folder")
def _report_folder(sb: Sandbox) -> Result:
    sb.run_copy("regression", "runs/regression/a")
    sb.write("pages/keep.txt", "mine")
    sb.watch(sb.path("pages"))
    return sb.cli("report", "-o", sb.path("pages"))


@case("userdata", "report-users-own-report-html")
def _report_users_html(sb: Sandbox) -> Result:
    sb.run_copy("regression", "runs/regression/a")
    sb.write("runs/report.html", "<html>my own page</html>\n")
    return sb.cli("report")


@case("userdata", "synthesize-users-own-results-md")
def _synth_users_md(sb: Sandbox) -> Result:
    sb.run_copy("regression", "runs/regression/a")
    sb.write("runs/results.md", "# my results\n")
    return sb.cli("synthesize")


@case("userdata", "report-edited-earlier-report", note="our page, then edited by the user: theirs now")
def _report_edited(sb: Sandbox) -> Result:
    sb.run_copy("regression", "runs/regression/a")
    sb.step(sb.cli("report"), "the first report")
    page = sb.path("runs/report.html")
    page.write_text(page.read_text() + "<!-- my notes -->\n")
    sb.watch(page)
    return sb.cli("report")


@case("userdata", "init-over-users-params")
def _init_over(sb: Sandbox) -> Result:
    sb.write("experiments/regression/params.json", '{"seed": 7, "mine": true}\n')
    return sb.cli("init", "regression", sb.root)


@case("userdata", "init-module-over-users-file")
def _init_module(sb: Sandbox) -> Result:
    sb.write("mine.py", "print('my own code')\n")
    return sb.cli("init", "mine", sb.root, "--module", "mine.py")


@case("userdata", "init-module-outside-the-project", expect="ok",
      note="--module ../x.py is where the user asked for it: written there, nothing of theirs replaced")
def _init_outside(sb: Sandbox) -> Result:
    sb.path("project").mkdir()
    result = sb.cli("init", "mine", sb.path("project"), "--module", "../escaped.py")
    check(result.returncode != 0 or sb.path("escaped.py").is_file(), "the module is not where the user asked")
    return result


@case("userdata", "search-storage-is-a-users-text-file")
def _search_storage(sb: Sandbox) -> Result:
    return sb.cli("search", "regression", "--trials", "1", "--storage", sb.write("notes.log", "my lab notes\n"))


@case("userdata", "lesson-out-over-users-file", expect="ok")
def _lesson_out(sb: Sandbox) -> Result:
    name = "activations"
    sb.path("figs").mkdir()
    first = sb.cli("lesson", name, "--out", sb.path("figs"))
    sb.step(first, f"lesson {name}")
    written = [p for p in sb.path("figs").iterdir() if p.is_file()]
    check(bool(written), f"lesson {name} wrote no figure")
    for path in written:
        path.write_text("the user's edited figure\n")
        sb.watch(path)
    second = sb.cli("lesson", name, "--out", sb.path("figs"))
    if second.returncode == 2:  # refusing to replace the user's files is as right as keeping them
        check(len(second.error_lines()) == 1, "more than one error line")
        second.returncode = 0
    return second


# -- spreadsheets, pages, terminals: what readers print -------------------------------------------------------
def edit_json(path: Path, **changes) -> None:
    data = json.loads(path.read_text())
    for key, value in changes.items():
        target = data
        *parents, last = key.split("__")
        for parent in parents:
            target = target[parent]
        target[last] = value
    path.write_text(json.dumps(data))


FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


@case("output", "csv-formula-in-run-name", expect="ok")
def _csv_name(sb: Sandbox) -> Result:
    sb.run_copy("regression", "runs/regression/a")
    sb.run_copy("regression", 'runs/regression/=HYPERLINK("http:x","y")')
    result = sb.cli("synthesize", "--format", "csv")
    cells = [cell for line in result.stdout.splitlines() for cell in line.split(",")]
    check(not any(c.lstrip('"').startswith(FORMULA_STARTS) and not _is_number(c) for c in cells),
          f"a formula cell: {[c for c in cells if c.lstrip(chr(34)).startswith(FORMULA_STARTS)][:2]}")
    return result


def _is_number(text: str) -> bool:
    try:
        float(text)
        return True
    except ValueError:
        return False


@case("output", "csv-formula-in-param-values", expect="ok")
def _csv_param(sb: Sandbox) -> Result:
    for name, value in (("a", "SGD"), ("b", "@SUM(A1:A9)"), ("c", "-2+3"), ("d", "+cmd|' /C calc'!A0")):
        run = sb.run_copy("regression", f"runs/regression/{name}")
        edit_json(run / "params.json", optimizer=value)
        edit_json(run / "summary.json", params__optimizer=value)
    result = sb.cli("synthesize", "--format", "csv")
    import csv
    import io

    cells = [cell for row in csv.reader(io.StringIO(result.stdout)) for cell in row]
    bad = [c for c in cells if c.startswith(FORMULA_STARTS) and not _is_number(c)]
    check(not bad, f"formula cells: {bad[:3]}")
    check(any("SUM" in c for c in cells), "the edited value is not in the table at all")
    return result


@case("output", "report-script-in-a-summary-value", expect="ok")
def _report_script(sb: Sandbox) -> Result:
    run = sb.run_copy("regression", "runs/regression/a")
    payload = "</script><script>document.title='pwned'</script>"
    edit_json(run / "summary.json", device=payload)
    edit_json(run / "params.json", optimizer=payload)
    result = sb.cli("report")
    page = sb.path("runs/report.html")
    if page.is_file():
        check("<script>document.title='pwned'" not in page.read_text(), "the summary's script is in the page as is")
    return result


@case("output", "report-html-in-a-run-name", expect="ok")
def _report_html_name(sb: Sandbox) -> Result:
    sb.run_copy("regression", "runs/regression/<img src=x onerror=alert(1)>")
    result = sb.cli("report")
    page = sb.path("runs/report.html")
    if page.is_file():
        check("<img src=x onerror=alert(1)>" not in page.read_text(), "the run's name is markup in the page")
    return result


@case("output", "markdown-pipe-in-run-name", expect="ok")
def _markdown_pipe(sb: Sandbox) -> Result:
    sb.run_copy("regression", "runs/regression/a|b|c")
    sb.run_copy("regression", "runs/regression/plain")
    result = sb.cli("synthesize")
    table = [line for line in result.stdout.splitlines() if line.startswith("|")]
    counts = {line.replace("\\|", "").count("|") for line in table}
    check(len(counts) == 1, f"table rows of different widths: {sorted(counts)}")
    return result


@case("output", "terminal-escape-in-run-name", expect="ok")
def _terminal_escape(sb: Sandbox) -> Result:
    sb.run_copy("regression", "runs/regression/a\x1b]0;pwned\x07\x1b[2J")
    result = sb.cli("synthesize")
    check("\x1b" not in result.stdout and "\x1b" not in result.stderr, "a raw escape sequence reaches the terminal")
    return result


@case("output", "closed-stdout-pipe", expect="ok",
      note="`torchclassics list | head -0`: no traceback for a reader gone")
def _closed_pipe(sb: Sandbox) -> Result:
    read, write = os.pipe()
    os.close(read)
    sb.before = snapshot(sb.root)
    started = time.monotonic()
    proc = sb._popen(["-m", "torchclassics", "list"], None, None, stdout=write)
    os.close(write)
    result = sb.finish(proc, started=started)
    if not result.has_traceback() and result.returncode != 0:
        result.returncode = 0  # any status is fine for a closed pipe; only a traceback is not
    return result


# -- resume: a run's record cut, edited or copied -------------------------------------------------------------
def resume(sb: Sandbox, run: Path, epochs: int = 4) -> Result:
    return sb.cli("run", "regression", "--out", run, "--resume", "-q", "--no-figures", "--set", f"epochs={epochs}")


def exact_resume(name: str, damage: Callable[[Path], None], note: str = ""):
    @case("resume", name, expect="ok", note=note)
    def body(sb: Sandbox) -> Result:
        run = sb.run_copy()
        damage(run)
        result = resume(sb, run)
        if result.returncode == 0:
            check(comparable_rows(run) == sb.bases.rows("regression4"),
                  f"{len(comparable_rows(run))} rows, not those of an uninterrupted 4-epoch run")
        return result
    return body


exact_resume("metrics-deleted", lambda run: (run / "metrics.jsonl").unlink())
exact_resume("metrics-cut-mid-line", lambda run: (run / "metrics.jsonl").write_bytes(
    (run / "metrics.jsonl").read_bytes()[:150]))
exact_resume("metrics-garbage-line", lambda run: (run / "metrics.jsonl").write_bytes(
    (run / "metrics.jsonl").read_bytes() + b'{"epoch": "x", \xff\n'))
exact_resume("metrics-extra-rows", lambda run: (run / "metrics.jsonl").write_text(
    (run / "metrics.jsonl").read_text() * 2))
exact_resume("metrics-empty", lambda run: (run / "metrics.jsonl").write_text(""))
exact_resume("summary-deleted", lambda run: (run / "summary.json").unlink())
exact_resume("leftover-temporary-files", lambda run: (run / ".torchclassics.summary.x1.tmp.json").write_text("{"))


@case("resume", "params-deleted")
def _params_deleted(sb: Sandbox) -> Result:
    run = sb.run_copy()
    (run / "params.json").unlink()
    return resume(sb, run)


@case("resume", "params-not-json")
def _params_not_json(sb: Sandbox) -> Result:
    run = sb.run_copy()
    (run / "params.json").write_text("{not json")
    return resume(sb, run)


@case("resume", "params-lr-edited")
def _params_edited(sb: Sandbox) -> Result:
    run = sb.run_copy()
    edit_json(run / "params.json", lr=0.5)
    return resume(sb, run)


@case("resume", "another-experiment")
def _resume_other(sb: Sandbox) -> Result:
    run = sb.run_copy()
    return sb.cli("run", "classification", "--out", run, "--resume", "-q")


@case("resume", "fewer-epochs-than-done")
def _resume_fewer(sb: Sandbox) -> Result:
    return resume(sb, sb.run_copy(), epochs=2)


@case("resume", "a-users-folder")
def _resume_users(sb: Sandbox) -> Result:
    sb.write("mine/notes.txt", "mine")
    return sb.cli("run", "regression", "--out", sb.path("mine"), "--resume", "-q")


@case("resume", "copied-run-folder", expect="ok")
def _resume_copy(sb: Sandbox) -> Result:
    original = sb.run_copy("regression", "original")
    sb.watch(original)
    copy = sb.path("copy")
    shutil.copytree(original, copy, symlinks=True)
    result = resume(sb, copy)
    if result.returncode == 0:
        check(comparable_rows(copy) == sb.bases.rows("regression4"), "the copy's resumed rows differ")
        check(json.loads((copy / "summary.json").read_text()).get("run") == "copy", "the copy's summary names "
              "another run")
    return result


# -- schedules and optimizer arguments that cannot train -------------------------------------------------------
for _name, _scheduler, _says in (
        ("exponential-gamma-negative", {"name": "ExponentialLR", "gamma": -1}, "scheduler"),
        ("multistep-gamma-negative", {"name": "MultiStepLR", "milestones": [2], "gamma": -2}, "scheduler"),
        ("cyclic-base-lr-negative", {"name": "CyclicLR", "base_lr": -1, "max_lr": 1}, "scheduler"),
        ("onecycle-total-steps-1", {"name": "OneCycleLR", "max_lr": 0.1, "total_steps": 1}, "scheduler"),
        ("polynomial-power-negative", {"name": "PolynomialLR", "power": -1, "total_iters": 4}, "scheduler"),
        ("exponential-gamma-1e308", {"name": "ExponentialLR", "gamma": 1e308}, "scheduler"),
        ("step-size-zero", {"name": "StepLR", "step_size": 0}, "scheduler"),
        ("cosine-t-max-zero", {"name": "CosineAnnealingLR", "T_max": 0}, "scheduler"),
        ("plateau-factor-2", {"name": "ReduceLROnPlateau", "factor": 2}, "scheduler"),
        ("lambda-needs-code", {"name": "LambdaLR"}, "scheduler"),
        ("unknown-scheduler", {"name": "WarpSpeedLR"}, "scheduler"),
        ("unknown-argument", {"name": "StepLR", "step_size": 1, "warp": 9}, "scheduler"),
        ("no-name", {"gamma": 0.5}, "scheduler"),
        ("sequential-needs-objects", {"name": "SequentialLR", "schedulers": [], "milestones": []}, "scheduler"),
        ("milestones-text", {"name": "MultiStepLR", "milestones": "soon"}, "scheduler"),
        ("scheduler-a-list", ["StepLR", 1], "scheduler")):
    refused_run("schedules", _name, ["epochs=4", f"scheduler={json.dumps(_scheduler)}"], says=_says)

for _name, _sets, _experiment, _says in (
        ("adam-betas-one-value", ["optimizer=Adam", "optimizer_args.betas=[0.9]"], "regression", "betas"),
        ("adam-beta-above-one", ["optimizer=Adam", "optimizer_args.betas=[2, 0.9]"], "regression", "betas"),
        ("weight-decay-negative", ["optimizer_args.weight_decay=-1"], "regression", "weight_decay"),
        ("momentum-negative", ["optimizer_args.momentum=-1"], "regression", "momentum"),
        ("nesterov-without-momentum", ["optimizer_args.nesterov=true"], "regression", "nesterov"),
        ("unknown-optimizer-argument", ["optimizer_args.warp=9"], "regression", "warp"),
        ("optimizer-args-not-an-object", ["optimizer_args=5"], "regression", "optimizer_args"),
        ("optimizer-args-lr-text", ["optimizer_args.lr=\"fast\""], "regression", None),
        ("unknown-optimizer", ["optimizer=Nosuch"], "regression", "Nosuch"),
        ("optimizer-base-class", ["optimizer=Optimizer"], "regression", "Optimizer"),
        ("sparse-adam-dense-gradients", ["optimizer=SparseAdam"], "regression", "SparseAdam"),
        ("optimizers-nadam-typo", ["optimizer_args.Nadam={\"momentum_decay\": 0.004}"], "optimizers", "Nadam"),
        ("optimizers-empty-list", ["optimizers=[]"], "optimizers", "optimizers"),
        ("optimizers-unknown-name", ["optimizers=[\"SGD\", \"Turbo\"]"], "optimizers", "Turbo"),
        ("clip-grad-norm-negative", ["clip_grad_norm=-1"], "regression", "clip_grad_norm"),
        ("clip-grad-norm-nan", ["clip_grad_norm=NaN"], "regression", "clip_grad_norm"),
        ("lr-nan", ["lr=NaN"], "regression", "lr"),
        ("lr-infinite", ["lr=Infinity"], "regression", "lr"),
        ("lr-negative", ["lr=-1"], "regression", "lr")):
    refused_run("optimizers", _name, ["epochs=2", *_sets], experiment=_experiment, says=_says)

# -- sizes and values of data ------------------------------------------------------------------------------------
for _name, _sets, _experiment, _says in (
        ("hidden-1e20", ["hidden=1e20"], "regression", "hidden"),
        ("hidden-10e11", ["hidden=100000000000"], "regression", "hidden"),
        ("hidden-float", ["hidden=10.5"], "regression", "hidden"),
        ("hidden-zero", ["hidden=0"], "regression", "hidden"),
        ("hidden-true", ["hidden=true"], "regression", "hidden"),
        ("n-points-1e10", ["n_points=10000000000"], "regression", "n_points"),
        ("n-points-zero", ["n_points=0"], "regression", "n_points"),
        ("epochs-zero", ["epochs=0"], "regression", "epochs"),
        ("epochs-fraction", ["epochs=1.5"], "regression", "epochs"),
        ("batch-size-zero", ["batch_size=0"], "regression", "batch_size"),
        ("seed-negative", ["seed=-1"], "regression", "seed"),
        ("seed-beyond-64-bits", ["seed=36893488147419103232"], "regression", "seed"),
        ("threads-zero", ["threads=0"], "regression", "threads"),
        ("threads-huge", ["threads=100000"], "regression", "threads"),
        ("precision-unknown", ["precision=fp7"], "regression", "precision"),
        ("noise-1e308", ["noise=1e308"], "regression", "noise"),
        ("noise-negative", ["noise=-1"], "regression", "noise"),
        ("centre-1e308", ["centre=1e308"], "classification", "centre"),
        ("x-range-overflow", ["x_range=[-1e308, 1e308]"], "batchnorm", "x_range"),
        ("x-range-reversed", ["x_range=[10, -7]"], "batchnorm", "x_range"),
        ("gif-frames-negative", ["gif_frames=-1"], "regression", "gif_frames"),
        ("time-steps-zero", ["time_steps=0"], "rnn_sincos", "time_steps"),
        ("layers-zero", ["layers=0"], "batchnorm", "layers"),
        ("product-beyond-memory", ["hidden=65536", "n_points=1000000", "batch_size=1000000"], "regression",
         "one training step needs"),
        ("dqn-learn-start-beyond-memory", ["learn_start=5000", "memory=2000"], "dqn_cartpole", "learn_start"),
        ("dqn-epsilon-above-one", ["epsilon_start=2"], "dqn_cartpole", "epsilon_start"),
        ("dqn-gamma-above-one", ["gamma=1.5"], "dqn_cartpole", "gamma"),
        ("test-fraction-above-one", ["test_fraction=1.5"], "char_rnn_names", "test_fraction"),
        ("val-fraction-one", ["val_fraction=1.0", "data_root=nowhere"], "dogs_vs_cats", "val_fraction"),
        ("cnn-test-batch-zero", ["test_batch_size=0", "download=false"], "cnn_mnist", "test_batch_size"),
        ("dogs-data-root-missing", ["data_root=/nonexistent/pets"], "dogs_vs_cats", "data_root")):
    refused_run("sizes", _name, ["epochs=2", *_sets] if not any(s.startswith("epochs") for s in _sets) else _sets,
                experiment=_experiment, says=_says)


@case("sizes", "dogs-folder-of-unreadable-images")
def _dogs_unreadable(sb: Sandbox) -> Result:
    for name in ("cat", "dog"):
        for i in range(4):
            sb.write(f"pets/{name}/{name}{i}.jpg", b"not an image at all", watch=False)
    return sb.cli("run", "dogs_vs_cats", "--out", sb.path("out"), "-q", "--no-figures", "--set", "epochs=1",
                  "--set", f"data_root={sb.path('pets')}", "--set", "pretrained=false")


@case("sizes", "dogs-gif-photo-read-or-named", expect="ok")
def _dogs_gif(sb: Sandbox) -> Result:
    root = image_folder(sb, "data")
    from PIL import Image

    Image.new("RGB", (40, 40), (1, 2, 3)).save(root / "cat" / "animated.gif")
    result, found = listing(sb)
    named = [f for f in found["files"] if f.endswith("animated.gif")] + [u for u, _ in found["unusable"]
                                                                         if u.endswith("animated.gif")]
    check(bool(named), "the .gif photo is neither read nor named among the files left out")
    return result


# -- params files ------------------------------------------------------------------------------------------------
def params_file(sb: Sandbox, kind: str) -> Path:
    path = sb.path("p.json")
    if kind == "folder":
        path.mkdir()
    elif kind == "link-loop":
        path.symlink_to("q.json")
        sb.path("q.json").symlink_to("p.json")
    elif kind == "fifo":
        os.mkfifo(path)
    elif kind == "dev-zero":
        path.symlink_to("/dev/zero")
    elif kind == "deeply-nested":
        sb.write("p.json", '{"seed": ' + "[" * 100000 + "]" * 100000 + "}", watch=False)
    elif kind == "duplicated-keys":
        sb.write("p.json", '{"lr": 0.1, "epochs": 2, "lr": 0.9}', watch=False)
    elif kind == "over-1-mb":
        sb.write("p.json", json.dumps({"epochs": 2, "notes": "x" * 1_200_000}), watch=False)
    elif kind == "empty":
        sb.write("p.json", "", watch=False)
    elif kind == "array":
        sb.write("p.json", "[1, 2, 3]", watch=False)
    elif kind == "nan-literal":
        sb.write("p.json", '{"lr": NaN}', watch=False)
    elif kind == "not-utf8":
        sb.write("p.json", b'{"lr": 0.1, "note": "\xff\xfe"}', watch=False)
    elif kind == "utf16":
        sb.write("p.json", '{"lr": 0.1}'.encode("utf-16"), watch=False)
    elif kind == "another-experiments-params":
        sb.write("p.json", json.dumps({"experiment": "classification", "centre": 2.0, "n_per_class": 10}),
                 watch=False)
    elif kind == "huge-integer":
        sb.write("p.json", '{"epochs": ' + "9" * 5000 + "}", watch=False)
    elif kind == "missing":
        pass
    return path


PARAMS_KINDS = ("folder", "link-loop", "fifo", "dev-zero", "deeply-nested", "duplicated-keys", "over-1-mb", "empty",
                "array", "nan-literal", "not-utf8", "utf16", "another-experiments-params", "huge-integer", "missing")

for _kind in PARAMS_KINDS:
    def _body(sb: Sandbox, kind=_kind) -> Result:
        return sb.cli("run", "regression", "--params", params_file(sb, kind), "--out", sb.path("out"), "-q",
                      timeout=FIFO_TIMEOUT_S)
    CATALOGUE.append(Case("params-files", f"--params-{_kind}", _body))

for _kind in ("folder", "link-loop", "fifo", "duplicated-keys", "empty", "not-utf8"):
    def _body(sb: Sandbox, kind=_kind) -> Result:
        sb.path("experiments/regression").mkdir(parents=True)
        source = params_file(sb, kind)
        target = sb.path("experiments/regression/params.json")
        if kind == "link-loop":
            target.symlink_to("loop.json")
            sb.path("experiments/regression/loop.json").symlink_to("params.json")
        else:
            source.rename(target)
        return sb.cli("run", "regression", "--out", sb.path("out"), "-q", timeout=FIFO_TIMEOUT_S)
    CATALOGUE.append(Case("params-files", f"project-params-{_kind}", _body))


# -- plugins: an experiment of the user's own ------------------------------------------------------------------
PLUGIN_HEAD = "from torchclassics.registry import Experiment, experiment\n"


def plugin(sb: Sandbox, source: str, name: str = "mine", params: dict | None = None) -> Path:
    module = sb.write("mine.py", source, watch=False)
    sb.write(f"experiments/{name}/params.json", json.dumps(params or {"seed": 1, "epochs": 1}), watch=False)
    return module


DECORATED = "@experiment('mine')\nclass Mine(Experiment):\n    def build(self, params, device):\n"


def plugin_case(name: str, source: str, experiment: str = "mine", says=None, users_traceback=False):
    def body(sb: Sandbox) -> Result:
        module = plugin(sb, source, experiment)
        return sb.cli("run", experiment, "--module", module, "--out", sb.path("out"), "-q", "--no-figures")
    CATALOGUE.append(Case("plugins", name, body, "refused", says, users_traceback=users_traceback))


plugin_case("import-exits-0", PLUGIN_HEAD + "raise SystemExit(0)\n" + DECORATED + "        pass\n", says="mine.py")
plugin_case("import-exits-3", PLUGIN_HEAD + "import sys\nsys.exit(3)\n" + DECORATED + "        pass\n",
            says="mine.py")
plugin_case("import-raises", PLUGIN_HEAD + "raise ValueError('broken on purpose')\n" + DECORATED + "        pass\n",
            says="mine.py", users_traceback=True)
plugin_case("syntax-error", "def broken(:\n", says="mine.py")
plugin_case("registers-nothing", "x = 1\n", says="mine")
plugin_case("build-returns-dict", PLUGIN_HEAD + DECORATED + "        return {'model': None}\n", says="mine.py")
plugin_case("build-exits-0", PLUGIN_HEAD + DECORATED + "        raise SystemExit(0)\n", says="mine.py")
plugin_case("build-raises", PLUGIN_HEAD + DECORATED + "        raise ValueError('my bug')\n", says="mine.py",
            users_traceback=True)
plugin_case("takes-a-builtin-name", PLUGIN_HEAD + "@experiment('regression')\nclass Mine(Experiment):\n"
            "    pass\n", experiment="regression", says="regression")


@case("plugins", "module-file-missing")
def _plugin_missing(sb: Sandbox) -> Result:
    return sb.cli("run", "mine", "--module", sb.path("nowhere.py"), "-q")


@case("plugins", "module-is-a-folder")
def _plugin_folder(sb: Sandbox) -> Result:
    sb.path("mine.py").mkdir()
    return sb.cli("run", "mine", "--module", sb.path("mine.py"), "-q")


@case("plugins", "plugins-variable-names-a-missing-file", expect="ok",
      note="a plugin no command asked for is skipped with a note naming it (as good as a refusal)")
def _plugin_variable(sb: Sandbox) -> Result:
    result = sb.cli("params", "regression", env={**sb.env, "TORCHCLASSICS_PLUGINS": str(sb.path("gone.py"))})
    check("gone.py" in result.stderr, "nothing says the plugin named in $TORCHCLASSICS_PLUGINS was skipped")
    return result


# -- search ------------------------------------------------------------------------------------------------------
@case("search", "metric-nosuch")
def _search_metric(sb: Sandbox) -> Result:
    return sb.cli("search", "regression", "--trials", "2", "--metric", "nosuch", "--set", "epochs=2")


@case("search", "metric-nosuch-then-a-default-search", expect="ok")
def _search_metric_after(sb: Sandbox) -> Result:
    sb.step(sb.cli("search", "regression", "--trials", "1", "--metric", "nosuch", "--set", "epochs=2"),
            "the search with --metric nosuch", codes=(2,))
    return sb.cli("search", "regression", "--trials", "1", "--set", "epochs=2", "--set", "gif_frames=2")


@case("search", "study-name-escapes-the-runs-root")
def _search_escape(sb: Sandbox) -> Result:
    sb.runs.mkdir()
    result = sb.cli("search", "regression", "--trials", "1", "--study", "../../escaped", "--set", "epochs=2")
    escaped = [p for p in sb.root.iterdir() if p.name != "runs"] + [p for p in sb.root.parent.glob("escaped*")]
    if result.returncode == 0:
        check(not escaped, f"the study wrote outside the runs root: {escaped}")
    return result


@case("search", "own-storage-keeps-out-of-another-studys-folder", expect="ok",
      note="files of a study in --storage elsewhere go to a folder of its own (regression@journal-<hash>), "
           "never into RUNS/studies/regression, the default study's")
def _search_own_storage(sb: Sandbox) -> Result:
    sb.write("runs/studies/regression/notes.txt", "the default study's folder, the user's notes in it\n")
    sb.watch(sb.path("runs/studies/regression"))
    result = sb.cli("search", "regression", "--trials", "1", "--set", "epochs=2", "--set", "gif_frames=2",
                    "--storage", sb.path("mine/journal.log"), "--json")
    if result.returncode == 0:
        best = Path(json.loads(result.stdout)["best_params_path"])
        check(best.is_file() and best.parent != sb.path("runs/studies/regression"),
              f"best_params.json at {best}")
    return result


@case("search", "storage-a-folder")
def _search_storage_folder(sb: Sandbox) -> Result:
    sb.path("store").mkdir()
    sb.watch(sb.path("store"))
    return sb.cli("search", "regression", "--trials", "1", "--storage", sb.path("store"))


@case("search", "storage-unknown-url-scheme")
def _search_storage_url(sb: Sandbox) -> Result:
    return sb.cli("search", "regression", "--trials", "1", "--storage", "mongodb://localhost/x")


@case("search", "two-searches-on-one-study", expect="ok")
def _two_searches(sb: Sandbox) -> Result:
    args = ("search", "regression", "--trials", "2", "--set", "epochs=3", "--set", "gif_frames=2", "--param",
            "lr=loguniform:0.01:0.5", "--json")
    sb.runs.mkdir()
    procs = [sb.start(*args) for _ in range(2)]
    results = [sb.finish(p, timeout=240) for p in procs]
    for result in results:
        sb.step(result, "one of the searches")
    best_path = Path(json.loads(results[0].stdout)["best_params_path"])
    best = json.loads(best_path.read_text())
    journal = sb.runs / "studies" / "regression"
    code = ("import json, optuna, sys\noptuna.logging.set_verbosity(optuna.logging.ERROR)\n"
            "from optuna.storages import JournalStorage\nfrom optuna.storages.journal import JournalFileBackend\n"
            f"s = optuna.load_study(study_name='regression', storage=JournalStorage(JournalFileBackend("
            f"{str(next(journal.glob('*.log')))!r})))\n"
            "print(json.dumps({'n': len(s.trials), 'lr': s.best_params['lr']}))\n")
    study = json.loads(sb.step(sb.python(code), "reading the study").stdout)
    check(study["n"] == 4, f"{study['n']} trials in the study, 4 asked")
    named = best.get("best_params", {}).get("lr")
    check(named == study["lr"], f"best_params.json names lr={named}, the study's best is lr={study['lr']}")
    return sb.last


@case("search", "sigkill-leaves-no-orphaned-worker", expect="ok")
def _search_orphans(sb: Sandbox) -> Result:
    import psutil

    proc = sb.start("search", "regression", "--trials", "4", "--workers", "2", "--set", "epochs=3000", "--set",
                    "gif_frames=2")
    deadline = time.monotonic() + 60
    workers = []
    while time.monotonic() < deadline and len(workers) < 2:
        with contextlib.suppress(psutil.Error):
            workers = psutil.Process(proc.pid).children(recursive=True)
        time.sleep(0.2)
    check(len(workers) >= 1, "no worker started within a minute")
    os.kill(proc.pid, signal.SIGKILL)
    result = sb.finish(proc)
    time.sleep(5)
    alive = [w.pid for w in workers if w.is_running() and w.status() != psutil.STATUS_ZOMBIE]
    for pid in alive:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    check(not alive, f"workers still running 5 s after the search was killed: {alive}")
    result.returncode = 0
    return result


# -- readers: report and synthesize on runs that lie or break ----------------------------------------------------
def two_runs(sb: Sandbox) -> tuple[Path, Path]:
    return sb.run_copy("regression", "runs/regression/good"), sb.run_copy("regression", "runs/regression/bad")


def skipped_or_flagged(command: str, name: str, damage: Callable[[Sandbox, Path], None], word: str = "bad",
                       timeout: float = TIMEOUT_S, flagged: bool = False):
    """The bad run is listed with its reason (skipped or flagged), the good one is in the table."""
    @case("readers", f"{command}-{name}", expect="ok")
    def body(sb: Sandbox) -> Result:
        _, bad = two_runs(sb)
        damage(sb, bad)
        result = sb.cli(command, timeout=timeout)
        if result.returncode == 0:
            text = result.stdout if command == "synthesize" else sb.path("runs/report.html").read_text()
            lists = "Flagged runs" if flagged else "Skipped runs"
            if command == "synthesize":
                check("good" in text and lists in text and word in text.split(lists, 1)[1],
                      f"the bad run is not under '{lists}' with its reason")
            else:
                check("good" in text and word in text, "the page does not name the bad run")
        return result
    return body


def _huge_integer(sb, run):
    text = (run / "summary.json").read_text()
    (run / "summary.json").write_text(text.replace('"seed": 1,', '"seed": ' + "7" * 400 + ",", 1))


def _summary_fifo(sb, run):
    (run / "summary.json").unlink()
    os.mkfifo(run / "summary.json")


def _metrics_fifo(sb, run):
    (run / "metrics.jsonl").unlink()
    os.mkfifo(run / "metrics.jsonl")


def _summary_link_out(sb, run):
    (run / "summary.json").unlink()
    (run / "summary.json").symlink_to(sb.write("precious.txt", "the user's own file\n"))


def _summary_dev_zero(sb, run):
    (run / "summary.json").unlink()
    (run / "summary.json").symlink_to("/dev/zero")


def _contradiction(sb, run):
    edit_json(run / "summary.json", experiment="classification")


def _summary_not_json(sb, run):
    (run / "summary.json").write_text("{half")


def _summary_folder(sb, run):
    (run / "summary.json").unlink()
    (run / "summary.json").mkdir()


def _metrics_list(sb, run):
    edit_json(run / "summary.json", metrics=[1, 2, 3])


def _metric_text(sb, run):
    edit_json(run / "summary.json", metrics__test_mse="0.0001")


def _params_fifo(sb, run):
    (run / "params.json").unlink()
    os.mkfifo(run / "params.json")


def _metrics_one_huge_line(sb, run):
    with (run / "metrics.jsonl").open("a") as f:
        f.write('{"epoch": 4, "mse": ' + "1" * 5000 + "}\n")


for _command in ("synthesize", "report"):
    skipped_or_flagged(_command, "400-digit-integer", _huge_integer)
    skipped_or_flagged(_command, "summary-fifo", _summary_fifo, timeout=FIFO_TIMEOUT_S)
    skipped_or_flagged(_command, "summary-not-json", _summary_not_json)
    skipped_or_flagged(_command, "summary-contradicts-params", _contradiction, flagged=True)
skipped_or_flagged("report", "summary-link-out-of-the-run", _summary_link_out)
skipped_or_flagged("report", "metrics-fifo", _metrics_fifo, timeout=FIFO_TIMEOUT_S)
skipped_or_flagged("report", "summary-link-to-dev-zero", _summary_dev_zero, timeout=FIFO_TIMEOUT_S)
skipped_or_flagged("synthesize", "summary-link-to-dev-zero", _summary_dev_zero, timeout=FIFO_TIMEOUT_S)
skipped_or_flagged("synthesize", "summary-a-folder", _summary_folder)
skipped_or_flagged("synthesize", "summary-metrics-a-list", _metrics_list, flagged=True)
skipped_or_flagged("synthesize", "summary-metric-as-text", _metric_text, flagged=True)
skipped_or_flagged("synthesize", "params-fifo", _params_fifo, timeout=FIFO_TIMEOUT_S)
skipped_or_flagged("report", "params-fifo", _params_fifo, timeout=FIFO_TIMEOUT_S)
skipped_or_flagged("report", "metrics-line-of-5000-digits", _metrics_one_huge_line)


@case("readers", "copied-run-folders-keep-their-names", expect="ok")
def _copies(sb: Sandbox) -> Result:
    for name in ("first", "second", "third"):
        sb.run_copy("regression", f"runs/regression/{name}")
    result = sb.cli("synthesize", "--format", "json")
    if result.returncode == 0:
        names = sorted(str(row.get("run")) for row in json.loads(result.stdout)["regression"])
        check(names == ["first", "second", "third"], f"rows named {names}")
    return result


@case("readers", "leftover-temporary-figure-not-shown", expect="ok")
def _temporary_figure(sb: Sandbox) -> Result:
    run = sb.run_copy("regression", "runs/regression/a")
    (run / "figures" / ".torchclassics.loss.x1.tmp.png").write_bytes(b"\x89PNG half")
    result = sb.cli("report")
    if result.returncode == 0:
        check(".torchclassics.loss" not in sb.path("runs/report.html").read_text(), "the temporary figure is shown")
    return result


@case("readers", "empty-runs-root")
def _empty_root(sb: Sandbox) -> Result:
    sb.runs.mkdir()
    return sb.cli("report")


@case("readers", "concurrent-reports-one-page", expect="ok")
def _concurrent_reports(sb: Sandbox) -> Result:
    sb.run_copy("regression", "runs/regression/a")
    procs = [sb.start("report") for _ in range(3)]
    results = [sb.finish(p) for p in procs]
    for result in results:
        sb.step(result, "one of the reports", codes=(0, 2))
    check(any(r.returncode == 0 for r in results), "no report was written")
    page = sb.path("runs/report.html").read_text()
    check(page.rstrip().endswith("</html>"), "the page is cut short")
    return next(r for r in results if r.returncode == 0)


@case("readers", "report-killed-while-writing", expect="ok")
def _report_killed(sb: Sandbox) -> Result:
    sb.run_copy("regression", "runs/regression/a")
    for delay in (0.3, 0.5, 0.7, 0.9):
        proc = sb.start("report")
        time.sleep(delay)
        proc.send_signal(signal.SIGKILL)
        sb.finish(proc)
        page = sb.path("runs/report.html")
        check(not page.exists() or page.read_text().rstrip().endswith("</html>"), f"a cut page after {delay} s")
    leftovers = [p.name for p in sb.runs.iterdir() if p.name.startswith(".")]
    result = sb.cli("report")
    left = [p.name for p in sb.runs.iterdir() if p.name.startswith(".")]
    check(not left, f"temporary files of the killed writes stay: {left or leftovers}")
    return result


# -- predict and export ------------------------------------------------------------------------------------------
@case("predict", "text-on-an-image-run", says="image")
def _predict_text(sb: Sandbox) -> Result:
    run = sb.run_copy("cnn_mnist")
    result = sb.cli("predict", run, "--text", "seven")
    if result.returncode == 1 and "classifies image files, not texts" in result.stdout:
        result.returncode, result.stderr = 2, ERROR_PREFIX + result.stdout.strip()  # one row's error: as designed
    return result


@case("predict", "file-on-a-regression-run")
def _predict_regression(sb: Sandbox) -> Result:
    run = sb.run_copy()
    return sb.cli("predict", run, sb.write("x.png", b"\x89PNG"))


def predict_row_error(name: str, make: Callable[[Sandbox], Path], timeout: float = TIMEOUT_S):
    """predict on a bad input file: that file's row is an error (exit 1), no traceback, no hang."""
    @case("predict", name, expect="ok")
    def body(sb: Sandbox) -> Result:
        run = sb.run_copy("cnn_mnist")
        result = sb.cli("predict", run, make(sb), timeout=timeout)
        if result.returncode == 1 and "error" in result.stdout and not result.has_traceback():
            result.returncode = 0  # the row says what is wrong with that file: as designed
        elif result.returncode == 2 and len(result.error_lines()) == 1:
            result.returncode = 0
        return result
    return body


def _bomb(sb: Sandbox) -> Path:
    """A PNG whose header claims 100,000 x 100,000 pixels."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    header = struct.pack(">IIBBBBB", 100_000, 100_000, 8, 0, 0, 0, 0)
    return sb.write("bomb.png", b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header)
                    + chunk(b"IDAT", zlib.compress(b"\0" * 1000)) + chunk(b"IEND", b""), watch=False)


def _fifo_png(sb: Sandbox) -> Path:
    os.mkfifo(sb.path("digit.png"))
    return sb.path("digit.png")


predict_row_error("text-file-named-png", lambda sb: sb.write("digit.png", "not a picture\n"))
predict_row_error("folder-named-png", lambda sb: (sb.path("digit.png").mkdir(), sb.path("digit.png"))[1])
predict_row_error("missing-file", lambda sb: sb.path("nowhere.png"))
predict_row_error("decompression-bomb", _bomb)
predict_row_error("fifo-named-png", _fifo_png, timeout=FIFO_TIMEOUT_S + 20)


@case("predict", "export-without-checkpoints", says="checkpoint")
def _export_no_checkpoints(sb: Sandbox) -> Result:
    run = sb.run_copy()
    shutil.rmtree(run / "checkpoints")
    return sb.cli("export", run, "-o", sb.path("m.onnx"))


@case("predict", "export-without-params", says="params.json")
def _export_no_params(sb: Sandbox) -> Result:
    run = sb.run_copy()
    (run / "params.json").unlink()
    return sb.cli("export", run, "-o", sb.path("m.onnx"))


@case("predict", "export-into-a-missing-folder", expect="ok", note="the folders are made, as for --out")
def _export_missing_folder(sb: Sandbox) -> Result:
    result = sb.cli("export", sb.run_copy(), "-o", sb.path("no/such/folder/m.onnx"))
    check(result.returncode != 0 or sb.path("no/such/folder/m.onnx").is_file(), "exit 0 and no model written")
    return result


@case("predict", "export-quantize-onnx")
def _export_quantize(sb: Sandbox) -> Result:
    return sb.cli("export", sb.run_copy(), "--quantize", "int8", "-o", sb.path("m.onnx"))


# -- signals and concurrent writers ------------------------------------------------------------------------------
LONG = ["--no-figures", "--set", "epochs=4000", "--set", "gif_frames=2"]


def wait_for_rows(run: Path, proc: subprocess.Popen, n: int, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while len(_raw_rows(run)) < n:
        check(proc.poll() is None, f"the run ended before {n} rows were written")
        check(time.monotonic() < deadline, f"{n} rows not written within {timeout} s")
        time.sleep(0.01)


def _raw_rows(run: Path) -> list[str]:
    with contextlib.suppress(OSError):
        return (run / "metrics.jsonl").read_text().splitlines()
    return []


def interrupted_then_resumed(sb: Sandbox, sig: int, rows: int | None = None, delay: float | None = None) -> Result:
    """The long run stopped by ``sig`` (after ``rows`` rows, or ``delay`` seconds), then --resume: the rows of
    the uninterrupted run, exactly."""
    out = sb.path("out")
    env = {**sb.env, "TORCHCLASSICS_CHECKPOINT_SECONDS": "0.25"}
    proc = sb.start("run", "regression", "--out", out, "-q", *LONG, env=env)
    if rows is not None:
        wait_for_rows(out, proc, rows)
    else:
        time.sleep(delay)
    proc.send_signal(sig)
    first = sb.finish(proc, timeout=30)
    if sig == signal.SIGINT:
        sb.step(first, "the interrupted run", codes=(130, 0))
        check(first.returncode == 0 or any("interrupted" in line for line in first.stderr.splitlines()),
              f"no line says the run was interrupted: {first.first_lines()}")
    check(not first.has_traceback(), f"the stopped run: {first.first_lines()}")
    result = sb.cli("run", "regression", "--out", out, "--resume", "-q", "--no-figures", env=env)
    if not out.exists():
        check(result.returncode == 2 and "does not exist" in result.stderr,
              "no run folder, and --resume did not say so")
        result.returncode = 0
        return result
    if result.returncode == 0:
        got, want = comparable_rows(out), sb.bases.rows("regression_long")
        check(got == want, f"{len(got)} rows after resume, {sum(a != b for a, b in zip(got, want))} differ "
              f"from an uninterrupted run's ({len(want)} rows)")
        left = [p.name for p in out.rglob(".torchclassics.*")]
        check(not left, f"leftovers of killed writes: {left}")
    return result


_RANDOM = random.Random(22)
for _i, _row in enumerate(sorted(_RANDOM.sample(range(50, 3900), 3))):
    CATALOGUE.append(Case("signals", f"sigkill-after-{_row}-rows-then-resume",
                          lambda sb, n=_row: interrupted_then_resumed(sb, signal.SIGKILL, rows=n), "ok"))
for _delay in (round(_RANDOM.uniform(0.5, 6.0), 2), round(_RANDOM.uniform(0.5, 6.0), 2)):
    CATALOGUE.append(Case("signals", f"sigkill-at-{_delay}s-then-resume",
                          lambda sb, d=_delay: interrupted_then_resumed(sb, signal.SIGKILL, delay=d), "ok"))
for _row in sorted(_RANDOM.sample(range(50, 3900), 3)):
    CATALOGUE.append(Case("signals", f"sigint-after-{_row}-rows-then-resume",
                          lambda sb, n=_row: interrupted_then_resumed(sb, signal.SIGINT, rows=n), "ok"))
CATALOGUE.append(Case("signals", "sigterm-after-1000-rows-then-resume",
                      lambda sb: interrupted_then_resumed(sb, signal.SIGTERM, rows=1000), "ok"))


@case("signals", "sigint-during-training-8-times", expect="ok",
      note="Ctrl-C at 8 seeded points of training: each run ends within 20 s, exit 130, one line")
def _sigint_six(sb: Sandbox) -> Result:
    env = {**sb.env, "TORCHCLASSICS_CHECKPOINT_SECONDS": "0.25"}
    points = sorted(random.Random(130).sample(range(20, 3950), 8))
    for k, rows in enumerate(points):
        out = sb.path(f"out{k}")
        proc = sb.start("run", "regression", "--out", out, "-q", *LONG, env=env)
        wait_for_rows(out, proc, rows)
        proc.send_signal(signal.SIGINT)
        result = sb.finish(proc, timeout=20)
        if result.timed_out:
            raise Problem(f"Ctrl-C after {rows} rows: hang (still running 20 s later): {hang_detail(result)}")
        sb.step(result, f"Ctrl-C after {rows} rows", codes=(130,))
        check(len(result.error_lines()) == 0 and "interrupted" in result.stderr, f"after {rows} rows: "
              f"{result.first_lines()}")
    result.returncode = 0  # 130, checked above, is this case's success
    return result


@case("signals", "sigint-during-start-up", expect="ok", note="Ctrl-C while torch is being imported")
def _sigint_startup(sb: Sandbox) -> Result:
    proc = sb.start("run", "regression", "--out", sb.path("out"), "-q", "--no-figures", "--set", "epochs=2")
    time.sleep(1.0)
    proc.send_signal(signal.SIGINT)
    result = sb.finish(proc)
    check(not result.has_traceback(), f"a traceback after Ctrl-C: {result.first_lines()}")
    check(result.returncode == 130, f"exit {result.returncode} after Ctrl-C (130 expected)")
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    check(len(lines) == 1 and "interrupted" in lines[0], f"not one line saying so: {result.first_lines()}")
    result.returncode = 0
    return result


@case("signals", "two-runs-claim-one-out-folder", expect="ok")
def _two_claims(sb: Sandbox) -> Result:
    out = sb.path("out")
    procs = [sb.start("run", "regression", "--out", out, "-q", "--no-figures", "--set", "epochs=4", "--set",
                      "gif_frames=2") for _ in range(2)]
    results = [sb.finish(p) for p in procs]
    codes = sorted(r.returncode for r in results)
    for result in results:
        sb.step(result, "one of the two runs", codes=(0, 2))
    check(codes == [0, 2], f"exit statuses {codes}: one should train, the other be refused")
    refused = next(r for r in results if r.returncode == 2)
    check(len(refused.error_lines()) == 1, "the refused run's error is not one line")
    check(comparable_rows(out) == sb.bases.rows("regression4"), "the rows of the winner differ from a lone run's")
    return next(r for r in results if r.returncode == 0)


@case("signals", "two-runs-into-one-root", expect="ok")
def _two_roots(sb: Sandbox) -> Result:
    procs = [sb.start("run", "regression", "-q", "--no-figures", "--set", "epochs=4", "--set", "gif_frames=2")
             for _ in range(2)]
    results = [sb.finish(p) for p in procs]
    for result in results:
        sb.step(result, "one of the two runs")
    folders = sorted((sb.runs / "regression").iterdir())
    check(len(folders) == 2, f"{len(folders)} run folders for two runs")
    for folder in folders:
        check(comparable_rows(folder) == sb.bases.rows("regression4"), f"{folder.name}: rows differ")
    return results[0]


# The quick subset (no training, under a second each once the shared regression run exists), which
# tests/test_hostile_sweep.py runs and asserts handled: one or more cases of each kind of harm.
QUICK = (
    "cli/set-unknown-key", "links/runs-root-link-loop", "links/report-output-is-a-link-to-a-users-file",
    "userdata/report-over-a-runs-params", "userdata/synthesize-users-own-results-md",
    "userdata/report-users-own-report-html", "userdata/init-over-users-params", "output/csv-formula-in-run-name",
    "output/csv-formula-in-param-values", "output/report-script-in-a-summary-value", "output/closed-stdout-pipe",
    "optimizers/optimizers-nadam-typo", "sizes/hidden-1e20", "sizes/x-range-overflow",
    "sizes/dqn-learn-start-beyond-memory", "params-files/--params-fifo", "params-files/--params-dev-zero",
    "params-files/--params-deeply-nested", "params-files/--params-duplicated-keys", "plugins/import-exits-0",
    "readers/report-400-digit-integer", "readers/synthesize-summary-contradicts-params",
    "readers/copied-run-folders-keep-their-names", "readers/leftover-temporary-figure-not-shown",
)
for _case in CATALOGUE:
    _case.fast = _case.id in QUICK


# ======================================================================================================
# Running the catalogue
# ======================================================================================================
def selected(only: list[str] | None, fast: bool) -> list[Case]:
    cases = [c for c in CATALOGUE if not fast or c.fast]
    if only:
        cases = [c for c in cases if any(text in c.id for text in only)]
    return cases


def check_catalogue() -> None:
    seen = collections.Counter(c.id for c in CATALOGUE)
    repeated = [name for name, n in seen.items() if n > 1]
    if repeated:
        raise SystemExit(f"cases named twice: {repeated}")
    unknown = sorted(set(QUICK) - set(seen))
    if unknown:
        raise SystemExit(f"QUICK names cases the catalogue lacks: {unknown}")


def sweep(cases: list[Case], jobs: int, keep: Path | None, on_done=None) -> list[Verdict]:
    cache = Path(tempfile.mkdtemp(prefix="hostile-bases-"))
    bases = Bases(cache)
    order = {c.id: k for k, c in enumerate(cases)}
    verdicts = []
    try:
        with concurrent.futures.ThreadPoolExecutor(max_workers=jobs) as pool:
            futures = [pool.submit(run_case, c, bases, keep) for c in cases]
            for future in concurrent.futures.as_completed(futures):
                verdict = future.result()
                verdicts.append(verdict)
                if on_done:
                    on_done(verdict, len(verdicts), len(cases))
    finally:
        make_removable(cache)
        shutil.rmtree(cache, ignore_errors=True)
    return sorted(verdicts, key=lambda v: order[v.name])


def mark(verdict: Verdict) -> str:
    return "skipped" if verdict.handled is None else ("handled" if verdict.handled else "**NOT handled**")


def tables(verdicts: list[Verdict]) -> str:
    lines = []
    by_category = collections.defaultdict(list)
    for verdict in verdicts:
        by_category[verdict.category].append(verdict)
    for category, group in by_category.items():
        tried = [v for v in group if v.handled is not None]
        lines += [f"### {category}: {sum(bool(v.handled) for v in tried)} of {len(tried)} handled", "",
                  "| case | verdict | outcome | s |", "| --- | --- | --- | ---: |"]
        for verdict in group:
            name = verdict.name.split("/", 1)[1]
            outcome = verdict.outcome.replace("|", "/")
            lines.append(f"| `{name}` | {mark(verdict)} | {outcome} | {verdict.seconds:.1f} |")
        lines.append("")
    return "\n".join(lines)


def overview(verdicts: list[Verdict]) -> str:
    """One line per category: tried, handled."""
    counts = collections.defaultdict(lambda: [0, 0])
    for verdict in verdicts:
        if verdict.handled is not None:
            counts[verdict.category][0] += 1
            counts[verdict.category][1] += bool(verdict.handled)
    lines = ["| category | tried | handled |", "| --- | ---: | ---: |"]
    lines += [f"| {category} | {tried} | {handled} |" for category, (tried, handled) in counts.items()]
    return "\n".join(lines)


def totals(verdicts: list[Verdict]) -> str:
    tried = [v for v in verdicts if v.handled is not None]
    skipped = len(verdicts) - len(tried)
    return (f"{len(tried)} cases tried, {sum(bool(v.handled) for v in tried)} handled"
            + (f" ({skipped} skipped)" if skipped else ""))


def not_handled(verdicts: list[Verdict]) -> str:
    lines = [f"- `{v.name}`: {v.outcome}" + (f" — {v.detail}" if v.detail else "")
             for v in verdicts if v.handled is False]
    return "\n".join(lines) if lines else "(none)"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", action="append", metavar="SUBSTRING",
                        help="only the cases whose name (category/case) holds this text (repeatable)")
    parser.add_argument("--list", action="store_true", help="list the cases and exit")
    parser.add_argument("--fast", action="store_true", help="only the quick cases (no training)")
    parser.add_argument("--jobs", type=int, default=2, help="cases at a time (default 2)")
    parser.add_argument("--json", type=Path, help="write every verdict to this file")
    parser.add_argument("--keep", type=Path, help="copy each case's folder here")
    args = parser.parse_args(argv)
    check_catalogue()
    cases = selected(args.only, args.fast)
    if args.list:
        for c in cases:
            print(f"{c.id:<62} {c.expect:<8} {'quick' if c.fast else '':<6}{c.note}".rstrip())
        print(f"{len(cases)} cases", file=sys.stderr)
        return 0
    started = time.monotonic()

    def progress(verdict: Verdict, done: int, total: int) -> None:
        print(f"[{done}/{total}] {mark(verdict):<16} {verdict.name} ({verdict.seconds:.1f} s): {verdict.outcome}",
              file=sys.stderr, flush=True)

    verdicts = sweep(cases, args.jobs, args.keep, progress)
    print(f"# hostile inputs, {datetime.date.today().isoformat()}, {time.monotonic() - started:.0f} s, "
          f"jobs {args.jobs}\n")
    print(overview(verdicts) + "\n")
    print(f"**{totals(verdicts)}**\n")
    print(tables(verdicts))
    print("Not handled:\n")
    print(not_handled(verdicts))
    if args.json:
        args.json.write_text(json.dumps([v.__dict__ for v in verdicts], indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
