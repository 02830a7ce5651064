"""Optional live curves: TensorBoard event files in <run>/tensorboard when the package is installed.

    tensorboard --logdir runs/
Nothing changes without it; only the writing process (rank 0) writes."""
from __future__ import annotations

import sys
from pathlib import Path


def _summary_writer():
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:  # tensorboard is optional: pip install "torchclassics[tensorboard]"
        return None
    return SummaryWriter


class Curves:
    """Scalars of each epoch's row; on resume, events after the checkpoint are purged."""

    def __init__(self, run_path: Path, tag: str = "", resumed_at: int = 0, resumed: bool = False,
                 enabled: bool = True):
        writer_class = _summary_writer() if enabled else None
        self.prefix = f"{tag}/" if tag else ""
        self.writer = None
        if writer_class is not None:
            # purge_step drops what a killed run logged after its last checkpoint (all of it, without one)
            self.writer = writer_class(log_dir=str(Path(run_path) / "tensorboard"),
                                       purge_step=resumed_at + 1 if resumed else None)

    def log(self, row: dict) -> None:
        if self.writer is None:
            return
        try:
            for key, value in row.items():
                if key not in ("epoch", "tag") and isinstance(value, (int, float)):
                    self.writer.add_scalar(self.prefix + key, value, row["epoch"])
            self.writer.flush()
        except OSError as err:  # TensorBoard's writer names no file (a full disk): name its folder
            raise OSError(err.errno, err.strerror or str(err), self.writer.log_dir) from None

    def close(self) -> None:
        """Closing runs in ``finally``: a failure here must not hide the error that ended training."""
        if self.writer is not None:
            try:
                self.writer.close()
            except OSError as err:
                print(f"torchclassics: warning: {self.writer.log_dir}: {err.strerror or err} (TensorBoard curves "
                      "may be incomplete)", file=sys.stderr)
