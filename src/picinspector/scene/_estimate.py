"""Method "cues": a readable linear model over hand-made scene evidence, no neural network."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from . import _cues

#: SPAQ's nine scene categories (Fang et al., CVPR 2020, doi:10.1109/CVPR42600.2020.00373).
SCENES = (
    "animal", "cityscape", "human", "indoor", "landscape", "night", "plant", "still_life", "others",
)

#: Softmax temperature. With the weights below, a featureless image leaves "others" on top at
#: about 0.25, and one cue at full strength lifts its class to roughly 0.5-0.8.
TEMPERATURE = 1.0

#: Per-class linear terms: ``score = bias + sum(weight * evidence[name])``. Every evidence value
#: lies in [0, 1] (see :func:`scene_evidence`); "others" has no terms and gets the mass when
#: nothing fires.
WEIGHTS: dict[str, dict[str, float]] = {
    "human": {"bias": -1.0, "face": 3.0, "face_size": 1.5},
    "night": {"bias": -1.0, "dark": 0.8, "dark_with_lights": 2.4, "exif_low_light": 1.2},
    "landscape": {
        "bias": -1.0, "sky": 1.2, "sky_over_green": 1.5, "foliage": 0.6,
        "horizon_mid": 0.4, "vertical_lines": -0.8,
    },
    "cityscape": {"bias": -1.2, "sky": 0.8, "vertical_lines": 1.0, "lines_under_sky": 1.6},
    "plant": {"bias": -1.0, "green_no_sky": 2.0, "bloom_in_green": 1.5},
    "indoor": {
        "bias": -1.2, "no_sky": 0.8, "warm_cast": 1.6, "lines_no_sky": 0.8,
        "dim_without_lights": 0.6,
    },
    "animal": {"bias": -1.3, "fur": 1.8, "face": -1.5},
    "still_life": {"bias": -1.3, "isolated_object": 2.2, "bloom_not_green": 0.6, "face": -1.5},
    "others": {"bias": 0.0},
}


def _ramp(x: float, lo: float, hi: float) -> float:
    """0 at ``lo``, 1 at ``hi``, linear between (either order)."""
    return float(np.clip((x - lo) / (hi - lo), 0.0, 1.0))


def scene_evidence(cues: dict) -> dict[str, float]:
    """Turn raw cue values into evidence strengths in [0, 1].

    Parameters
    ----------
    cues : dict
        The raw values from :func:`measure_cues`.

    Returns
    -------
    dict
        Evidence name -> strength in [0, 1]; the names are those used in :data:`WEIGHTS`.

    Notes
    -----
    Each ramp maps a cue from "absent" to "clearly present"; the thresholds were set on the
    sample photos shipped with scikit-image, scikit-learn and matplotlib and on synthetic
    scenes, so they are rough. Products express "A and B" (sky over green, lines under sky).
    Sky-like pixels along the bottom edge as well as the top mean a studio backdrop or a page,
    and cancel the sky evidence.

    References
    ----------
    A. Vailaya, M. Figueiredo, A. Jain and H.-J. Zhang, "Image classification for
    content-based indexing", IEEE Trans. Image Processing 10(1), 2001. doi:10.1109/83.892448
    """
    backdrop = _ramp(cues["sky_bottom_fraction"], 0.3, 0.7)  # sky-like all round: a backdrop
    sky = (1.0 - backdrop) * max(
        _ramp(cues["sky_fraction"], 0.05, 0.30), 0.8 * _ramp(cues["sky_top_fraction"], 0.2, 0.7)
    )
    green = _ramp(cues["green_fraction"], 0.05, 0.40)
    lines = _ramp(cues["vertical_edge_ratio"], 0.14, 0.28)
    dark = _ramp(cues["mean_lightness"], 40.0, 15.0)
    lights = _ramp(cues["point_lights"], 0, 4)
    bloom = _ramp(cues["centre_bloom"], 0.1, 0.4)
    plain = _ramp(cues["surround_texture"], 0.030, 0.012)
    return {
        "face": 1.0 if cues["face_count"] > 0 else 0.0,
        "face_size": _ramp(cues["face_area_fraction"], 0.0, 0.05),
        "dark": dark,
        "dark_with_lights": dark * lights,
        "exif_low_light": float(cues["exif_low_light"]),
        "sky": sky,
        "no_sky": 1.0 - sky,
        "horizon_mid": sky * (1.0 if 0.15 <= cues["horizon"] <= 0.65 else 0.0),
        "sky_over_green": sky * green,
        "foliage": _ramp(cues["textured_green_fraction"], 0.05, 0.30),
        "vertical_lines": lines,
        "lines_under_sky": lines * sky,
        "lines_no_sky": lines * (1.0 - sky),
        "green_no_sky": green * (1.0 - sky),
        "bloom_in_green": bloom * green,
        "bloom_not_green": bloom * (1.0 - green),
        "warm_cast": _ramp(cues["warmth"], 15.0, 40.0) * (1.0 - sky),
        "dim_without_lights": dark * (1.0 - lights),
        "fur": _ramp(cues["fur_fraction"], 0.10, 0.45),
        "isolated_object": plain * _ramp(cues["centre_contrast"], 5.0, 25.0),
    }


def combine(evidence: dict[str, float], weights: dict[str, dict[str, float]] = WEIGHTS,
            temperature: float = TEMPERATURE) -> dict[str, float]:
    """Linear scores per class, then a softmax.

    Parameters
    ----------
    evidence : dict
        Evidence name -> strength (see :func:`scene_evidence`).
    weights : dict
        Class -> {"bias": b, evidence name: weight, ...}; must cover every class in
        :data:`SCENES`.
    temperature : float
        Softmax temperature (> 0); higher spreads the probabilities.

    Returns
    -------
    dict
        Class -> probability, in :data:`SCENES` order, summing to 1 (unrounded).

    Notes
    -----
    ``p_c = exp(s_c / T) / sum_k exp(s_k / T)``: multinomial logistic regression with
    hand-set weights. A higher temperature ``T`` pulls every probability towards 1/9.

    References
    ----------
    J. S. Bridle, "Probabilistic interpretation of feedforward classification network
    outputs", in Neurocomputing, NATO ASI Series F68, Springer, 1990.
    doi:10.1007/978-3-642-76153-9_28
    """
    if temperature <= 0:
        raise ValueError(f"temperature must be > 0, got {temperature}")
    missing = [s for s in SCENES if s not in weights]
    if missing:
        raise ValueError(f"weights lack the classes {missing}")
    scores = []
    for scene in SCENES:
        terms = weights[scene]
        unknown = [k for k in terms if k != "bias" and k not in evidence]
        if unknown:
            raise ValueError(f"weights for {scene!r} name unknown evidence {unknown}")
        linear = sum(w * evidence[k] for k, w in terms.items() if k != "bias")
        scores.append(terms.get("bias", 0.0) + linear)
    z = np.asarray(scores, dtype=np.float64) / temperature
    p = np.exp(z - z.max())
    p /= p.sum()
    return dict(zip(SCENES, (float(v) for v in p)))


def round_probabilities(probs: dict[str, float], decimals: int = 3) -> dict[str, float]:
    """Round to ``decimals`` places so that the rounded values still sum to exactly 1.

    Uses largest-remainder rounding on integer units of ``10**-decimals``.
    """
    unit = 10**decimals
    raw = np.array([probs[s] for s in SCENES], dtype=np.float64) * unit
    floors = np.floor(raw).astype(np.int64)
    short = int(unit - floors.sum())
    order = np.argsort(-(raw - floors), kind="stable")
    floors[order[:short]] += 1
    return {s: int(v) / unit for s, v in zip(SCENES, floors)}


def measure_cues(rgb: np.ndarray, exif: dict | None = None) -> dict:
    """Every raw scene cue of one sRGB image.

    Parameters
    ----------
    rgb : ndarray, float (H, W, 3)
        sRGB in [0, 1] at the working resolution.
    exif : dict, optional
        Normalised EXIF (``iso``, ``exposure_time_s`` are read).

    Returns
    -------
    dict
        The union of :func:`~._cues.face_cue`, :func:`~._cues.night_cue`,
        :func:`~._cues.sky_cue`, :func:`~._cues.orientation_cue`,
        :func:`~._cues.vegetation_cue`, :func:`~._cues.centre_surround_cue`,
        :func:`~._cues.warmth_cue` and :func:`~._cues.fur_cue`.
    """
    im = _cues.prepare(rgb)
    cues: dict = {}
    cues.update(_cues.face_cue(im.face_gray, im.lab))
    cues.update(_cues.night_cue(im.lab[..., 0], exif))
    cues.update(_cues.sky_cue(im.lab, im.texture))
    cues.update(_cues.orientation_cue(im.gx, im.gy))
    cues.update(_cues.vegetation_cue(im.hue, im.saturation, im.value, im.texture))
    cues.update(_cues.centre_surround_cue(im.lab, im.texture, im.hue))
    cues.update(_cues.warmth_cue(im.lab))
    cues.update(
        _cues.fur_cue(im.lab, im.texture, im.hue, im.saturation, cues["cardinal_edge_ratio"])
    )
    return cues


@dataclass
class SceneEstimate:
    """A scene guess with its probabilities and the evidence behind it.

    Attributes
    ----------
    label : str
        The most probable of :data:`SCENES`.
    probabilities : dict
        All nine classes, rounded to 3 decimals, summing to 1.
    method : str
        The engine that produced it ("cues").
    confidence : float
        The top probability. Below ~0.4 the guess is weak.
    cues : dict
        The raw cue values (floats rounded to 4 decimals, counts as int).
    """

    label: str
    probabilities: dict[str, float]
    method: str
    confidence: float
    cues: dict[str, float | int] = field(default_factory=dict)

    def to_dict(self) -> dict:
        return {
            "label": self.label,
            "probabilities": dict(self.probabilities),
            "method": self.method,
            "confidence": self.confidence,
            "cues": dict(self.cues),
        }


def estimate_scene_rgb(rgb: np.ndarray, exif: dict | None = None) -> SceneEstimate:
    """Scene estimate of an sRGB image from hand-made cues.

    Parameters
    ----------
    rgb : ndarray, float (H, W, 3)
        sRGB in [0, 1], long side <= 1024 recommended (larger works, slower).
    exif : dict, optional
        Normalised EXIF; long exposure and high ISO count towards "night".

    Returns
    -------
    SceneEstimate
        ``method`` is "cues".

    Notes
    -----
    Cues (faces, darkness and point lights, sky, edge orientation, vegetation, centre-surround
    contrast, colour cast, fur-like texture) become evidence strengths in [0, 1]; each class
    score is a linear sum over its row of :data:`WEIGHTS`, and a softmax turns scores into
    probabilities. With no evidence "others" leads with about 0.2, so a weak guess reads as
    one. The categories are SPAQ's; without a trained recogniser "animal" can only be hinted.

    References
    ----------
    Y. Fang, H. Zhu, Y. Zeng, K. Ma and Z. Wang, "Perceptual quality assessment of smartphone
    photography", CVPR 2020. doi:10.1109/CVPR42600.2020.00373
    A. Oliva and A. Torralba, "Modeling the shape of the scene: a holistic representation of
    the spatial envelope", IJCV 42(3), 2001. doi:10.1023/A:1011139631724
    """
    return estimate_from_cues(measure_cues(rgb, exif))


def estimate_from_cues(cues: dict) -> SceneEstimate:
    """The "cues" estimate from already measured cues (the output of :func:`measure_cues`)."""
    probs = round_probabilities(combine(scene_evidence(cues)))
    label = max(SCENES, key=lambda s: probs[s])
    return SceneEstimate(
        label=label,
        probabilities=probs,
        method="cues",
        confidence=probs[label],
        cues={k: (int(v) if isinstance(v, (int, np.integer)) else round(float(v), 4))
              for k, v in cues.items()},
    )


def estimate_scene(photo) -> SceneEstimate:
    """Scene estimate of a :class:`~picinspector.io.Photo` by the "cues" method.

    Parameters
    ----------
    photo : picinspector.io.Photo
        Reads ``photo.rgb`` (working resolution) and ``photo.exif``.

    Returns
    -------
    SceneEstimate

    Notes
    -----
    A thin adapter over :func:`estimate_scene_rgb`; the cues compute their own 256-px copy,
    which is cheaper than converting the full-size ``photo.lab`` / ``photo.gray``.

    References
    ----------
    See :func:`estimate_scene_rgb`.
    """
    rgb = getattr(photo, "rgb", None)
    if rgb is None:
        raise ValueError(
            f"estimate_scene needs a Photo with an rgb array, got {type(photo).__name__}"
        )
    return estimate_scene_rgb(rgb, getattr(photo, "exif", None) or {})

