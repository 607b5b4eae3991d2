"""The engine: a check and its probe, the deadline, run options, the registry of checks and the
parallel runner."""
