"""Grounded, rule-based feedback: every sentence comes from a measured number.

Each rule looks at the measures (and EXIF where it says so) and returns a `Finding` with a kind, a
severity, a message stating what was measured, and a concrete suggestion, or ``None``. Rules are
entries in the `RULES` table; the paragraph is assembled from the findings, worst first.
"""

from __future__ import annotations

from typing import Any, Callable, Optional

from ..io import Photo
from ..measures._compression import effective_jpeg_quality
from ..report import SEVERITIES, Finding, SceneResult

Ctx = dict[str, Any]  # {"m": measures, "s": scores, "exif": exif, "photo": Photo}
Rule = Callable[[Ctx], Optional[Finding]]


def _grade(value: float, minor: float, moderate: float, severe: float) -> str | None:
    """Severity for a value where larger is worse; None below ``minor``."""
    if value >= severe:
        return "severe"
    if value >= moderate:
        return "moderate"
    if value >= minor:
        return "minor"
    return None


def _shutter(t: float) -> str:
    return f"1/{round(1 / t):.0f} s" if t < 0.5 else f"{t:g} s"


def _direction(angle_deg: float) -> str:
    """Words for a streak direction (degrees counter-clockwise from horizontal, [0, 180))."""
    a = angle_deg % 180

    def deg(x: float) -> str:
        return f"{x:.0f} degree{'' if abs(round(x)) == 1 else 's'}"

    if min(a, 180 - a) < 10:
        return f"horizontally (about {deg(a if a < 90 else a - 180)})"
    if abs(a - 90) < 10:
        return f"vertically (about {deg(a)})"
    return f"along about {deg(a)}"


def blur(ctx: Ctx) -> Finding | None:
    m, s, exif = ctx["m"], ctx["s"], ctx["exif"]
    if m.get("focus") is None:
        return Finding("no_detail", "severe", "No edges or detail anywhere in the frame (nothing to be sharp)",
                       "Check that the lens was uncovered and the subject lit; focus on something with contrast.")
    sev = _grade(100 - s["sharpness"], 45, 60, 75)
    if sev is None:
        return None
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
    if width:
        msg += f" (edges about {width:.1f} px wide at the working size)"
    tip = ("Focus on the subject (single-point autofocus, or tap to focus on a phone), check the focus at 100% "
           "before moving on, and clean the lens if everything looks hazy.")
    return Finding("defocus_blur" if kind == "defocus" else "soft", sev, msg, tip)


def partial_focus(ctx: Ctx) -> Finding | None:
    m, s = ctx["m"], ctx["s"]
    pct = m.get("sharp_area_pct")
    if pct is None or s["sharpness"] < 55 or pct >= 35:
        return None
    return Finding("shallow_focus", "info",
                   f"Only {pct:.0f}% of the textured frame is sharp (shallow depth of field or a missed focus point)",
                   "If the whole scene should be sharp, stop down (f/8-f/11) or focus a third of the way into it; "
                   "if the blur is meant as background separation, make sure the subject is the sharp part.")


def noise(ctx: Ctx) -> Finding | None:
    m, s, exif = ctx["m"], ctx["s"], ctx["exif"]
    sev = _grade(100 - s["noisiness"], 35, 55, 75)
    shadows = m.get("noise_shadows")
    in_shadows = shadows is not None and shadows > 3.0 and shadows > 1.5 * (m["noise_sigma"] or 0.0)
    if sev is None and not in_shadows:
        return None
    sev = sev or "minor"
    where = "visible noise in the shadows" if in_shadows else "visible noise"
    msg = f"{where[0].upper()}{where[1:]} (sigma {m['noise_sigma']:.1f} levels at the working size)"
    if exif.get("iso"):
        msg += f" at ISO {exif['iso']}"
    chroma = m.get("noise_chroma") or 0.0
    kind = "colour noise" if chroma > 1.5 * (m["noise_sigma"] or 0.0) else "noise"
    tip = ("Use a lower ISO with more light or a longer exposure on a support; "
           f"apply {'chroma' if kind == 'colour noise' else 'luminance'} noise reduction in editing"
           + (", and expose brighter: lifting shadows later multiplies their noise." if in_shadows else "."))
    return Finding("noise", sev, msg, tip)


def dark(ctx: Ctx) -> Finding | None:
    m = ctx["m"]
    sev = _grade(-m["lightness_mean"], -32, -24, -15)
    if sev is None:
        return None
    return Finding("underexposed", sev,
                   f"Under-exposed: mean lightness L* {m['lightness_mean']:.0f} of 100 "
                   f"({m['exposure_ev']:+.1f} EV from mid-grey)",
                   "Add exposure (+1 EV or more with exposure compensation), add light, or lift the exposure and "
                   "shadows in editing.")


def bright(ctx: Ctx) -> Finding | None:
    m = ctx["m"]
    sev = _grade(m["lightness_mean"], 72, 80, 88)
    if sev is None:
        return None
    return Finding("overexposed", sev,
                   f"Over-exposed: mean lightness L* {m['lightness_mean']:.0f} of 100 "
                   f"({m['exposure_ev']:+.1f} EV from mid-grey)",
                   "Reduce exposure (negative exposure compensation), meter on the highlights, or lower the "
                   "exposure in editing.")


def clipped_highlights(ctx: Ctx) -> Finding | None:
    pct = ctx["m"]["highlights_clipped_pct"]
    sev = _grade(pct, 1.0, 4.0, 12.0)
    if sev is None:
        return None
    return Finding("clipped_highlights", sev, f"{pct:.0f}% of the frame has clipped highlights",
                   "Expose for the highlights (-0.3 to -1 EV, or watch the histogram/zebras), bracket, or shoot "
                   "RAW to recover them.")


def crushed_shadows(ctx: Ctx) -> Finding | None:
    pct = ctx["m"]["shadows_crushed_pct"]
    sev = _grade(pct, 5.0, 20.0, 40.0)  # dark backgrounds are often wanted: grade gently
    if sev is None:
        return None
    return Finding("crushed_shadows", sev, f"{pct:.0f}% of the frame is crushed to black",
                   "Give more exposure or fill light to the shadows, or use HDR/bracketing for high-contrast scenes.")


def low_contrast(ctx: Ctx) -> Finding | None:
    m, s = ctx["m"], ctx["s"]
    sev = _grade(100 - s["contrast"], 62, 72, 85)
    if sev is None:
        return None
    return Finding("low_contrast", sev, f"Flat, low contrast (RMS contrast {m['contrast_rms']:.2f})",
                   "Set the black and white points with levels or a tone curve; avoid haze and flare "
                   "(lens hood, clean lens, light from the side).")


def dull_colors(ctx: Ctx) -> Finding | None:
    m, s = ctx["m"], ctx["s"]
    if m["colorfulness"] < 1.0:
        return Finding("monochrome", "info", "Black-and-white or neutral image", "Nothing to do if intended.")
    sev = _grade(100 - s["colorfulness"], 75, 85, 93)
    if sev is None:
        return None
    return Finding("dull_colors", sev, f"Dull, washed-out colours (colourfulness {m['colorfulness']:.0f})",
                   "Raise vibrance or saturation a little, shoot in better light, or check for haze.")


def oversaturated(ctx: Ctx) -> Finding | None:
    m = ctx["m"]
    sev = _grade(m["colorfulness"], 110, 135, 160)
    if sev is None:
        return None
    return Finding("oversaturated", sev, f"Very saturated colours (colourfulness {m['colorfulness']:.0f})",
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


def color_cast(ctx: Ctx) -> Finding | None:
    m = ctx["m"]
    strength = m.get("cast_strength") or 0.0
    sev = _grade(strength, 6.0, 10.0, 18.0)
    if sev is None or m.get("cast_hue_deg") is None:
        return None
    name = cast_name(m["cast_hue_deg"])
    return Finding("color_cast", sev,
                   f"A {name} colour cast (a* {m['cast_a']:+.0f}, b* {m['cast_b']:+.0f})",
                   "Correct the white balance: set it for the light (or with a grey card), or pick a neutral "
                   "grey with the white-balance tool in editing. Ignore if the cast is the mood you wanted.")


def compression(ctx: Ctx) -> Finding | None:
    m = ctx["m"]
    # The lower of the file's tables and the quantisation found in its pixels: a PNG copy of a
    # harsh JPEG, or a photo re-saved at a high quality after a low one, carries the harsher one.
    q, b = effective_jpeg_quality(m), m.get("blockiness")
    from_pixels = q is not None and q != m.get("jpeg_quality")
    sev_q = _grade(-q, -70, -50, -30) if q is not None else None
    sev_b = _grade(b, 1.25, 1.5, 2.0) if b is not None else None
    if sev_q is None and sev_b is None:
        return None
    sev = max((x for x in (sev_q, sev_b) if x), key=SEVERITIES.index)
    parts = []
    if sev_q:
        parts.append(f"Heavy JPEG compression (quality about {q:.0f}"
                     + (", read from the pixels: the photo was a JPEG at that quality before this file)"
                        if from_pixels else ")"))
    if sev_b:
        parts.append(f"visible 8x8 blocking (blockiness {b:.2f})")
    msg = ", ".join(parts)
    return Finding("compression", sev, msg[0].upper() + msg[1:],
                   "Export or save at JPEG quality 85-95 (or PNG/HEIC), and share the original rather than a "
                   "re-compressed copy.")


def low_resolution(ctx: Ctx) -> Finding | None:
    photo: Photo = ctx["photo"]
    mp = photo.width * photo.height / 1e6
    if mp >= 0.5:
        return None
    return Finding("low_resolution", "info", f"Low resolution ({photo.width}x{photo.height}, {mp:.2f} MP)",
                   "Use the original file if you have it; small images hide focus and noise problems.")


#: Every rule, in the order findings of equal severity are reported.
RULES: dict[str, Rule] = {
    "blur": blur,
    "noise": noise,
    "underexposed": dark,
    "overexposed": bright,
    "clipped_highlights": clipped_highlights,
    "crushed_shadows": crushed_shadows,
    "low_contrast": low_contrast,
    "dull_colors": dull_colors,
    "oversaturated": oversaturated,
    "color_cast": color_cast,
    "compression": compression,
    "partial_focus": partial_focus,
    "low_resolution": low_resolution,
}

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


def findings_for(photo: Photo, measures: dict[str, Any], scores: dict[str, float]) -> list[Finding]:
    """All findings, worst first (stable within a severity)."""
    ctx: Ctx = {"m": measures, "s": scores, "exif": photo.exif, "photo": photo}
    found = [f for rule in RULES.values() if (f := rule(ctx)) is not None]
    return sorted(found, key=lambda f: -SEVERITIES.index(f.severity))


def write(photo: Photo, measures: dict[str, Any], scores: dict[str, float],
          scene: SceneResult) -> tuple[list[Finding], str]:
    """Findings and a short paragraph grounded only in what was measured."""
    findings = findings_for(photo, measures, scores)
    q = scores["quality"]
    problems = [f for f in findings if f.severity != "info"]  # worst first
    text = f"Overall quality {q:.0f}/100 ({verdict(q, problems[0].severity if problems else None)})."
    if problems:
        msgs = [problems[0].message] + [f.message[0].lower() + f.message[1:] for f in problems[1:3]]
        text += " " + (" and ".join(msgs[:2]) if len(msgs) <= 2 else f"{msgs[0]}, {msgs[1]} and {msgs[2]}")
        if len(problems) > 3:
            text += f" ({len(problems) - 3} more finding{'s' if len(problems) > 4 else ''} below)"
        text += f". First fix: {problems[0].suggestion[0].lower()}{problems[0].suggestion[1:]}"
    else:
        text += " Well exposed, sharp and clean: no problems found."
    return findings, text
