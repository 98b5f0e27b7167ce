"""Every built-in artifact by name, in the registry's order (``facebench.harness.contracts.registry``)."""

from __future__ import annotations

from ...harness.contracts import registry

ARTIFACTS: dict[str, type] = {name: registry.load("artifact", name) for name in registry.names("artifact")}
