"""Optional live curves: TensorBoard event files in the run's tensorboard/ when the package is installed.

    tensorboard --logdir runs/
Nothing changes without it; only the writing process (rank 0) writes."""
from __future__ import annotations

from pathlib import Path

from ..core import messages


def _summary_writer():
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:  # tensorboard is optional: pip install "torchclassics[tensorboard]"
        return None
    return SummaryWriter


class Curves:
    """Scalars of each epoch's row; on resume, events after the checkpoint are purged."""

    def __init__(self, folder, tag: str = "", resumed_at: int = 0, resumed: bool = False, enabled: bool = True):
        """``folder``: a callable giving the run's tensorboard folder, checked to be a real folder of the run
        (called only when TensorBoard is installed and this process writes)."""
        writer_class = _summary_writer() if enabled else None
        self.prefix = f"{tag}/" if tag else ""
        self.writer = None
        if writer_class is None:
            return
        log_dir = folder()
        try:
            # purge_step drops what a killed run logged after its last checkpoint (all of it, without one)
            self.writer = writer_class(log_dir=str(log_dir), purge_step=resumed_at + 1 if resumed else None)
        except UnicodeError:  # a folder name that is not UTF-8: TensorBoard cannot write there; the run can
            messages.warn(f"{Path(log_dir).as_posix()!r}: TensorBoard cannot write into a folder whose name is not "
                          "UTF-8; this run has no TensorBoard curves.")

    def log(self, row: dict) -> None:
        if self.writer is None:
            return
        try:
            for key, value in row.items():
                if key not in ("epoch", "tag") and isinstance(value, (int, float)):  # lr and train_s curves too
                    self.writer.add_scalar(self.prefix + key, value, row["epoch"])
            self.writer.flush()
        except OSError as err:  # TensorBoard's writer names no file (a full disk): name its folder
            raise OSError(err.errno, err.strerror or str(err), self.writer.log_dir) from None

    def close(self, interrupted: bool = False) -> None:
        """The writer closed, and its thread joined. Not after an interrupt: every row was flushed when it
        was logged, and joining TensorBoard's (daemon) thread then can wait for ever. A failure here must
        not hide the error that ended training."""
        if self.writer is None or interrupted:
            return
        try:
            self.writer.close()
        except OSError as err:
            messages.warn(f"{self.writer.log_dir}: {err.strerror or err} (TensorBoard curves may be incomplete)")
