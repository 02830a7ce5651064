"""The writing process's side of a run directory.

Nothing is written until every check has passed (:meth:`RunWriter.begin`), so a command that fails
before training leaves the folder as it was. The writer holds the folder's lock from
:meth:`~RunWriter.claim` to :meth:`~RunWriter.close`; every file is replaced atomically or, for
the two that grow, appended through a descriptor that refuses a symbolic link; the folders it
writes into must be real folders of the run, not links out of it.
"""
from __future__ import annotations

import contextlib
import json
import logging
import os
from pathlib import Path

from ..core import files, messages
from ..core.errors import UserError
from . import layout
from .lock import RunLock
from .reader import RunFolder
from .records import Summary, TrialMarker


class AppendOnlyLog(logging.FileHandler):
    """train.log, opened without following a symbolic link. A line that cannot be written (a full disk)
    is dropped without logging's own traceback: the run's next write of its files reports it."""

    def _open(self):
        return files.open_append(self.baseFilename)

    def handleError(self, record) -> None:
        pass


class RunWriter:
    """One run's folder, written by one process (under DDP rank 0; the others get ``writer=False``
    and write nothing)."""

    def __init__(self, path: Path, writer: bool = True):
        self.path = Path(path)
        self.folder = RunFolder(self.path)
        self.writer = writer
        self.lock = RunLock(self.path)
        self.planned: dict = {}  # the params.json that begin() writes
        self.started = False
        self.created = False     # this process made the folder (it goes again if the run never starts)
        self.log = logging.getLogger(f"torchclassics.run.{id(self)}")
        self.log.propagate = False
        self.log.setLevel(logging.INFO)

    @property
    def checkpoints(self) -> Path:
        return self.path / layout.CHECKPOINTS

    @property
    def figures(self) -> Path:
        return self.path / layout.FIGURES

    def checkpoint_folder(self, tag: str = "") -> Path:
        return layout.checkpoint_folder(self.path, tag)

    # -- before anything is written ---------------------------------------------------------------------
    def claim(self, resume: bool) -> None:
        """Lock the folder for this process (creating it for a new run) and check it may be used: a new
        run needs an empty or new folder; a resumed one a run to continue (or one killed before it wrote
        anything)."""
        if not self.writer:
            return  # under DDP rank 0 checks and writes
        if resume and not self.path.is_dir():
            raise UserError.for_option("resume", True,
                                       f"{self.path} does not exist; run without {{resume}} to start it.")
        if self.path.exists() and not self.path.is_dir():
            raise UserError.for_option("out", str(self.path), "is a file; give a folder for the run.")
        if not self.path.exists():
            self.path.mkdir(parents=True)
            self.created = True
        try:
            self.lock.acquire()
        except BaseException:  # in use, or a full disk: a folder made for this run goes again
            if self.created:
                with contextlib.suppress(OSError):
                    self.path.rmdir()
            raise
        try:
            self.check_contents(resume)
            self.check_links()
        except BaseException:
            self.lock.release(remove=self.lock.made_file)
            raise

    def claim_finished(self) -> None:
        """Lock a finished run to write into it again (its figures): nothing else of it changes."""
        if not self.folder.is_run:
            raise UserError(f"{self.path} is not a run directory (no {layout.PARAMS}).")
        self.lock.acquire()

    def check_links(self) -> None:
        """The files a run appends to and the folders it writes into must be its own, not links planted
        in it: refused before anything is written (an atomically replaced file replaces a link itself)."""
        for name in (layout.METRICS, layout.LOG):
            if (self.path / name).is_symlink():
                raise UserError(f"{self.path / name} is a symbolic link; a run writes only its own files. Remove "
                                "it, then try again.")
        for name in layout.RUN_FOLDERS:
            if not files.real_folder(self.path / name):
                raise UserError(f"{self.path / name} is a symbolic link or a file; a run writes only inside its own "
                                "folder. Remove it, then try again.")

    def check_contents(self, resume: bool) -> None:
        if self.folder.is_run and not resume:
            raise UserError.for_option("out", str(self.path), "already holds a run; choose a new folder, or add "
                                       "{resume} to continue it.")
        if not self.folder.is_run and self.holds_files():
            raise UserError.for_option("out", str(self.path), "not empty and not a run directory; give a new or empty "
                                       "folder (nothing in it was touched).")

    def holds_files(self) -> bool:
        """Anything but the lock, empty folders and the temporary files of our own killed writes."""
        for parent, folders, names in os.walk(self.path):
            for name in names:
                path = Path(parent) / name
                if path != self.lock.path and not files.is_leftover(path):
                    return True
            if any(Path(parent, f).is_symlink() for f in folders):
                return True
        return False

    def saved_params(self) -> dict | None:
        """The run's own params.json; None when a run was killed before writing it (it restarts)."""
        return self.folder.params() if self.folder.is_run else None

    def params(self) -> dict:
        return self.folder.params()

    # -- the first write -----------------------------------------------------------------------------------
    def begin(self) -> None:
        """Every check has passed: clean what our killed writes left, write params.json (``self.planned``:
        when new or changed, e.g. a resume with more epochs), open train.log. Once, by the writer."""
        if not self.writer or self.started:
            return
        self.started = True
        files.remove_leftovers(self.path)
        self.real_folder(self.figures)
        self.real_folder(self.checkpoints)
        if not self.folder.is_run or self.params() != self.planned:
            files.write_json(self.path / layout.PARAMS, self.planned)
        handler = AppendOnlyLog(self.path / layout.LOG, encoding="utf-8", delay=False)
        handler.setFormatter(logging.Formatter("%(asctime)s %(message)s"))
        self.log.addHandler(handler)

    def real_folder(self, path: Path) -> Path:
        """``path`` inside the run, made if missing; a UserError if it is a link or a file: writing through
        it would write outside the run."""
        if not files.real_folder(path):
            raise UserError(f"{path} is {'a symbolic link' if path.is_symlink() else 'not a folder'}; a run writes "
                            "only inside its own folder. Remove it, then try again.")
        path.mkdir(parents=True, exist_ok=True)
        return path

    # -- while training --------------------------------------------------------------------------------
    def info(self, message: str, echo: bool = False) -> None:
        """A line in train.log; ``echo`` shows it on stderr too."""
        if self.writer:
            self.log.info(message)
            if echo:
                messages.progress(message)

    def append_row(self, row: dict) -> None:
        if not self.writer:
            return
        path = self.path / layout.METRICS
        try:
            with files.open_append(path) as handle:
                handle.write(json.dumps(row) + "\n")
        except OSError as err:  # a full disk says so without a file name: add it
            raise OSError(err.errno, err.strerror or str(err), str(path)) from None

    def resume_rows(self, tag: str, history: list[dict]) -> None:
        """On resume, the rows of model ``tag`` become exactly the checkpoint's ``history``: rows a killed
        run logged after its checkpoint go; rows lost from the file (deleted, cut short) come back. The
        other models' rows stay where they are."""
        if not self.writer:
            return
        rows, _ = self.folder.rows()
        rewritten, placed = [], False
        for row in rows:  # the checkpoint's rows where the model's rows began, the others as they were
            if row.get("tag", "") != tag:
                rewritten.append(row)
            elif not placed:
                rewritten.extend(history)
                placed = True
        if not placed:
            rewritten.extend(history)
        text = "".join(json.dumps(row) + "\n" for row in rewritten)
        path = self.path / layout.METRICS
        current = path.read_text(encoding="utf-8", errors="replace") if path.is_file() else None
        if text != current:
            files.write_text(path, text)

    def rows(self) -> list[dict]:
        return self.folder.rows()[0]

    def write_summary(self, summary: Summary) -> None:
        if self.writer:
            files.write_json(self.path / layout.SUMMARY, summary.to_json())

    def close(self) -> None:
        """Release the folder. A run that failed before its first write leaves it as it found it: its lock
        file goes (removed while still held), and a folder it made goes too."""
        for handler in list(self.log.handlers):
            handler.close()
            self.log.removeHandler(handler)
        self.lock.release(remove=not self.started and self.lock.made_file)
        if not self.started and self.created:
            with contextlib.suppress(OSError):  # not empty after all: leave it
                self.path.rmdir()


def write_trial_marker(run_path: Path, marker: TrialMarker) -> None:
    """trial.json: which study and trial, and how it ended (pruned and failed trials have no summary)."""
    if Path(run_path).is_dir():
        files.write_json(Path(run_path) / layout.TRIAL, marker.to_json())
