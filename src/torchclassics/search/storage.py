"""Where a study lives: an Optuna journal file (default ``<runs root>/studies/<study>/journal.log``,
Optuna's advice over SQLite for parallel workers on one machine) or any RDB URL
(``postgresql://...``) for workers on several machines; and where its files (best_params.json,
figures) go, apart from any other study of the same name kept elsewhere.

Reading comes first and writes nothing: a journal that does not exist yet is not created, and a
file that is not an Optuna journal is refused before Optuna opens it (Optuna would append to it).
"""
from __future__ import annotations

import hashlib
import json
import os
import re
import warnings
from pathlib import Path

from ..core.errors import UserError
from ..core.extras import install_hint
from ..rundir import layout

# On an RDB storage a trial silent (no heartbeat) for the grace period is failed by the next
# worker that starts a trial, on any machine, and queued again; $TORCHCLASSICS_SEARCH_GRACE_S
# sets it (tests lower it), heartbeats come four times per grace period.
GRACE_ENV, GRACE_S = "TORCHCLASSICS_SEARCH_GRACE_S", 120
RETRIES = 2           # a trial whose worker died this many times more is left failed: the trial is the problem
CREATE_ATTEMPTS = 5   # tries at opening a fresh database whose tables another machine is creating
JOURNAL_HEAD_BYTES = 1 << 20  # the first line of a journal is one record: a study's creation


def is_url(storage: str) -> bool:
    return "://" in storage


def default_journal(runs_root: Path, study: str) -> Path:
    return layout.study_folder(runs_root, study) / layout.JOURNAL


def study_files_folder(runs_root: Path, study: str, storage: str) -> Path:
    """Where best_params.json and the figures of study ``study`` kept in ``storage`` go.

    The default journal's own folder, ``<runs root>/studies/<study>/``; a study kept anywhere else
    (another journal file, a database) gets ``<runs root>/studies/<study>@<storage>-<hash>/``, so two
    studies of one name in two storages never share (or overwrite) each other's files. The hash is
    of the journal's absolute path, or of the URL without its password: the same on every machine."""
    default = layout.study_folder(runs_root, study)
    if not is_url(storage) and Path(storage).resolve() == (default / layout.JOURNAL).resolve():
        return default
    return default.with_name(f"{study}@{storage_label(storage)}")


def storage_label(storage: str) -> str:
    """``postgresql-1a2b3c4d``, ``sqlite-...``, or a journal's file stem with the hash of its path."""
    if is_url(storage):
        kind, identity = storage.partition("://")[0].split("+")[0], shown_storage(storage)
    else:
        kind, identity = Path(storage).stem, str(Path(storage).resolve())
    kind = re.sub(r"[^A-Za-z0-9._-]+", "_", kind).strip("._-") or "journal"
    return f"{kind}-{hashlib.sha256(identity.encode()).hexdigest()[:8]}"


# -- checks that write nothing -----------------------------------------------------------------
def check_journal_file(storage: str) -> None:
    """A journal path must be a new file, or an Optuna journal: a user's own file is never appended to."""
    path = Path(storage)
    if not os.path.lexists(path):
        if path.parent.exists() and not path.parent.is_dir():
            raise UserError.for_option("storage", storage, f"{path.parent} is not a folder.")
        return
    if path.is_dir():
        raise UserError.for_option("storage", storage, f"a folder; give a journal file (e.g. {path / layout.JOURNAL}) "
                                                       "or a database URL.")
    if not path.is_file():
        raise UserError.for_option("storage", storage, "not a regular file; give an Optuna journal file, a new path, "
                                                       "or a database URL.")
    if not _looks_like_journal(path):
        raise UserError.for_option("storage", storage, "not an Optuna journal (its first line is not a journal "
                                                       "record); it was left as it is. Give a journal file, a new "
                                                       "path, or a database URL (sqlite:///..., postgresql://...).")


def _looks_like_journal(path: Path) -> bool:
    """Empty, or a first line that is a JSON record with Optuna's ``op_code`` and ``worker_id``."""
    with open(path, "rb") as handle:
        head = handle.read(JOURNAL_HEAD_BYTES)
    if not head:
        return True
    line, newline, _ = head.partition(b"\n")
    try:
        record = json.loads(line)
    except (ValueError, RecursionError):
        # The first write of a killed worker, cut short: Optuna itself skips a torn last line.
        return not newline and line.startswith(b'{"op_code":')
    return isinstance(record, dict) and isinstance(record.get("op_code"), int) and "worker_id" in record


def grace_period() -> int:
    """Seconds without a heartbeat after which a trial on an RDB storage counts as dead."""
    text = os.environ.get(GRACE_ENV, "").strip()
    if not text:
        return GRACE_S
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 2:
        raise UserError(f"{GRACE_ENV}={text}: expected a whole number of seconds, at least 2 (default {GRACE_S}).")
    return value


# -- opening ------------------------------------------------------------------------------------
def _retry_callback() -> dict:
    """Optuna's retry of a trial failed for silence, as RDBStorage's keyword (renamed in Optuna 5)."""
    from optuna import storages

    if hasattr(storages, "RetryHeartbeatStaleTrialCallback"):
        return {"heartbeat_stale_trial_callback": storages.RetryHeartbeatStaleTrialCallback(max_retry=RETRIES)}
    return {"failed_trial_callback": storages.RetryFailedTrialCallback(max_retry=RETRIES)}


def with_installed_driver(url: str) -> str:
    """``postgresql://`` with the driver that is installed: SQLAlchemy 2.0 reads it with psycopg2,
    2.1 with psycopg 3, and either serves Optuna."""
    import importlib.util

    scheme, _, rest = url.partition("://")
    if scheme != "postgresql":
        return url
    for driver in ("psycopg2", "psycopg"):
        if importlib.util.find_spec(driver):
            return f"postgresql+{driver}://{rest}"
    return url  # no driver: SQLAlchemy's ImportError says so, below


def _rdb_storage(url: str, attempts: int = CREATE_ATTEMPTS, **kwargs):
    """Optuna's RDBStorage; tried again when another machine was creating the tables at the same
    moment (PostgreSQL's CREATE TABLE is not safe to race: one of two fresh workers fails with a
    duplicate key; once the tables exist, opening them is). The random wait keeps the two out of step."""
    import optuna
    from sqlalchemy.exc import IntegrityError, ProgrammingError
    from tenacity import Retrying, retry_if_exception_type, stop_after_attempt, wait_random

    for attempt in Retrying(retry=retry_if_exception_type((IntegrityError, ProgrammingError)),
                            stop=stop_after_attempt(attempts), wait=wait_random(0.2, 1.2), reraise=True):
        with attempt:
            return optuna.storages.RDBStorage(url, **kwargs)


def open_storage(storage: str, create: bool = True):
    """An Optuna storage: an RDB URL (with heartbeats, so a killed trial ends FAILED and is run
    again), or a journal file; None for a journal that does not exist yet when not ``create``."""
    import optuna

    if not is_url(storage):
        check_journal_file(storage)
        if not create and not os.path.lexists(storage):
            return None
        return _journal_storage(storage)
    grace = grace_period()
    try:
        with warnings.catch_warnings():  # heartbeat is "experimental" in Optuna but long in use
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            return _rdb_storage(with_installed_driver(storage), heartbeat_interval=max(1, grace // 4),
                                grace_period=grace, **_retry_callback())
    except ImportError as err:
        raise UserError.for_option("storage", shown_storage(storage),
                                   f"the database driver is missing ({err}). For PostgreSQL: "
                                   f"{install_hint('postgres')}.") from None
    except Exception as err:  # sqlalchemy's errors: bad URL, unreachable server, refused login
        raise UserError.for_option("storage", shown_storage(storage),
                                   f"cannot open the study database: {str(err).splitlines()[0]}") from None


def _journal_storage(storage: str):
    from optuna.storages.journal import JournalFileBackend, JournalFileOpenLock, JournalStorage

    # Absolute: Optuna's lock is a symlink to this path, and it can only tell a stale lock
    # (left by a killed worker) when that link resolves; a relative one never does.
    path = Path(storage).resolve()
    path.parent.mkdir(parents=True, exist_ok=True)
    # Symlink locks need a privilege on Windows; Optuna advises the open-file lock there.
    lock = JournalFileOpenLock(str(path)) if os.name == "nt" else None
    try:
        return JournalStorage(JournalFileBackend(str(path), lock_obj=lock))
    except (ValueError, KeyError, TypeError) as err:  # a journal damaged in its middle
        raise UserError.for_option("storage", storage,
                                   f"cannot read the journal ({err}); it was left as it is.") from None


def find_study(storage, name: str):
    """The study ``name`` in ``storage`` (read only), or None when there is none (or no storage yet)."""
    import optuna

    if storage is None:
        return None
    try:
        storage.get_study_id_from_name(name)
    except KeyError:
        return None
    return optuna.load_study(study_name=name, storage=storage)


def shown_storage(storage: str) -> str:
    """The storage for printing: a URL without its password."""
    if not is_url(storage):
        return storage
    try:
        from sqlalchemy.engine import make_url

        return make_url(storage).render_as_string(hide_password=True)
    except Exception:  # not a URL sqlalchemy understands; nothing secret to hide then
        return re.sub(r"://([^:/@]+):[^@]*@", r"://\1:***@", storage)
