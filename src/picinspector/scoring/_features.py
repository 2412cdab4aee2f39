"""The quality model's input: one flat, numeric feature dict per photo, built from the measures.

Training (``picinspector fit-quality``) and inference (`ClassicEngine`) both call `features`, so a
fitted model sees exactly the numbers it was trained on. Every numeric measure is a feature except
those in `EXCLUDED`; a few are derived (`DERIVED`), and the hand-made quality terms of
`._quality` are added in log form, so that a learner can start from the calibrated combination.
"""

from __future__ import annotations

import math
from typing import Any, Callable

import numpy as np

from ._attributes import attribute_scores
from ._quality import quality_terms

#: Measures left out, with the reason.
EXCLUDED = {
    "focus_native": "only present when native pixels were decoded",
    "noise_sigma_native": "only present when native pixels were decoded",
    "blur_kind": "a label; see the derived blur_is_motion / blur_is_defocus",
    "motion_blur_angle_deg": "a direction, not a degree of quality",
    "focus_map": "a grid; see the derived focus_map_* statistics",
    "cast_hue_deg": "a hue angle; cast_a, cast_b and cast_strength carry the cast",
    "exif_low_light": "depends on EXIF, which many files lack",
    # The BIQ2021 training photos are all JPEG quality ~75 (4,974 of 5,000 by their tables, 4,926
    # by their pixels): a fit cannot learn compression from them, and a feature that barely varies
    # in training moves an RBF kernel's distances for every photo saved otherwise (quality 95,
    # PNG). The compression guard (`._quality.GUARDS`) judges JPEG damage instead.
    "jpeg_quality": "constant on the training photos; the compression guard reads it",
    "jpeg_quality_pixels": "constant on the training photos; the compression guard reads it",
}

#: Value used when a measure is None (it does not apply to the photo), with its meaning.
NONE_DEFAULTS = {
    "jpeg_quality": 100.0,  # not a JPEG: no JPEG compression
    "jpeg_quality_pixels": 100.0,  # not measured: no trace of JPEG compression
    "blockiness": 1.0,  # no block grid: no blocking
    "focus": 0.0,  # no edges at all
    "edge_width_px": 20.0,  # no edges: as wide as the measure can tell
    "blur_anisotropy": 0.0,
    "sharp_area_pct": 0.0,
    "cast_a": 0.0,
    "cast_b": 0.0,
    "cast_strength": 0.0,
}


def _tiles(m: dict[str, Any]) -> list[float]:
    return [float(v) for row in (m.get("focus_map") or []) for v in row if v is not None]


def _tile_stat(stat: Callable[[list[float]], float], empty: float) -> Callable[[dict[str, Any]], float]:
    return lambda m: stat(t) if (t := _tiles(m)) else empty


#: Derived features: name -> function of the measures.
DERIVED: dict[str, Callable[[dict[str, Any]], float]] = {
    "focus_map_mean": _tile_stat(lambda t: float(np.mean(t)), 0.0),
    "focus_map_max": _tile_stat(max, 0.0),
    "focus_map_min": _tile_stat(min, 0.0),
    "focus_map_std": _tile_stat(lambda t: float(np.std(t)), 0.0),
    "focus_map_judged": lambda m: len(_tiles(m)) / max(1, sum(len(r) for r in (m.get("focus_map") or [[None]]))),
    "blur_is_motion": lambda m: float(m.get("blur_kind") == "motion"),
    "blur_is_defocus": lambda m: float(m.get("blur_kind") == "defocus"),
}


def features(measures: dict[str, Any]) -> dict[str, float]:
    """All quality-model features of one photo: ``{name: float}`` (NaN where a value is missing).

    Parameters
    ----------
    measures : dict
        The output of `picinspector.measures.measure_all` (or a report's ``measures``).

    Returns
    -------
    dict
        Every numeric measure not in `EXCLUDED` (None replaced by `NONE_DEFAULTS`, else NaN), the
        `DERIVED` features, and ``term_<aspect>`` = log of each hand-made quality term.
    """
    filled = {k: NONE_DEFAULTS.get(k, v) if v is None else v for k, v in measures.items()}
    out: dict[str, float] = {}
    for name, value in filled.items():
        if name in EXCLUDED or isinstance(value, bool) or not isinstance(value, (int, float, type(None))):
            continue
        out[name] = math.nan if value is None else float(value)
    for name, func in DERIVED.items():
        out[name] = float(func(measures))
    for aspect, goodness in quality_terms(filled, attribute_scores(filled)).items():
        out[f"term_{aspect}"] = math.log(goodness)
    return out


def known_feature_names() -> frozenset[str]:
    """Every name `features` can produce with the measures registered in this version: the measure
    outputs not in `EXCLUDED`, the `DERIVED` features and ``term_<aspect>`` of each quality term. A
    quality model that needs any other name was fitted by a different version."""
    from ..measures import measure_units
    from ._quality import QUALITY_TERMS

    return frozenset({n for n in measure_units() if n not in EXCLUDED} | set(DERIVED)
                     | {f"term_{aspect}" for aspect in QUALITY_TERMS})


def feature_matrix(rows: list[dict[str, Any]], names: list[str]) -> np.ndarray:
    """Stack `features` of many measure dicts into an (n, len(names)) float64 array, in ``names`` order."""
    table = [features(m) for m in rows]
    missing = sorted({n for n in names if n not in table[0]}) if table else []
    if missing:
        raise KeyError(f"features not computed by this version: {missing}")
    return np.array([[f.get(n, math.nan) for n in names] for f in table], dtype=np.float64)
