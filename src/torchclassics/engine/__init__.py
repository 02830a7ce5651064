"""The one training engine: loop, checkpoints, run directory, devices."""
