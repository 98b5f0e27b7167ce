"""facebench's installed version."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("facebench")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0+unknown"
