"""The run record: everything written under the runs root, and the only code that knows its file
names and formats. Importing it never imports torch.

* :mod:`.layout`: file and folder names, where a new run, a trial, a study and a checkpoint go;
* :mod:`.metrics`: how metrics are named (held-out prefix, bookkeeping keys, labels) and the
  objective (metric and direction);
* :mod:`.records`: summary.json, trial.json and an export's sidecar as typed records with a
  ``format`` number, and the reading of older formats;
* :mod:`.lock`: one writer per run directory;
* :mod:`.writer`: the writing process's side of a run directory;
* :mod:`.reader`: reading a run directory, never through a symbolic link out of it.
"""
