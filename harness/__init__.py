"""facebench harness: the contract floor (contracts/), the data, run and report wings and the CLI.

The layers and which may import which: docs/architecture.md."""

from .contracts.version import __version__

__all__ = ["__version__"]
