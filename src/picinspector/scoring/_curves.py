"""Monotone maps from a measure to 0-100, shared by the attribute and quality scores."""

from __future__ import annotations

import math


def logistic(x: float, center: float, width: float) -> float:
    """100 / (1 + exp(-(x - center) / width)): 50 at ``center``; ``width`` > 0 rises, < 0 falls."""
    z = (x - center) / width
    if z < -60:
        return 0.0
    if z > 60:
        return 100.0
    return 100.0 / (1.0 + math.exp(-z))


def saturating(x: float, scale: float) -> float:
    """100 * (1 - exp(-x / scale)) for x >= 0: 0 at 0, 63 at ``scale``, approaching 100."""
    return 100.0 * (1.0 - math.exp(-max(x, 0.0) / scale))


def clamp(x: float, lo: float = 0.0, hi: float = 100.0) -> float:
    return lo if x < lo else hi if x > hi else x
