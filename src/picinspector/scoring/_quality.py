"""A first calibrated quality score: a weighted geometric mean of per-aspect "goodness" terms.

Each term is in (0, 1], 1 meaning "this aspect does not hurt the photo". A weighted geometric mean
lets one bad aspect pull the whole score down (a sharp but black photo is not good) while the
weights say how much each aspect matters. The weights follow the order of importance that SPAQ's
attribute/MOS correlations report (sharpness and noise first, then exposure, contrast, colour;
Fang et al. 2020, doi:10.1109/CVPR42600.2020.00373); the next step (issue 3) replaces this with a
model fitted to human opinion scores.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable

from ..measures._compression import effective_jpeg_quality

_FLOOR = 0.02  # keeps the geometric mean defined and lets every term still matter at its worst


def _sharp(m: dict[str, Any], s: dict[str, float]) -> float:
    return s["sharpness"] / 100.0


def _noise(m: dict[str, Any], s: dict[str, float]) -> float:
    return s["noisiness"] / 100.0


def _exposure(m: dict[str, Any], s: dict[str, float]) -> float:
    """Mean lightness near mid-grey (L* 42-58 is fully good), little clipping at either end."""
    lightness = m["lightness_mean"]
    outside = max(0.0, abs(lightness - 50.0) - 8.0)
    band = math.exp(-((outside / 20.0) ** 2))
    # Gentle clipping terms: a pixel at the limit is not always lost detail (a lamp, a black
    # background); the findings name the clipping, the score only leans on it.
    clip = (1.0 - min(0.4, m["highlights_clipped_pct"] / 60.0)) * (1.0 - min(0.3, m["shadows_crushed_pct"] / 150.0))
    return band * clip


def _contrast(m: dict[str, Any], s: dict[str, float]) -> float:
    return 0.25 + 0.75 * s["contrast"] / 100.0


def _color(m: dict[str, Any], s: dict[str, float]) -> float:
    return 0.55 + 0.45 * s["colorfulness"] / 100.0


def _compression(m: dict[str, Any], s: dict[str, float]) -> float:
    """JPEG quality from the file's own tables or its pixels (1 at q >= 90) and visible blocking."""
    q = effective_jpeg_quality(m)
    by_q = 1.0 if q is None else min(1.0, 0.25 + 0.75 * (max(q, 1) / 90.0) ** 0.8)
    b = m.get("blockiness")
    by_blocks = 1.0 if b is None else math.exp(-max(0.0, b - 1.05) * 1.5)
    return by_q * by_blocks


@dataclass(frozen=True)
class Term:
    func: Callable[[dict[str, Any], dict[str, float]], float]
    weight: float


#: Aspect -> (goodness function, weight). Weights sum to 1.
QUALITY_TERMS: dict[str, Term] = {
    "sharpness": Term(_sharp, 0.30),
    "noise": Term(_noise, 0.18),
    "exposure": Term(_exposure, 0.18),
    "contrast": Term(_contrast, 0.14),
    "color": Term(_color, 0.08),
    "compression": Term(_compression, 0.12),
}


def quality_terms(measures: dict[str, Any], attributes: dict[str, float]) -> dict[str, float]:
    """Each aspect's goodness in [_FLOOR, 1]."""
    return {name: min(1.0, max(_FLOOR, t.func(measures, attributes))) for name, t in QUALITY_TERMS.items()}


def quality_score(measures: dict[str, Any], attributes: dict[str, float]) -> float:
    """Overall quality, 0-100."""
    terms = quality_terms(measures, attributes)
    log_q = sum(QUALITY_TERMS[name].weight * math.log(g) for name, g in terms.items())
    return 100.0 * math.exp(log_q)


@dataclass(frozen=True)
class Guard:
    """``min(1, value / knee) ** power``: 1 above the knee, falling below it."""

    value: Callable[[dict[str, Any], dict[str, float]], float]
    knee: float
    power: float


#: Guards applied on top of a fitted quality model, for distortions stronger than its training
#: photos hold (BIQ2021 has no JPEG below quality ~50 and little strong noise or blur, so a
#: model fitted on it alone hardly reacts to them). Each is 1 on ordinary photos. Knees and
#: powers were chosen so that the cross-validated SRCC on BIQ2021 stays within 0.004 of the
#: model's own (README, "Agreement with people").
GUARDS: dict[str, Guard] = {
    "noise": Guard(lambda m, s: s["noisiness"], knee=40.0, power=0.5),
    # The tables when the file has them, the quantisation found in the pixels when it has not (a
    # PNG screenshot, a re-encoded upload) or when they show a harsher past compression.
    "compression": Guard(lambda m, s: 100.0 if (q := effective_jpeg_quality(m)) is None else q, knee=50.0, power=0.6),
    "sharpness": Guard(lambda m, s: s["sharpness"], knee=25.0, power=0.3),
}


def guard_factor(measures: dict[str, Any], attributes: dict[str, float]) -> float:
    """Product of the `GUARDS`, in (0, 1]."""
    factor = 1.0
    for g in GUARDS.values():
        factor *= min(1.0, max(g.value(measures, attributes), 1.0) / g.knee) ** g.power
    return factor
