"""What every layer shares and that knows nothing of the package: the user's-mistake error, the
one logger and its messages, files written atomically and read defensively. Imports no torch
and nothing else of torchclassics."""
