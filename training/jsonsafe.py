"""Values made fit for a JSON column: no NaN or infinity, no numpy scalars."""

from __future__ import annotations

import math


def json_safe(value):
    """JSON columns reject NaN and infinity: they become null, numpy scalars become Python numbers."""
    if isinstance(value, dict):
        return {str(key): json_safe(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(item) for item in value]
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value
