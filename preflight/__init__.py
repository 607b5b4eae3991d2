"""sense-preflight: proves the axion-sense chart's dependencies work before `helm install`."""

__version__ = "0.1.0"  # the single source: pyproject.toml reads it (dynamic version)
