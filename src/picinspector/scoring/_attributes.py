"""The five SPAQ attribute scores (0-100) from the classic measures.

Each score reads the measure made for its attribute, so that it moves with its own distortion and
stays put under the others (bench/distortions.py checks both). The curves were set by hand so
that the range of real photos (BIQ2021 train subset, see README "Data") spreads over the scale;
issue 3 refits the overall quality on human opinion scores.

SPAQ (Fang et al., "Perceptual Quality Assessment of Smartphone Photography", CVPR 2020,
doi:10.1109/CVPR42600.2020.00373) rates the same five attributes on 0-100. As there,
``brightness`` says how bright the photo looks (it rises with exposure); whether that brightness
is good is for ``quality`` and the findings to say. ``noisiness`` is 100 for a clean photo.
"""

from __future__ import annotations

import math
from typing import Any, Callable

from ._curves import clamp, logistic, saturating


def brightness(m: dict[str, Any]) -> float:
    """Perceived brightness from the mean CIE lightness L* (0-100)."""
    return logistic(m["lightness_mean"], center=45.0, width=14.0)


def colorfulness(m: dict[str, Any]) -> float:
    """Hasler-Suesstrunk colourfulness M: 15 "slightly", 33 "moderately", 59 "quite", 109 "extremely"."""
    return saturating(m["colorfulness"], scale=40.0)


def contrast(m: dict[str, Any]) -> float:
    """Global RMS contrast of luma, lifted a little by local contrast."""
    return saturating(0.85 * m["contrast_rms"] + 0.15 * m["contrast_local"], scale=0.12)


def effective_noise(m: dict[str, Any]) -> float:
    """Luma noise sigma combined with half-weighted chroma noise, in 8-bit levels."""
    luma = m["noise_sigma"] or 0.0
    chroma = m["noise_chroma"] or 0.0
    return math.sqrt(luma * luma + 0.5 * chroma * chroma)


def noisiness(m: dict[str, Any]) -> float:
    """100 = clean. Falls with the noise sigma at the working resolution (8-bit levels)."""
    return 100.0 * math.exp(-((max(effective_noise(m) - 0.6, 0.0) / 7.0) ** 1.15))


def sharpness(m: dict[str, Any]) -> float:
    """The content-robust focus measure (0-1) spread over 0-100; 0 when the frame holds no edge at
    all to be sharp (``focus`` is None: a featureless frame, e.g. a lens cap or fog)."""
    if m["focus"] is None:
        return 0.0
    return clamp(logistic(m["focus"], center=0.45, width=0.12))


#: Attribute name -> function of the measures. One entry per SPAQ attribute.
ATTRIBUTE_SCORES: dict[str, Callable[[dict[str, Any]], float]] = {
    "brightness": brightness,
    "colorfulness": colorfulness,
    "contrast": contrast,
    "noisiness": noisiness,
    "sharpness": sharpness,
}


def attribute_scores(measures: dict[str, Any]) -> dict[str, float]:
    return {name: float(func(measures)) for name, func in ATTRIBUTE_SCORES.items()}
