"""Every built-in artifact by name. Each artifact module lists its classes in ``ARTIFACT_CLASSES``."""

from __future__ import annotations

from facebench.generators.artifacts import frequency, geometry

_MODULES = (frequency, geometry)

ARTIFACTS: dict[str, type] = {cls.name: cls for module in _MODULES for cls in module.ARTIFACT_CLASSES}
