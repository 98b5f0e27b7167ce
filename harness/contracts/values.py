"""Plain values that reports and files share: missing figures and JSON-ready data."""

from __future__ import annotations

import math
from typing import Any


def is_missing(value: Any) -> bool:
    """Whether a figure is missing: None (NULL read back from SQLite or JSON) or a float NaN."""
    return value is None or (isinstance(value, float) and math.isnan(value))


def json_safe(value: Any) -> Any:
    """``value`` ready for strict JSON: NaN and infinities become None, tuples lists, dict keys
    strings and numpy scalars Python numbers (recursively)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    if hasattr(value, "item") and callable(value.item):  # numpy scalars
        return json_safe(value.item())
    return value
