"""Workers: the trials of one command, run in this process or by spawned worker processes that
share the study's storage; what happens when one dies; and which trials died with their process.

The command owes the study a number of trials. Each worker asks the command for the next one before
it starts it, so a worker that dies (SIGKILL, out of memory) leaves its unstarted trials to the
others, and its running trial, failed, is given back too: the asked number of trials is reached.
A worker dies with the command that started it (a parent-death signal on Linux, a watchdog thread
everywhere), its running trial interrupted as after Ctrl-C (pruned, marked interrupted, queued again).
"""
from __future__ import annotations

import contextlib
import copy
import ctypes
import math
import multiprocessing
import os
import signal
import socket
import sys
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from multiprocessing.connection import wait

from ..core import messages
from ..core.errors import UserError
from . import samplers
from .storage import open_storage
from .trials import MetricMissing, Plan, make_objective, quiet_optuna, raise_if_interrupted

PARENT_CHECK_S = 0.5   # how often a worker's watchdog looks for its parent
STOP_WAIT_S = 30       # after Ctrl-C, how long the command waits for each worker to record its trial
EXIT_GRACE_S = 10      # a worker whose parent died ends by itself; after this long it is ended outright
SAME_START_S = 1.0     # two start times closer than this are one process (the clock's ticks are 10 ms)


# -- liveness --------------------------------------------------------------------------------------
def process_start(pid: int) -> float | None:
    """When ``pid`` started (seconds since the epoch), to tell a process from a later one that got its
    id; None when there is no such process (or only its zombie)."""
    import psutil

    try:
        process = psutil.Process(pid)
        if process.status() == psutil.STATUS_ZOMBIE:
            return None
        return process.create_time()
    except (psutil.NoSuchProcess, psutil.ZombieProcess):
        return None
    except psutil.AccessDenied:  # someone else's process (some systems hide its start): alive, age unknown
        return float("nan")


def _as_time(started) -> float | None:
    """A recorded start: seconds since the epoch, or (release 0.1.0) the kernel's clock ticks since boot."""
    if isinstance(started, str):  # /proc/<pid>/stat's field 22, written by the release before psutil
        import psutil

        try:
            return psutil.boot_time() + int(started) / os.sysconf("SC_CLK_TCK")
        except (ValueError, OSError, AttributeError):
            return None
    return float(started) if isinstance(started, (int, float)) and not isinstance(started, bool) else None


def process_alive(pid: int, started=None) -> bool:
    """Whether ``pid`` runs, and is the process that started at ``started`` (when given)."""
    now = process_start(pid)
    if now is None:
        return False
    recorded = _as_time(started)
    if recorded is None or math.isnan(now):  # nothing to compare (or not allowed to see): it runs
        return True
    return abs(now - recorded) < SAME_START_S


def owner() -> dict:
    """Who runs a trial: kept with it, so that a later command on this host can tell it died."""
    return {"host": socket.gethostname(), "pid": os.getpid(), "pid_start": process_start(os.getpid())}


def _retry_of(storage):
    """The storage's retry of a trial failed for silence (RDB with heartbeats), or None (journal)."""
    getter = getattr(storage, "get_heartbeat_stale_trial_callback", None) or \
        getattr(storage, "get_failed_trial_callback", None)
    return getter() if getter is not None else None


def fail_dead_trials(study, pids: set[int] | None = None) -> list[int]:
    """Mark FAIL the RUNNING trials whose process on this machine has ended (SIGKILL, power cut).

    Journal storage has no heartbeat, so a killed worker would leave its trial RUNNING
    for ever; each trial records its host and process, and any later command on that
    host finishes the job. On an RDB storage Optuna's heartbeat does it on every machine;
    there a host name proves too little (two machines or containers may share one), so
    only ``pids`` are checked: the workers this command started and saw die. A failed
    trial is queued again as Optuna's heartbeat would (RDB only).
    """
    from optuna.trial import TrialState

    storage, host, failed = study._storage, socket.gethostname(), []
    retry = _retry_of(storage)
    for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        attrs = trial.user_attrs
        if attrs.get("host") != host or not isinstance(attrs.get("pid"), int):
            continue
        if (pids is not None and attrs["pid"] not in pids) or process_alive(attrs["pid"], attrs.get("pid_start")):
            continue
        try:
            storage.set_trial_system_attr(trial._trial_id, "fail_reason",
                                          f"its process {attrs['pid']} on {host} ended mid-trial")
            storage.set_trial_state_values(trial._trial_id, TrialState.FAIL)
        except Exception:  # it finished meanwhile: nothing to do then
            continue
        failed.append(trial.number)
        if retry is not None:
            retry(study, copy.deepcopy(storage.get_trial(trial._trial_id)))
    return failed


def fail_silent_trials(study) -> list[int]:
    """Optuna's heartbeat check (RDB storage): trials silent for the grace period are failed and
    queued again. Optuna runs it before each trial; run here too, to say so."""
    import optuna
    from optuna.trial import TrialState

    running = {t.number for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))}
    if not running:
        return []
    optuna.storages.fail_stale_trials(study)
    return sorted(t.number for t in study.get_trials(deepcopy=False, states=(TrialState.FAIL,)) if t.number in running)


# -- one worker's trials -------------------------------------------------------------------------------
def run_trials(plan: Plan, next_trial: Callable[[], bool]) -> None:
    """Trials one after another in this process, while ``next_trial()`` says one more is owed."""
    import optuna

    stamp = owner()
    with quiet_optuna():
        study = optuna.load_study(study_name=plan.study, storage=open_storage(plan.storage),
                                  sampler=samplers.make_sampler(plan.sampler, plan.grid),
                                  pruner=samplers.make_pruner(plan.pruner, plan.warmup))
        objective = make_objective(plan, stamp)
        while next_trial():
            # A UserError inside one trial (e.g. training diverged at a high lr) fails that trial only;
            # an interrupted one is recorded first, then ends the loop (a KeyboardInterrupt).
            study.optimize(objective, n_trials=1, catch=(UserError,), callbacks=[raise_if_interrupted])


def countdown(n: int) -> Callable[[], bool]:
    """``next_trial`` for one worker alone: ``n`` trials."""
    left = iter(range(n))
    return lambda: next(left, None) is not None


class ParentGone(KeyboardInterrupt):
    """SIGTERM: the search command that started this worker ended (or stops it): stop as after Ctrl-C,
    the running trial interrupted."""


STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


def _stop_once(stopped: type[KeyboardInterrupt], why: str):
    """A handler of SIGINT and SIGTERM that raises ``stopped`` once, then ignores both: a second Ctrl-C,
    or the kernel's and the watchdog's SIGTERM after the first, must not interrupt the first one's
    cleanup (the running trial being recorded as interrupted rather than failed). If the first is lost
    (raised where Python cannot propagate it), a worker's watchdog ends it outright."""

    def handler(signum, frame) -> None:
        for each in STOP_SIGNALS:
            # A Python no-op, not SIG_IGN: a signal already pending when its handler became SIG_IGN is
            # raised by Python as "OSError: Signal 15 ignored due to race condition".
            signal.signal(each, _ignored)
        raise stopped(why if signum == signal.SIGTERM else "interrupted")

    return handler


def _ignored(signum, frame) -> None:
    """A stop signal after the first: the first one's cleanup goes on."""


@contextlib.contextmanager
def stopped_once():
    """In this block (the search command's own process, main thread only), Ctrl-C and SIGTERM stop the
    search once, as a KeyboardInterrupt; the handlers before are put back after it."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    before = {each: signal.getsignal(each) for each in STOP_SIGNALS}
    handler = _stop_once(KeyboardInterrupt, "stopped by SIGTERM")
    for each in STOP_SIGNALS:
        signal.signal(each, handler)
    try:
        yield
    finally:
        for each, old in before.items():
            signal.signal(each, old if old is not None else signal.SIG_DFL)


def _quiet_about_parent(hook):
    """A ParentGone raised where Python cannot propagate it (inside an import lock's callback) is not a
    bug to print: the watchdog ends the worker anyway."""

    def unraisable(info) -> None:
        if not isinstance(info.exc_value, ParentGone):
            hook(info)

    return unraisable


def die_with_parent(parent_pid: int, parent_start) -> None:
    """End this worker when its parent ends, even by SIGKILL: the kernel sends SIGTERM (Linux's
    parent-death signal), and a watchdog thread does the same on any system. SIGTERM ends the running
    trial as Ctrl-C would (interrupted); the watchdog ends the process outright if that hangs."""
    handler = _stop_once(ParentGone, "the search command that started this worker ended or stopped it")
    for each in STOP_SIGNALS:  # SIGINT too: a worker started from a background job inherits it ignored
        signal.signal(each, handler)
    sys.unraisablehook = _quiet_about_parent(sys.unraisablehook)
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError, AttributeError):
            pr_set_pdeathsig = 1
            ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, int(signal.SIGTERM), 0, 0, 0)
    threading.Thread(target=_watch_parent, args=(parent_pid, parent_start), name="parent-watchdog",
                     daemon=True).start()


def _watch_parent(parent_pid: int, parent_start) -> None:
    while process_alive(parent_pid, parent_start):
        time.sleep(PARENT_CHECK_S)
    with contextlib.suppress(OSError):
        os.kill(os.getpid(), signal.SIGTERM)
    time.sleep(EXIT_GRACE_S)
    os._exit(1)


def _ask_parent(conn) -> bool:
    """One more trial? The parent answers when it knows (it may wait for a busy worker to finish or die)."""
    try:
        conn.send("next")
        return bool(conn.recv())
    except (EOFError, OSError):  # the parent is gone
        return False


def _worker_main(plan: Plan, conn, parent_pid: int, parent_start) -> None:
    """Entry point of a spawned worker: run trials while the parent hands them out, then send back
    ("end", None) or ("end", (kind, message))."""
    die_with_parent(parent_pid, parent_start)
    messages.console()
    problem = None
    try:
        run_trials(plan, lambda: _ask_parent(conn))
    except MetricMissing as err:
        problem = ("user", str(err.user_error()))
    except UserError as err:
        problem = ("user", str(err))
    except KeyboardInterrupt as err:  # its running trial is recorded interrupted and queued again
        problem = ("interrupted", str(err) or "interrupted")
    except Exception:  # a bug: keep the traceback for the report
        problem = ("bug", traceback.format_exc())
    with contextlib.suppress(OSError, ValueError):
        conn.send(("end", problem))
        conn.close()


# -- the command's side ------------------------------------------------------------------------------
@dataclass
class WorkerProblems:
    errors: list = field(default_factory=list)   # (kind, message) a worker sent back: "user" mistakes, "bug" tracebacks
    deaths: list = field(default_factory=list)   # workers that ended without a word (killed): their trials failed
    dead_pids: set = field(default_factory=set)


class Dispatcher:
    """The trials owed, handed out one at a time. A worker asking while none is left but another is
    still busy waits for that one: if it dies, its trial is owed again."""

    def __init__(self, owed: int):
        self.owed = owed
        self.busy: set[int] = set()
        self.waiting: set[int] = set()

    def ask(self, worker: int) -> bool | None:
        """True: run one; False: nothing more; None: wait for an answer."""
        self.busy.discard(worker)  # asking for the next means the last one ended
        if self.owed > 0:
            self.owed -= 1
            self.busy.add(worker)
            return True
        if self.busy:
            self.waiting.add(worker)
            return None
        return False

    def lost(self, worker: int) -> None:
        """``worker`` died: the trial it was running is owed again."""
        self.waiting.discard(worker)
        if worker in self.busy:
            self.busy.discard(worker)
            self.owed += 1

    def stop(self, worker: int) -> None:
        """``worker`` reported a mistake that every trial would repeat: hand out nothing more."""
        self.busy.discard(worker)
        self.waiting.discard(worker)
        self.owed = 0

    def answers(self) -> dict[int, bool]:
        """The waiting workers that can be answered now."""
        answered = {}
        for worker in sorted(self.waiting):
            if self.owed > 0:
                self.owed -= 1
                self.busy.add(worker)
                answered[worker] = True
            elif not self.busy:
                answered[worker] = False
        self.waiting -= answered.keys()
        return answered


@dataclass
class Worker:
    process: multiprocessing.Process
    conn: object
    problem: tuple | None = None
    said_end: bool = False


def run_workers(plan: Plan, trials: int, workers: int, study) -> WorkerProblems:
    """``trials`` trials, ``workers`` spawned processes at a time, sharing the storage. A worker that
    dies has its running trial failed at once (and, on a database, queued again) and given back."""
    ctx = multiprocessing.get_context("spawn")  # fork would copy torch's threads and locks
    me = (os.getpid(), process_start(os.getpid()))
    live: dict[int, Worker] = {}
    for i in range(workers):
        conn, child = ctx.Pipe(duplex=True)
        process = ctx.Process(target=_worker_main, args=(plan, child, *me), name=f"search-worker-{i}")
        process.start()
        child.close()
        live[i] = Worker(process, conn)
    dispatcher, problems = Dispatcher(trials), WorkerProblems()
    try:
        while live:
            wait([w.conn for w in live.values()] + [w.process.sentinel for w in live.values()], timeout=5)
            for i, worker in list(live.items()):
                _serve(i, worker, dispatcher)
                if not worker.process.is_alive():
                    worker.process.join()
                    _serve(i, worker, dispatcher)  # its last word may have come after the first look
                    del live[i]
                    _ended(i, worker, dispatcher, problems, study)
            for i, answer in dispatcher.answers().items():
                with contextlib.suppress(OSError):
                    live[i].conn.send(answer)
    except KeyboardInterrupt:
        stop_workers(live.values())
        raise
    if dispatcher.owed and problems.deaths:
        problems.deaths.append(f"{dispatcher.owed} trial(s) were not run: no worker was left to run them")
    return problems


def stop_workers(workers) -> None:
    """Ctrl-C (or SIGTERM) stopped the command: each worker is told (SIGTERM: a terminal's Ctrl-C reached
    it already, ``kill -INT`` of the command did not; it acts on the first only), and given time to record
    its running trial as interrupted; one that does not end is killed (the command records its trial
    interrupted then: search.settle_interrupted)."""
    workers = list(workers)
    for worker in workers:
        with contextlib.suppress(OSError, ValueError):
            worker.process.terminate()
    deadline = time.monotonic() + STOP_WAIT_S
    for worker in workers:
        worker.process.join(timeout=max(0.0, deadline - time.monotonic()))
        if worker.process.is_alive():
            worker.process.kill()
            worker.process.join()


def _serve(i: int, worker: Worker, dispatcher: Dispatcher) -> None:
    """Every message ``worker`` has sent: a request for a trial, or its last word."""
    while True:
        try:
            if not worker.conn.poll():
                return
            message = worker.conn.recv()
        except (EOFError, OSError):
            return
        if message == "next":
            answer = dispatcher.ask(i)
            if answer is not None:
                with contextlib.suppress(OSError):
                    worker.conn.send(answer)
        elif isinstance(message, tuple) and message[0] == "end":
            worker.said_end, worker.problem = True, message[1]
            if worker.problem is not None and worker.problem[0] == "interrupted":
                dispatcher.lost(i)  # its trial was queued again: the other workers run it
            elif worker.problem is not None:
                dispatcher.stop(i)


def _ended(i: int, worker: Worker, dispatcher: Dispatcher, problems: WorkerProblems, study) -> None:
    process = worker.process
    if worker.problem is not None and worker.problem[0] == "interrupted":
        problems.deaths.append(f"{process.name} (pid {process.pid}) was stopped ({worker.problem[1]}); its running "
                               "trial is queued again, and its trials are left to the other workers")
        return
    if worker.problem is not None:
        problems.errors.append(worker.problem)
    if worker.said_end and process.exitcode == 0:
        return
    code = process.exitcode
    ended = f"was killed by signal {-code}" if code is not None and code < 0 else f"exited with status {code}"
    dispatcher.lost(i)
    problems.dead_pids.add(process.pid)
    with quiet_optuna(), contextlib.suppress(Exception):  # the next command fails it otherwise
        fail_dead_trials(study, {process.pid})
    problems.deaths.append(f"{process.name} (pid {process.pid}) {ended}; its running trial is marked failed, "
                           "and its trials are left to the other workers")
