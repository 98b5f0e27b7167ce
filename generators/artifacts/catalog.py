"""Every built-in artifact by name. Each artifact module lists its classes in ``ARTIFACT_CLASSES``."""

from __future__ import annotations

from . import frequency, geometry
from . import scene, sensor
from . import shortcuts, surroundings

_MODULES = (frequency, geometry, sensor, scene, surroundings, shortcuts)

ARTIFACTS: dict[str, type] = {cls.name: cls for module in _MODULES for cls in module.ARTIFACT_CLASSES}
