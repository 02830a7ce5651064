"""Results: what the runs below a folder measured, read only through the run record (``rundir``).

* :mod:`.runs`: the runs and search studies below a folder; a run that cannot be read or shown is
  skipped and listed with the reason, never the end of the reader;
* :mod:`.table`: one experiment's table (metrics first, then the parameters that vary), its order
  and its formats (Markdown, CSV, JSON);
* :mod:`.synthesize`: ``torchclassics synthesize``, the tables on stdout and in ``results.md``;
* :mod:`.report`: ``torchclassics report``, one self-contained HTML page (``templates/``);
* :mod:`.studies`: a search study's figures, one pipeline for the PNGs search writes and the report's
  Plotly charts;
* :mod:`.output`: the files these commands write, which never replace a file that is not their own.
"""
