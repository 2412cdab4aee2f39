"""Grounded, rule-based feedback whose severities agree with people.

How a photo's findings are made (all numbers from the measures, the scores and the scene):

1. **Terms** (`TERMS`): each reads one measured value, larger = worse (``100 - sharpness``,
   ``blockiness``, ``highlights_clipped_pct``, ...), in a *context* that says what the photo is
   trying to be: a dark frame with bright parts is low-key, not under-exposed; a bright frame with
   a full tonal range is high-key, not over-exposed; clipping in a bright scene is a sky, not a
   blown face.
2. **Measured cost**: the calibration (`picinspector.feedback.calibration`, fitted to opinion
   scores by ``picinspector fit-feedback``) turns each term into the MOS points people take off
   for it; the terms of one aspect (`ASPECTS`) add up. For blur, noise and JPEG beyond what the
   opinion data hold, the quality guards' own drop is added.
3. **Attribution**: the photo's deficit, ``reference_quality - quality``, is shared among the
   aspects in proportion to their measured costs, at most ``max_scale`` and at least
   ``measured_floor`` times each one's measured cost. A fault on a photo people would still rate
   highly costs little there and is reported mildly; a large measured cost is reported anyway.
4. **Severity** comes from the points, with thresholds that mean the same for every kind
   (``severity_points``: "severe" = people mark the photo down a lot for it). The findings are
   sorted by points, so the *first fix* is the one that costs the most quality.
5. Where quality is low (a deficit of at least the moderate threshold) but no aspect's points reach
   it, the aspect with most of the measured cost is reported as moderate; without one, a
   ``weak_aspects`` finding names the weakest measured aspects compared with the photos people
   rate highest. So a photo with a low quality always hears why.

Every finding says what was measured and what to do. The findings never change ``quality``.
Rules read a `Context`, built from a live analysis (`Context.from_photo`) or from a batch-runner
row (`Context.from_row`), so the evaluation can re-run them over cached measures.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Callable, Mapping, Optional

from ..measures._compression import effective_jpeg_quality
from ..report import SEVERITIES, Finding, SceneResult, json_safe
from .calibration import Calibration, default_calibration

__all__ = [
    "ASPECTS", "Assessment", "Context", "RulesWriter", "TERMS", "Term", "assess", "cast_name", "findings_for",
    "findings_from_row", "intent", "paragraph", "verdict", "write",
]


# --------------------------------------------------------------------------------------------------
# What the rules read


@dataclass
class Context:
    """Everything a rule may read about one photo.

    Attributes
    ----------
    measures : mapping
        The classic measures (``picinspector measures``).
    scores : mapping
        The six 0-100 scores, from whichever engine ran.
    scene : SceneResult or None
        The scene, from whichever engine ran (cues, dinov2, effnet, ...).
    width, height : int
        Native size in pixels.
    exif : mapping
        Normalised EXIF.
    """

    measures: Mapping[str, Any]
    scores: Mapping[str, float]
    scene: SceneResult | None = None
    width: int = 0
    height: int = 0
    exif: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def from_photo(cls, photo: Any, measures: Mapping[str, Any], scores: Mapping[str, float],
                   scene: SceneResult | None) -> "Context":
        return cls(measures, scores, scene, int(photo.width), int(photo.height), dict(photo.exif or {}))

    @classmethod
    def from_row(cls, row: Mapping[str, Any], scores: Mapping[str, float] | None = None) -> "Context":
        """From a report row (``Report.to_dict()``, a line of ``analyze -o x.jsonl``); ``scores``
        replaces the row's own (e.g. a quality from another model)."""
        s = row.get("scene")
        scene = None if not s else SceneResult(s.get("label"), dict(s.get("probabilities") or {}),
                                               s.get("method", ""), float(s.get("confidence") or 0.0))
        return cls(row["measures"], dict(scores if scores is not None else row["scores"]), scene,
                   int(row.get("width") or 0), int(row.get("height") or 0), dict(row.get("exif") or {}))

    def m(self, name: str, default: float | None = None) -> Any:
        value = self.measures.get(name)
        return default if value is None else value

    def p(self, scene: str) -> float:
        """Probability of a scene label (0 without a scene)."""
        return float(self.scene.probabilities.get(scene, 0.0)) if self.scene else 0.0

    @cached_property
    def intent(self) -> dict[str, str]:
        return intent(self)

    @cached_property
    def attributes(self) -> dict[str, float]:
        """The classic attribute scores of the measures: what the terms read, whichever engine gave
        ``scores`` (the cost tables were fitted on these curves). The engine's own scores where the
        measures lack a curve's input."""
        from ..scoring._attributes import ATTRIBUTE_SCORES

        out = {}
        for name, curve in ATTRIBUTE_SCORES.items():
            try:
                out[name] = float(curve(self.measures))
            except (KeyError, TypeError, ValueError):
                if self.scores.get(name) is not None:
                    out[name] = float(self.scores[name])
        return out


def _num(x: Any) -> float:
    return 0.0 if x is None or (isinstance(x, float) and math.isnan(x)) else float(x)


#: A tonal range (luma p99 - p1) from which a dark frame has bright parts (low-key) or a bright
#: frame has dark parts (high-key). On BIQ2021, dark photos below it average 10-20 MOS points less
#: than dark photos above it (docs/feedback.md).
RANGED = 0.6


def _is_night(ctx: Context) -> bool:
    """A night scene: the engine says night and the frame is dark with lights, or EXIF says low light.
    A dark indoor food photo without point lights is not night."""
    lights = _num(ctx.m("point_lights")) >= 2 or _num(ctx.m("exif_low_light")) >= 0.5
    return ctx.p("night") >= 0.3 and lights and _num(ctx.m("lightness_mean")) < 40


def intent(ctx: Context) -> dict[str, str]:
    """What the photo appears to be going for, from measures and scene: name -> the measured reason.

    ``night`` (a dark scene with lights), ``low_key`` (dark, with bright parts), ``high_key``
    (bright, with dark parts and little clipping), ``snow_or_fog`` (bright, flat, nearly grey),
    ``silhouette`` (crushed shadows against a bright sky), ``bright_sky`` (a large sky area).
    """
    L = _num(ctx.m("lightness_mean"))
    rng = _num(ctx.m("contrast_range"))
    clip = _num(ctx.m("highlights_clipped_pct"))
    crushed = _num(ctx.m("shadows_crushed_pct"))
    sky = _num(ctx.m("sky_fraction"))
    sat = _num(ctx.m("saturation_mean"))
    out: dict[str, str] = {}
    if _is_night(ctx):
        out["night"] = f"a dark scene (L* {L:.0f}) with {int(_num(ctx.m('point_lights')))} point lights"
    if L < 35 and rng >= RANGED:
        out["low_key"] = f"dark overall (L* {L:.0f}) with bright parts (tonal range {rng:.2f})"
    if L > 65 and rng >= RANGED and clip < 4:
        out["high_key"] = f"bright overall (L* {L:.0f}) with dark details (tonal range {rng:.2f})"
    if L > 65 and rng < RANGED and sat < 0.12:
        out["snow_or_fog"] = f"bright (L* {L:.0f}), flat (tonal range {rng:.2f}) and nearly grey"
    if sky >= 0.15:
        out["bright_sky"] = f"{100 * sky:.0f}% sky"
        if crushed >= 5:
            out["silhouette"] = f"{crushed:.0f}% black against {100 * sky:.0f}% sky"
    return out


# --------------------------------------------------------------------------------------------------
# Terms: one measured value each (larger = worse), in a context


def _tonal(ctx: Context) -> str:
    return "ranged" if _num(ctx.m("contrast_range")) >= RANGED else "flat"


def _scene_lightness(ctx: Context) -> str:
    return "bright" if _num(ctx.m("lightness_mean")) >= 60 else "dark"


def _sky(ctx: Context) -> str:
    return "sky" if _num(ctx.m("sky_fraction")) >= 0.05 else "no_sky"


def _effective_noise(ctx: Context) -> float | None:
    if ctx.m("noise_sigma") is None:
        return None
    return math.sqrt(_num(ctx.m("noise_sigma")) ** 2 + 0.5 * _num(ctx.m("noise_chroma")) ** 2)


def _score(name: str) -> Callable[[Context], float | None]:
    def value(ctx: Context) -> float | None:
        v = ctx.attributes.get(name)
        return None if v is None else 100.0 - float(v)
    return value


def _measure(name: str, sign: float = 1.0, offset: float = 0.0) -> Callable[[Context], float | None]:
    def value(ctx: Context) -> float | None:
        v = ctx.m(name)
        return None if v is None else offset + sign * float(v)
    return value


def _effective_jpeg(ctx: Context) -> float | None:
    q = effective_jpeg_quality(dict(ctx.measures))
    return None if q is None else 100.0 - float(q)


@dataclass(frozen=True)
class Term:
    """One measured value that may cost a photo quality.

    Attributes
    ----------
    aspect : str
        The `ASPECTS` entry it belongs to (its costs add up there).
    value : callable
        ``Context -> float or None``, larger = worse; None: not measured, costs nothing.
    contexts : tuple of str
        The contexts it is calibrated in (one cost table each).
    context : callable
        ``Context -> one of contexts``.
    doc : str
        What the value is, for the calibration file and the docs.
    """

    aspect: str
    value: Callable[[Context], Optional[float]]
    doc: str
    contexts: tuple[str, ...] = ("all",)
    context: Callable[[Context], str] = lambda ctx: "all"


#: Every term, by name. ``fit-feedback`` fits one cost table per term and context.
TERMS: dict[str, Term] = {
    "blur": Term("blur", lambda c: None if c.m("focus") is None else 100.0 - c.attributes["sharpness"],
                 "100 - sharpness"),
    "noise": Term("noise", _effective_noise, "luma noise sigma with half-weighted chroma, 8-bit levels"),
    "shadow_noise": Term("noise", _measure("noise_shadows"), "noise sigma in the shadows, 8-bit levels"),
    "dark": Term("underexposed", _measure("lightness_mean", -1.0, 100.0), "100 - mean L*",
                 ("flat", "ranged"), _tonal),
    "bright": Term("overexposed", _measure("lightness_mean"), "mean L*", ("flat", "ranged"), _tonal),
    "clipped": Term("clipped_highlights", _measure("highlights_clipped_pct"), "% of pixels clipped",
                    ("dark", "bright"), _scene_lightness),
    "crushed": Term("crushed_shadows", _measure("shadows_crushed_pct"), "% of pixels crushed to black",
                    ("no_sky", "sky"), _sky),
    "low_contrast": Term("low_contrast", _score("contrast"), "100 - contrast"),
    "dull": Term("dull_colors", lambda c: None if _num(c.m("colorfulness")) < 1.0 else 100.0 - c.attributes["colorfulness"],
                 "100 - colorfulness (not for black-and-white)"),
    "oversaturated": Term("oversaturated", _measure("colorfulness"), "Hasler-Suesstrunk colourfulness M"),
    "cast": Term("color_cast", _measure("cast_strength"), "colour-cast strength, Lab units"),
    "blockiness": Term("compression", _measure("blockiness"), "8x8 blockiness ratio"),
    "jpeg": Term("compression", _effective_jpeg, "100 - JPEG quality (the file's tables or its pixels, the lower)"),
}

#: Aspect -> the quality guard (`picinspector.scoring._quality.GUARDS`) whose drop counts as that
#: aspect's cost beyond the range the opinion data cover.
GUARDED = {"blur": "sharpness", "noise": "noise", "compression": "compression"}


def _guard_points(ctx: Context) -> dict[str, float]:
    """Points the classic quality guards take off for extreme blur, noise and JPEG: the quality
    before the guards times each guard's drop."""
    try:
        from ..scoring._quality import GUARDS
    except ImportError:  # pragma: no cover - scoring always ships with the package
        return {}
    factors = {}
    for aspect, name in GUARDED.items():
        guard = GUARDS.get(name)
        if guard is None:
            continue
        try:
            value = guard.value(ctx.measures, {**ctx.scores, **ctx.attributes})
        except (KeyError, TypeError):
            continue
        factors[aspect] = min(1.0, max(float(value), 1.0) / guard.knee) ** guard.power
    if not factors:
        return {}
    product = math.prod(factors.values())
    quality = _num(ctx.scores.get("quality"))
    before = min(100.0, quality / product) if product > 0 else 100.0
    return {aspect: before * (1.0 - f) for aspect, f in factors.items() if f < 1.0}


# --------------------------------------------------------------------------------------------------
# Assessment: measured cost per aspect, the quality deficit shared among them


@dataclass(frozen=True)
class Assessment:
    """One aspect of one photo: what it costs.

    ``cost``: MOS points from the calibration tables (and guards); ``points``: its share of the
    photo's quality deficit, what the severity is graded on.
    """

    aspect: str
    cost: float
    points: float


def assess(ctx: Context, cal: Calibration | None = None) -> tuple[list[Assessment], float]:
    """Each aspect's measured cost and attributed points (largest first), and the photo's deficit."""
    cal = cal or default_calibration()
    costs: dict[str, float] = {a: 0.0 for a in ASPECTS}
    for name, term in TERMS.items():
        value = term.value(ctx)
        if value is not None:
            costs[term.aspect] += cal.cost(name, value, term.context(ctx))
    for aspect, pts in _guard_points(ctx).items():
        costs[aspect] += pts
    quality = ctx.scores.get("quality")
    deficit = 0.0 if quality is None else max(0.0, cal.reference_quality - float(quality))
    total = sum(costs.values())
    scale = min(cal.max_scale, deficit / total) if total > 1e-9 else 0.0
    scale = max(scale, cal.measured_floor)
    out = [Assessment(a, c, c * scale) for a, c in costs.items() if c > 0]
    return sorted(out, key=lambda a: -a.points), deficit


# --------------------------------------------------------------------------------------------------
# Findings: words for each aspect (what was measured, what to do)


def _shutter(t: float) -> str:
    return f"1/{round(1 / t):.0f} s" if t < 0.5 else f"{t:g} s"


def _direction(angle_deg: float) -> str:
    """Words for a streak direction (degrees counter-clockwise from horizontal, [0, 180))."""
    a = angle_deg % 180

    def deg(x: float) -> str:
        n = round(x)  # an int: formatting the float itself printed -0.4 as "-0 degrees"
        return f"{n} degree{'' if abs(n) == 1 else 's'}"

    if min(a, 180 - a) < 10:
        return f"horizontally (about {deg(a if a < 90 else a - 180)})"
    if abs(a - 90) < 10:
        return f"vertically (about {deg(a)})"
    return f"along about {deg(a)}"


def _article(word: str) -> str:
    """"a" or "an" before ``word`` (by its first letter's sound; enough for colour names)."""
    return "an" if word[:1].lower() in "aeiou" else "a"


def _blur(ctx: Context, sev: str) -> Finding:
    m, exif = ctx.measures, ctx.exif
    kind = m.get("blur_kind")
    t = exif.get("exposure_time_s")
    if kind == "motion" and m.get("motion_blur_angle_deg") is not None:
        msg = f"Motion blur {_direction(m['motion_blur_angle_deg'])}"
        if t:
            msg += f" (shutter open {_shutter(t)})"
        focal = exif.get("focal_length_mm")
        limit = f"1/{max(60, round(2 * focal))} s or faster" if focal else "a faster shutter speed"
        tip = (f"Hold the camera steadier or use {limit} (raise ISO or add light to allow it); "
               "for a moving subject, pan with it or use burst mode.")
        return Finding("motion_blur", sev, msg, tip)
    width = m.get("edge_width_px")
    msg = "The photo is out of focus" if kind == "defocus" else "The photo is soft"
    detail = f"sharpness {ctx.attributes['sharpness']:.0f}/100"
    if width:
        detail = f"edges about {width:.1f} px wide at the working size, {detail}"
    tip = ("Focus on the subject (single-point autofocus, or tap to focus on a phone), check the focus at 100% "
           "before moving on, and clean the lens if everything looks hazy.")
    return Finding("defocus_blur" if kind == "defocus" else "soft", sev, f"{msg} ({detail})", tip)


def _noise(ctx: Context, sev: str) -> Finding:
    m, exif = ctx.measures, ctx.exif
    sigma = _num(m.get("noise_sigma"))
    shadows = m.get("noise_shadows")
    in_shadows = shadows is not None and shadows > 3.0 and shadows > 1.5 * sigma
    if in_shadows:
        msg = (f"Visible noise in the shadows (sigma {shadows:.1f} levels there, {sigma:.1f} overall, "
               "at the working size)")
    else:
        msg = f"Visible noise (sigma {sigma:.1f} levels at the working size)"
    if exif.get("iso"):
        msg += f" at ISO {exif['iso']}"
    chroma = _num(m.get("noise_chroma"))
    colour = chroma > 1.5 * sigma
    tip = ("Use a lower ISO with more light or a longer exposure on a support; "
           f"apply {'chroma' if colour else 'luminance'} noise reduction in editing"
           + (", and expose brighter: lifting shadows later multiplies their noise." if in_shadows else "."))
    return Finding("noise", sev, msg, tip)


def _dark(ctx: Context, sev: str) -> Finding:
    m = ctx.measures
    what = (f"mean lightness L* {m['lightness_mean']:.0f} of 100 ({_num(m.get('exposure_ev')):+.1f} EV from "
            f"mid-grey), tonal range {_num(m.get('contrast_range')):.2f}")
    intents = ctx.intent
    if "night" in intents:
        return Finding("underexposed", sev, f"Dark night shot: {what}",
                       "Use a tripod and a longer exposure (or a faster lens, or a higher ISO with noise "
                       "reduction); lift the shadows in editing while keeping the lights from clipping.")
    if "low_key" in intents:
        return Finding("underexposed", sev, f"Dark even for a low-key photo: {what}",
                       "Lift the exposure of the subject (+0.5 to +1 EV, or a light or reflector on it) and "
                       "keep the background dark; in editing, raise the mid-tones rather than the blacks.")
    indoors = max(ctx.p("indoor"), ctx.p("still_life"), ctx.p("human")) >= 0.3
    tip = ("Add light (a lamp or window light on the subject, or a reflector), or add exposure (+1 EV with "
           "exposure compensation); lift the exposure and shadows in editing." if indoors else
           "Add exposure (+1 EV or more with exposure compensation), add light, or lift the exposure and "
           "shadows in editing.")
    return Finding("underexposed", sev, f"Under-exposed: {what}", tip)


def _bright(ctx: Context, sev: str) -> Finding:
    m = ctx.measures
    L, clip, rng = m["lightness_mean"], _num(m.get("highlights_clipped_pct")), _num(m.get("contrast_range"))
    if clip >= 4.0:
        return Finding("overexposed", sev,
                       f"Over-exposed: mean lightness L* {L:.0f} of 100 ({_num(m.get('exposure_ev')):+.1f} EV from "
                       f"mid-grey) with {clip:.0f}% of the frame clipped",
                       "Reduce exposure (negative exposure compensation), meter on the highlights, or lower the "
                       "exposure in editing.")
    # Bright but hardly clipped: snow, fog, a white backdrop. Darkening would turn them grey; what is
    # missing is the dark end of the range.
    return Finding("overexposed", sev,
                   f"Washed out: bright (mean L* {L:.0f}) and flat (tonal range {rng:.2f}) with only {clip:.1f}% "
                   "clipped",
                   "Keep the exposure (snow, fog and white backdrops should stay bright) and set the black "
                   "point or add contrast (levels, a tone curve, or dehaze) so that the darkest parts are dark.")


def _clipped(ctx: Context, sev: str) -> Finding:
    pct = ctx.measures["highlights_clipped_pct"]
    tip = ("Expose for the highlights (-0.3 to -1 EV, or watch the histogram/zebras), bracket, or shoot RAW to "
           "recover them.")
    if "bright_sky" in ctx.intent:
        tip += " For a bright sky, a graduated filter or an HDR bracket keeps it and the land."
    return Finding("clipped_highlights", sev, f"{pct:.0f}% of the frame has clipped highlights", tip)


def _crushed(ctx: Context, sev: str) -> Finding:
    pct = ctx.measures["shadows_crushed_pct"]
    return Finding("crushed_shadows", sev, f"{pct:.0f}% of the frame is crushed to black",
                   "Give more exposure or fill light to the shadows, or use HDR/bracketing for high-contrast "
                   "scenes; nothing to do for an intended silhouette.")


def _low_contrast(ctx: Context, sev: str) -> Finding:
    m = ctx.measures
    msg = f"Flat, low contrast (RMS contrast {m['contrast_rms']:.2f}, tonal range {_num(m.get('contrast_range')):.2f})"
    if "snow_or_fog" in ctx.intent:
        return Finding("low_contrast", sev, msg,
                       "For snow or fog keep the exposure bright and add contrast with a tone curve or dehaze; "
                       "a darker subject in the frame gives the eye an anchor.")
    return Finding("low_contrast", sev, msg,
                   "Set the black and white points with levels or a tone curve; avoid haze and flare "
                   "(lens hood, clean lens, light from the side).")


def _dull(ctx: Context, sev: str) -> Finding:
    return Finding("dull_colors", sev, f"Dull, washed-out colours (colourfulness {ctx.measures['colorfulness']:.0f})",
                   "Raise vibrance or saturation a little, shoot in better light, or check for haze.")


def _oversaturated(ctx: Context, sev: str) -> Finding:
    return Finding("oversaturated", sev, f"Very saturated colours (colourfulness {ctx.measures['colorfulness']:.0f})",
                   "Lower saturation or vibrance; check skin tones and bright colours for lost detail.")


#: Hue sectors of the Lab (a*, b*) plane: upper bound in degrees -> colour name.
_CAST_NAMES = ((30, "magenta"), (75, "orange"), (115, "yellow"), (200, "green"), (245, "cyan"), (320, "blue"),
               (360, "magenta"))


def cast_name(hue_deg: float) -> str:
    """Everyday name of a colour cast from its hue angle atan2(b*, a*) in degrees."""
    for upper, name in _CAST_NAMES:
        if hue_deg % 360 < upper:
            return name
    return "magenta"


def _cast(ctx: Context, sev: str) -> Finding:
    m = ctx.measures
    name = cast_name(_num(m.get("cast_hue_deg")))
    return Finding("color_cast", sev,
                   f"{_article(name).capitalize()} {name} colour cast (a* {_num(m.get('cast_a')):+.0f}, "
                   f"b* {_num(m.get('cast_b')):+.0f})",
                   "Correct the white balance: set it for the light (or with a grey card), or pick a neutral "
                   "grey with the white-balance tool in editing. Ignore if the cast is the mood you wanted.")


def _compression(ctx: Context, sev: str) -> Finding:
    m = ctx.measures
    # The lower of the file's tables and the quantisation found in its pixels: a PNG copy of a
    # harsh JPEG, or a photo re-saved at a high quality after a low one, carries the harsher one.
    q, b = effective_jpeg_quality(m), m.get("blockiness")
    from_pixels = q is not None and q != m.get("jpeg_quality")
    where = ", read from the pixels: the photo was a JPEG at that quality before this file" if from_pixels else ""
    parts = []
    if q is not None and q < 70:
        parts.append(f"heavy JPEG compression (quality about {q:.0f}{where})")
    if b is not None:
        parts.append(f"8x8 blocking (blockiness {b:.2f})")
    if not parts and q is not None:
        parts.append(f"JPEG compression (quality about {q:.0f}{where})")
    msg = ", ".join(parts) or "compression artefacts"
    return Finding("compression", sev, msg[0].upper() + msg[1:],
                   "Export or save at JPEG quality 85-95 (or PNG/HEIC), and share the original rather than a "
                   "re-compressed copy.")


@dataclass(frozen=True)
class Aspect:
    """Words for one aspect: ``finding(ctx, severity) -> Finding``; ``label`` names its measured value
    in lists; ``worse`` compares it ("softer", "darker", ...)."""

    finding: Callable[[Context, str], Finding]
    label: Callable[[Context], str]
    worse: str = "worse"


def _label_blur(c: Context) -> str:
    w = c.m("edge_width_px")
    return f"sharpness {c.attributes['sharpness']:.0f}/100" + (f", edges {w:.1f} px wide" if w else "")


def _label(template: str, name: str) -> Callable[[Context], str]:
    return lambda c: template.format(_num(c.m(name)))


#: Every aspect, in the order equal costs are reported.
ASPECTS: dict[str, Aspect] = {
    "blur": Aspect(_blur, _label_blur, "softer"),
    "noise": Aspect(_noise, _label("noise sigma {:.1f} levels", "noise_sigma"), "noisier"),
    "underexposed": Aspect(_dark, _label("mean lightness L* {:.0f}", "lightness_mean"), "darker"),
    "overexposed": Aspect(_bright, _label("mean lightness L* {:.0f}", "lightness_mean"), "brighter"),
    "clipped_highlights": Aspect(_clipped, _label("{:.0f}% clipped highlights", "highlights_clipped_pct"),
                                 "more clipped"),
    "crushed_shadows": Aspect(_crushed, _label("{:.0f}% crushed shadows", "shadows_crushed_pct"), "more crushed"),
    "low_contrast": Aspect(_low_contrast, _label("RMS contrast {:.2f}", "contrast_rms"), "flatter"),
    "dull_colors": Aspect(_dull, _label("colourfulness {:.0f}", "colorfulness"), "duller"),
    "oversaturated": Aspect(_oversaturated, _label("colourfulness {:.0f}", "colorfulness"), "more saturated"),
    "color_cast": Aspect(_cast, _label("colour-cast strength {:.0f}", "cast_strength"), "more cast"),
    "compression": Aspect(_compression, _label("blockiness {:.2f}", "blockiness"), "more blocky"),
}

#: Aspect -> the term whose comparison with top-rated photos describes it in ``weak_aspects``.
_LEAD_TERM = {t.aspect: name for name, t in reversed(list(TERMS.items()))}


def _weak_aspects(ctx: Context, cal: Calibration, sev: str, deficit: float,
                  assessed: list[Assessment]) -> tuple[Finding, list[str]]:
    """The weakest measured aspects of a photo whose quality is low without one clear fault, and the
    aspects it names. They are the aspects with the most points; without any, the ones furthest
    from the photos people rate highest."""
    pcts: dict[str, float] = {}
    for aspect in ASPECTS:
        term = _LEAD_TERM[aspect]
        value = TERMS[term].value(ctx)
        entry = cal.terms.get(term)
        if entry is None or not any(max(t.cost) > 0 for t in entry.tables.values()):
            continue  # people's ratings do not follow this value: comparing it would mislead
        pct = None if value is None else entry.good_percentile(value)
        if pct is not None:
            pcts[aspect] = pct
    chosen = [a.aspect for a in assessed if a.points >= 1.0][:3]
    if not chosen:
        chosen = [a for a, _ in sorted(pcts.items(), key=lambda kv: -kv[1])][:2]
    words = []
    for aspect in chosen:
        text = ASPECTS[aspect].label(ctx)
        if aspect in pcts:
            text += f" ({ASPECTS[aspect].worse} than {pcts[aspect]:.0f}% of the photos people rate highest)"
        words.append(text)
    # e.g. "13 quality points below a photo without faults, with no single fault to blame; the weakest
    # measured aspects: blockiness 1.38 (more blocky than 86% of ...); 2% clipped highlights (...)"
    msg = f"{deficit:.0f} quality points below a photo without faults, with no single fault to blame"
    if words:
        msg += "; the weakest measured aspects: " + "; ".join(words)
    else:
        msg += "; every measured aspect is within the range of the photos people rate highest"
    tip = (ASPECTS[chosen[0]].finding(ctx, sev).suggestion if chosen else
           "Compare it with the best shots of the same kind: light, subject and composition matter as much as "
           "the technical aspects measured here.")
    return Finding("weak_aspects", sev, msg, tip), chosen


# --------------------------------------------------------------------------------------------------
# Findings that are not costs: blank frames, notes on focus, colour, resolution and intent


def _blank(ctx: Context) -> Finding:
    """A frame with no edges at all: say what it is from its lightness."""
    L = _num(ctx.m("lightness_mean"))
    if L >= 95:
        return Finding("no_detail", "severe", f"The frame is blank white (mean L* {L:.0f}, no edges anywhere)",
                       "Reduce the exposure a lot (several EV; check the flash, the ISO and a shutter left open) "
                       "or, for a scan or a white page, check that it was not blown out; nothing to fix if a plain "
                       "white frame was intended.")
    if L <= 5:
        return Finding("no_detail", "severe", f"The frame is black (mean L* {L:.0f}, no edges anywhere)",
                       "Check that the lens was uncovered and the scene lit; add light or much more exposure.")
    return Finding("no_detail", "severe", f"No edges or detail anywhere in the frame (a uniform L* {L:.0f})",
                   "Focus on something with contrast (an edge, a texture); for fog or a plain wall, include a "
                   "nearer subject.")


def _shallow_focus(ctx: Context) -> Finding | None:
    pct = ctx.m("sharp_area_pct")
    if pct is None or ctx.attributes.get("sharpness", 0.0) < 55 or pct >= 35:
        return None
    return Finding("shallow_focus", "info",
                   f"Only {pct:.0f}% of the textured frame is sharp (shallow depth of field or a missed focus point)",
                   "If the whole scene should be sharp, stop down (f/8-f/11) or focus a third of the way into it; "
                   "if the blur is meant as background separation, make sure the subject is the sharp part.")


def _monochrome(ctx: Context) -> Finding | None:
    if _num(ctx.m("colorfulness", 99.0)) >= 1.0:
        return None
    return Finding("monochrome", "info", "Black-and-white or neutral image", "Nothing to do if intended.")


#: Below this many megapixels a photo is small whatever it shows.
TINY_MP = 0.1


def _low_resolution(ctx: Context) -> Finding | None:
    """Resolution relative to the content: small only when the detail is cut off by the pixel grid
    (edges as thin as the pixels allow over a detailed frame), or when the photo is tiny."""
    w, h = ctx.width, ctx.height
    if not w or not h:
        return None
    mp = w * h / 1e6
    size = f"{w}x{h}, {mp:.2f} MP"
    if mp < TINY_MP:
        return Finding("low_resolution", "minor", f"Very small image ({size})",
                       "Use the original file if you have it; at this size focus, noise and fine detail cannot be "
                       "judged or seen.")
    width_px, density = ctx.m("edge_width_px"), _num(ctx.m("edge_density"))
    if max(w, h) < 1024 and width_px is not None and width_px <= 1.2 and density >= 0.06:
        return Finding("low_resolution", "info",
                       f"Small for its detail ({size}): edges are {width_px:.1f} px wide and the frame is full of "
                       f"fine detail (edge density {density:.2f}), so the pixel count cuts it off",
                       "Use a larger original or export at a higher resolution; this much fine texture needs more "
                       "pixels to show.")
    return None


#: From this cast strength (Lab units) on, a cast that costs little is still noted.
STRONG_CAST = 20.0


def _notes(ctx: Context, cal: Calibration, problems: list[Finding]) -> list[Finding]:
    """Info notes: an exposure that looks intended (so that no one "fixes" it), and a strong colour
    cast that costs little (warm or cool grading, the colour of the light)."""
    kinds = {f.kind for f in problems}
    flagged = {f.kind for f in problems if f.severity in ("moderate", "severe")}
    notes = []
    intents = ctx.intent
    if "low_key" in intents and "underexposed" not in flagged and "night" not in intents:
        notes.append(Finding("low_key", "info", f"Low-key: {intents['low_key']}",
                             "Nothing to do if the dark mood is intended; keep the subject's highlights bright."))
    if "overexposed" not in flagged:
        if "high_key" in intents:
            notes.append(Finding("high_key", "info", f"High-key: {intents['high_key']}",
                                 "Nothing to do if intended; do not darken it, or the whites turn grey."))
        elif "snow_or_fog" in intents:
            notes.append(Finding("high_key", "info", f"Bright and flat, as snow, fog or a white backdrop look: "
                                 f"{intents['snow_or_fog']}",
                                 "Keep the exposure bright (darkening turns snow and fog grey); if it looks flat, "
                                 "add contrast with a tone curve or dehaze rather than less exposure."))
    strength = _num(ctx.m("cast_strength"))
    if "color_cast" not in kinds and strength >= STRONG_CAST and ctx.m("cast_hue_deg") is not None:
        name = cast_name(_num(ctx.m("cast_hue_deg")))
        notes.append(Finding("color_cast", "info",
                             f"A strong {name} colour cast (a* {_num(ctx.m('cast_a')):+.0f}, b* "
                             f"{_num(ctx.m('cast_b')):+.0f}) that costs little quality: likely the light or a "
                             "warm or cool grade",
                             "Keep it if it is the mood you wanted; otherwise correct the white balance (a grey "
                             "card, or the white-balance picker on something neutral)."))
    return notes


# --------------------------------------------------------------------------------------------------
# Putting it together


#: An aspect with at least this share of a photo's measured cost (and a measured cost of at least
#: the minor threshold) is its main fault: when the quality is low, it is reported as moderate even
#: if its share of the deficit is a little less.
DOMINANT = 0.5


def findings_for(ctx: Context, cal: Calibration | None = None) -> list[Finding]:
    """All findings of a photo, worst first: problems by attributed points, then notes."""
    cal = cal or default_calibration()
    if ctx.m("focus") is None:
        found = [_blank(ctx)]
        return found + [f for f in (_monochrome(ctx),) if f]
    assessed, deficit = assess(ctx, cal)
    problems: list[Finding] = []
    problem_aspects: list[str] = []
    for a in assessed:
        sev = cal.grade(a.points)
        if sev is not None:
            problems.append(ASPECTS[a.aspect].finding(ctx, sev))
            problem_aspects.append(a.aspect)
    flagged = [f for f in problems if f.severity in ("moderate", "severe")]
    sev_deficit = cal.grade(deficit)
    if not flagged and sev_deficit in ("moderate", "severe"):
        total = sum(a.cost for a in assessed)
        top = assessed[0] if assessed else None
        if (top is not None and top.cost >= DOMINANT * total and top.cost >= cal.severity_points["minor"]
                and problem_aspects[:1] == [top.aspect]):
            # The quality is low and one aspect carries most of the measured cost: it is the reason.
            problems[0] = ASPECTS[top.aspect].finding(ctx, "moderate")
        else:
            # No aspect carries it: say which measured aspects are weakest, in one finding that
            # replaces their own minor ones.
            weak, named = _weak_aspects(ctx, cal, "moderate", deficit, assessed)
            problems = [weak] + [f for f, a in zip(problems, problem_aspects) if a not in named]
    notes = [f for f in (_shallow_focus(ctx), _low_resolution(ctx), _monochrome(ctx)) if f]
    notes += _notes(ctx, cal, problems)
    ordered = sorted(problems, key=lambda f: -SEVERITIES.index(f.severity))  # stable: by points within
    return ordered + sorted(notes, key=lambda f: -SEVERITIES.index(f.severity))


def findings_from_row(row: Mapping[str, Any], scores: Mapping[str, float] | None = None,
                      cal: Calibration | None = None) -> list[Finding]:
    """The findings for a cached report row (``analyze -o rows.jsonl``), with the current rules."""
    return findings_for(Context.from_row(row, scores), cal)


#: Quality bands for the verdict, best first.
_VERDICTS = ((80, "excellent"), (65, "good"), (50, "fair"), (35, "poor"), (0, "bad"))

#: The best verdict a photo can get while it has a finding of this severity.
_VERDICT_CAP = {"severe": "fair", "moderate": "good"}


def verdict(quality: float, worst: str | None = None) -> str:
    """The word for a quality score, no better than the worst finding's severity allows."""
    words = [word for _, word in _VERDICTS]
    word = next(word for floor, word in _VERDICTS if quality >= floor)
    cap = _VERDICT_CAP.get(worst or "")
    return word if cap is None else words[max(words.index(word), words.index(cap))]


def paragraph(quality: float, findings: list[Finding]) -> str:
    """The feedback paragraph: the verdict, the worst findings, and the first fix."""
    problems = [f for f in findings if f.severity != "info"]  # worst first
    text = f"Overall quality {quality:.0f}/100 ({verdict(quality, problems[0].severity if problems else None)})."
    if problems:
        msgs = [problems[0].message] + [f.message[0].lower() + f.message[1:] for f in problems[1:3]]
        text += " " + (" and ".join(msgs[:2]) if len(msgs) <= 2 else f"{msgs[0]}, {msgs[1]} and {msgs[2]}")
        if len(problems) > 3:
            text += f" ({len(problems) - 3} more finding{'s' if len(problems) > 4 else ''} below)"
        text += f". First fix: {problems[0].suggestion[0].lower()}{problems[0].suggestion[1:]}"
    else:
        text += " No fault that costs it noticeable quality was found."
    return text


def write(photo: Any, measures: dict[str, Any], scores: dict[str, float], scene: SceneResult,
          calibration: Calibration | None = None) -> tuple[list[Finding], str]:
    """Findings and a short paragraph grounded only in what was measured (the ``rules`` writer).

    The rules read the measures and scores as the report stores them (6 significant digits, scores
    to 0.1), so re-running them over a stored report row gives the same findings."""
    stored = json_safe(measures, digits=6)
    rounded = {k: round(float(v), 1) for k, v in scores.items()}
    findings = findings_for(Context.from_photo(photo, stored, rounded, scene), calibration)
    return findings, paragraph(rounded["quality"], findings)


@dataclass
class RulesWriter:
    """The ``rules`` writer with a calibration of its own (`write` uses the shipped one)."""

    calibration: Calibration

    def __call__(self, photo: Any, measures: dict[str, Any], scores: dict[str, float],
                 scene: SceneResult) -> tuple[list[Finding], str]:
        return write(photo, measures, scores, scene, self.calibration)
