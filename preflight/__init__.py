"""sense-preflight: proves the axion-sense chart's dependencies work before `helm install`."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("sense-preflight")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0+source"
