"""One module per lesson; each registers itself with ``@experiment("name")``."""
