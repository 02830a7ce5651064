"""One writer per run directory: ``<run>/.lock``, held with filelock's ``FileLock`` (an ``flock``
the kernel drops when the process ends, SIGKILL included, so a dead writer's lock is simply
taken over). The holder writes who it is into the file, for the message a second writer gets.

A ``.lock`` that is a symbolic link is refused before anything opens it (filelock opens with
``O_NOFOLLOW`` too), so a link planted in a run folder never gets the file it points to truncated.
"""
from __future__ import annotations

import json
import os
import socket
import stat
import sys
import time
from pathlib import Path

from filelock import FileLock, Timeout

from ..core.errors import UserError
from ..core.files import NOFOLLOW
from .layout import LOCK


class RunLock:
    def __init__(self, folder: Path):
        self.path = Path(folder) / LOCK
        self.lock: FileLock | None = None
        self.made_file = False

    def acquire(self) -> None:
        self._refuse_a_link()
        self.made_file = not os.path.lexists(self.path)
        lock = FileLock(str(self.path), timeout=0, is_singleton=False)
        try:
            lock.acquire()
        except Timeout:
            raise UserError(f"{self.path.parent} is in use by {self.holder()}: one process writes a run directory at "
                            "a time. Wait for it to finish (or stop it), then try again.") from None
        except OSError as err:  # a full disk, a read-only folder: say where, leave no empty lock behind
            self._remove_if_made()
            raise OSError(err.errno, err.strerror or str(err), str(self.path)) from None
        self.lock = lock
        try:
            self._write_holder()
        except OSError as err:
            self.release(remove=self.made_file)
            raise OSError(err.errno, err.strerror or str(err), str(self.path)) from None

    def _remove_if_made(self) -> None:
        if self.made_file and os.path.lexists(self.path) and not os.path.islink(self.path):
            try:
                os.unlink(self.path)
            except OSError:
                pass

    def _refuse_a_link(self) -> None:
        try:
            info = os.lstat(self.path)
        except FileNotFoundError:
            return
        if not stat.S_ISREG(info.st_mode):
            kind = "a symbolic link" if stat.S_ISLNK(info.st_mode) else "not a regular file"
            raise UserError(f"{self.path} is {kind}; a run's lock is a file of its own. Remove it, then try again.")

    def _write_holder(self) -> None:
        me = {"pid": os.getpid(), "host": socket.gethostname(), "since": time.strftime("%Y-%m-%d %H:%M:%S"),
              "command": " ".join(sys.argv[:4])}
        fd = os.open(self.path, os.O_WRONLY | NOFOLLOW)  # a second description: closing it keeps the flock
        try:
            os.ftruncate(fd, 0)
            os.pwrite(fd, json.dumps(me).encode(), 0)
        finally:
            os.close(fd)

    def holder(self) -> str:
        try:
            fd = os.open(self.path, os.O_RDONLY | NOFOLLOW)
            try:
                holder = json.loads(os.pread(fd, 4096, 0) or b"{}")
            finally:
                os.close(fd)
        except (OSError, ValueError):
            holder = {}
        if not isinstance(holder, dict) or not holder.get("pid"):
            return "another process"
        return (f"process {holder['pid']} on {holder.get('host', '?')} (since {holder.get('since', '?')}: "
                f"{holder.get('command', '')})")

    @property
    def held(self) -> bool:
        return self.lock is not None

    def release(self, remove: bool = False) -> None:
        """Drop the lock; ``remove`` deletes the file first (while still held, so no one else holds it)."""
        if self.lock is None:
            return
        try:
            if remove:
                self.path.unlink(missing_ok=True)
            else:
                fd = os.open(self.path, os.O_WRONLY | NOFOLLOW)
                os.ftruncate(fd, 0)
                os.close(fd)
        except OSError:
            pass
        self.lock.release()
        self.lock = None
