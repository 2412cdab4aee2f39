"""Rule-based feedback: grounded findings whose severities follow the calibrated cost of each fault.

Two kinds of tests: the mechanics with a calibration the test writes (known tables), and properties of
the shipped calibration on measure dicts and on synthetic images the tests make.
"""

import io
import json
import re

import numpy as np
import pytest
from PIL import Image, ImageFilter

from picinspector.feedback import FEEDBACK_WRITERS, rules
from picinspector.feedback.calibration import (Calibration, CalibrationError, CostTable, TermCalibration,
                                               default_calibration)
from picinspector.io import Photo
from picinspector.report import SEVERITIES, SceneResult
from picinspector.scoring import attribute_scores

CLEAN = {
    "lightness_mean": 52.0, "lightness_median": 50.0, "highlights_clipped_pct": 0.2, "shadows_crushed_pct": 0.5,
    "exposure_ev": -0.6, "dynamic_range_ev": 7.0, "colorfulness": 45.0, "saturation_mean": 0.25,
    "cast_a": 0.5, "cast_b": 1.0, "cast_strength": 1.1, "cast_hue_deg": 63.0,
    "contrast_rms": 0.22, "contrast_range": 0.8, "contrast_local": 0.25,
    "noise_sigma": 0.9, "noise_sigma_native": None, "noise_chroma": 0.6, "noise_shadows": 1.0, "noise_snr_db": 40.0,
    "focus": 0.8, "focus_native": None, "edge_width_px": 1.6, "blur_kind": "sharp", "motion_blur_angle_deg": None,
    "blur_anisotropy": 0.1, "focus_map": [[0.8] * 4] * 4, "sharp_area_pct": 90.0,
    "jpeg_quality": 92, "blockiness": 1.0, "edge_density": 0.03, "sky_fraction": 0.0, "point_lights": 0,
    "exif_low_light": 0.0,
}
SCENE = SceneResult("landscape", {"landscape": 1.0}, "cues", 1.0)
FLAGGED = ("moderate", "severe")


def _table(*points):
    xs, cs = zip(*points)
    return CostTable(tuple(map(float, xs)), tuple(map(float, cs)))


def _calibration() -> Calibration:
    """Known tables: blur costs up to 30 points, blocking 20, a dark flat frame 25 (a low-key one 3),
    a cast at most 2."""
    good = tuple(np.linspace(0, 40, 11))
    return Calibration(terms={
        "blur": TermCalibration({"all": _table((20, 0), (40, 5), (80, 30))}, 20.0, good),
        "blockiness": TermCalibration({"all": _table((1.2, 0), (1.6, 8), (2.2, 20))}, 1.2,
                                      tuple(np.linspace(1.0, 1.4, 11))),
        "dark": TermCalibration({"flat": _table((50, 0), (85, 25)), "ranged": _table((50, 0), (85, 3))}, 50.0),
        "cast": TermCalibration({"all": _table((5, 0), (40, 2))}, 5.0),
        "clipped": TermCalibration({"dark": _table((1, 0), (30, 12)), "bright": _table((1, 0), (30, 6))}, 1.0),
        "low_contrast": TermCalibration({"all": _table((40, 0), (90, 10))}, 40.0, tuple(np.linspace(5, 40, 11))),
    }, reference_quality=70.0, max_scale=2.0)


CAL = _calibration()


def scores_for(m, quality):
    return {"quality": quality, **attribute_scores(m)}


def feedback(quality=70.0, exif=None, size=(3000, 2000), scene=SCENE, cal=CAL, **changes):
    m = {**CLEAN, **changes}
    photo = Photo(rgb=np.zeros((8, 12, 3), np.float32), width=size[0], height=size[1], exif=exif or {})
    return rules.write(photo, m, scores_for(m, quality), scene, cal)


def kinds(findings, severities=SEVERITIES):
    return {f.kind for f in findings if f.severity in severities}


# --- the mechanics: costs, attribution, severity ----------------------------------------------------


def test_a_photo_at_the_reference_quality_has_no_problems():
    findings, text = feedback(quality=75.0)
    assert [f for f in findings if f.severity != "info"] == []
    assert "No fault" in text


def test_a_fault_on_a_photo_people_still_rate_highly_is_not_flagged():
    """Blocking measured, but the quality (what people would say) is near the reference: the deficit
    is small, so the finding is at most minor; with a low quality it is the reason, and severe."""
    findings, _ = feedback(quality=66.0, blockiness=1.6)
    assert not kinds(findings, FLAGGED) and "compression" in kinds(findings)
    findings, _ = feedback(quality=40.0, blockiness=1.6)
    f = next(f for f in findings if f.kind == "compression")
    assert f.severity == "severe" and "blockiness 1.60" in f.message


def test_a_large_measured_cost_is_reported_even_when_the_quality_does_not_drop():
    """At least `measured_floor` of the measured cost counts: 20 points of blocking give 10."""
    findings, _ = feedback(quality=75.0, blockiness=2.2)
    assert next(f for f in findings if f.kind == "compression").severity == "moderate"
    no_floor = Calibration(terms=CAL.terms, reference_quality=70.0, measured_floor=0.0)
    assert not kinds(feedback(quality=75.0, blockiness=2.2, cal=no_floor)[0], FLAGGED)


def test_first_fix_is_what_costs_the_most_quality():
    """Blur costs more than a cast here: blur comes first even though a cast is measured too."""
    findings, text = feedback(quality=35.0, focus=0.15, blur_kind="defocus", edge_width_px=4.2, cast_strength=30.0,
                              cast_a=20.0, cast_b=22.0, cast_hue_deg=48.0)
    assert findings[0].kind == "defocus_blur" and "4.2 px" in findings[0].message
    assert "First fix: focus on the subject" in text
    cast = [f for f in findings if f.kind == "color_cast"]
    assert not cast or SEVERITIES.index(cast[0].severity) < SEVERITIES.index(findings[0].severity)


def test_points_never_exceed_the_deficit_and_a_low_quality_photo_always_hears_why():
    """Property over random measures and qualities: an aspect's points are its share of the deficit
    (at most the deficit) or the floor share of its measured cost; a deficit of at least the
    moderate threshold always gives a moderate or severe finding, and otherwise only a measured cost
    large enough on its own does."""
    rng = np.random.default_rng(1)
    for _ in range(300):
        m = {**CLEAN, "focus": float(rng.uniform(0.05, 1.0)), "blockiness": float(rng.uniform(1.0, 2.5)),
             "lightness_mean": float(rng.uniform(5, 90)), "contrast_range": float(rng.uniform(0.2, 1.0)),
             "cast_strength": float(rng.uniform(0, 40)), "highlights_clipped_pct": float(rng.uniform(0, 40)),
             "contrast_rms": float(rng.uniform(0.02, 0.35))}
        quality = float(rng.uniform(10, 95))
        ctx = rules.Context(m, scores_for(m, quality), SCENE, 1000, 800, {})
        assessed, deficit = rules.assess(ctx, CAL)
        assert deficit == pytest.approx(max(0.0, 70.0 - quality))
        floor = CAL.measured_floor
        assert all(a.points <= max(deficit, floor * a.cost) + 1e-9 and a.points >= floor * a.cost - 1e-9
                   and a.points <= CAL.max_scale * a.cost + 1e-9 for a in assessed)
        assert [a.points for a in assessed] == sorted((a.points for a in assessed), reverse=True)
        findings = rules.findings_for(ctx, CAL)
        flagged = [f for f in findings if f.severity in FLAGGED]
        moderate = CAL.severity_points["moderate"]
        expected = deficit >= moderate or any(floor * a.cost >= moderate for a in assessed)
        assert bool(flagged) == expected, (m, quality, findings)
        order = [SEVERITIES.index(f.severity) for f in findings]
        assert order == sorted(order, reverse=True)
        assert all(f.message and f.suggestion for f in findings)


def test_severity_grows_with_the_fault():
    sev = []
    for focus in (0.8, 0.5, 0.35, 0.25, 0.15):
        m = {**CLEAN, "focus": focus, "blur_kind": "defocus"}
        found = rules.findings_for(rules.Context(m, scores_for(m, 30.0), SCENE, 1000, 800, {}), CAL)
        blur = [f for f in found if f.kind == "defocus_blur"]
        sev.append(SEVERITIES.index(blur[0].severity) if blur else -1)
    assert sev == sorted(sev) and sev[0] < sev[-1]


def test_weak_aspects_names_measured_values_when_no_single_fault_carries_the_deficit():
    findings, text = feedback(quality=45.0)  # clean measures, low quality: nothing to blame directly
    f = findings[0]
    assert f.kind == "weak_aspects" and f.severity in FLAGGED
    assert f.message.startswith("25 quality points below") and re.search(r"\d", f.message.split(":", 1)[1])
    assert "low quality" not in f.message.lower() and f.suggestion


def test_findings_never_change_the_scores():
    from picinspector import Inspector

    rgb = np.random.default_rng(0).uniform(0, 1, (64, 96, 3)).astype(np.float32)
    with Inspector(threads=1) as a, Inspector(threads=1, feedback_options={"calibration": CAL}) as b:
        ra, rb = a.analyze(rgb), b.analyze(rgb)
    assert ra.scores == rb.scores


# --- intent and scene --------------------------------------------------------------------------------


def test_low_key_is_not_under_exposure_but_a_flat_dark_frame_is():
    dark = {"lightness_mean": 15.0, "exposure_ev": -2.8}
    flat, _ = feedback(quality=50.0, contrast_range=0.35, **dark)
    assert "underexposed" in kinds(flat, FLAGGED)
    lowkey, _ = feedback(quality=50.0, contrast_range=0.9, **dark)
    assert "underexposed" not in kinds(lowkey, FLAGGED)
    assert "low_key" in kinds(lowkey)


def test_a_dark_food_photo_is_not_told_it_is_a_night_shot():
    """The engine's scene may say night for a dark still life; without lights it is not one."""
    scene = SceneResult("night", {"night": 0.6, "still_life": 0.3}, "cues", 0.6)
    found, _ = feedback(quality=30.0, scene=scene, contrast_range=0.4, lightness_mean=14.0, exposure_ev=-3.0)
    dark = next(f for f in found if f.kind == "underexposed")
    assert "night" not in dark.message.lower() and "tripod" not in dark.suggestion
    assert "light" in dark.suggestion.lower()
    found, _ = feedback(quality=30.0, scene=scene, contrast_range=0.4, lightness_mean=14.0, exposure_ev=-3.0,
                        point_lights=12)
    assert "night" in next(f for f in found if f.kind == "underexposed").message.lower()


def test_terms_read_the_measures_not_the_engines_attribute_scores():
    """Another engine's sharpness (a deep model's) does not move the calibrated blur cost: the tables
    were fitted on the classic curves of the measures."""
    m = {**CLEAN, "focus": 0.15, "blur_kind": "defocus"}
    classic = rules.Context(m, scores_for(m, 30.0), SCENE, 1000, 800, {})
    deep = rules.Context(m, {**scores_for(m, 30.0), "sharpness": 95.0}, SCENE, 1000, 800, {})
    assert rules.assess(classic, CAL) == rules.assess(deep, CAL)
    assert rules.findings_for(classic, CAL) == rules.findings_for(deep, CAL)


def test_a_missing_calibration_file_degrades_with_a_warning(monkeypatch, tmp_path):
    from picinspector.feedback import calibration

    monkeypatch.setattr(calibration, "DEFAULT_CALIBRATION", tmp_path / "gone.json")
    calibration._missing.cache_clear()
    with pytest.warns(RuntimeWarning, match="not calibrated"):
        cal = calibration.default_calibration()
    assert cal.terms == {}
    m = {**CLEAN, "focus": 0.1, "blur_kind": "defocus"}
    found = rules.findings_for(rules.Context(m, scores_for(m, 20.0), SCENE, 1000, 800, {}), cal)
    assert found and found[0].severity in FLAGGED  # a low quality still hears why (the guard's blur cost)
    calibration._missing.cache_clear()


def test_scene_comes_from_whichever_engine_ran():
    ctx = rules.Context.from_row({"measures": CLEAN, "scores": scores_for(CLEAN, 60.0), "width": 10, "height": 10,
                                  "scene": {"label": "night", "probabilities": {"night": 0.9}, "method": "effnet",
                                            "confidence": 0.9}})
    assert ctx.scene.method == "effnet" and ctx.p("night") == 0.9 and ctx.p("indoor") == 0.0


def test_snow_or_fog_is_never_told_to_reduce_exposure():
    snow = {"lightness_mean": 88.0, "exposure_ev": 2.0, "contrast_range": 0.45, "saturation_mean": 0.04,
            "highlights_clipped_pct": 0.6, "contrast_rms": 0.08, "colorfulness": 4.0}
    for quality in (20.0, 45.0, 80.0):
        for cal in (CAL, default_calibration()):
            found, text = feedback(quality=quality, cal=cal, **snow)
            assert not any("reduce exposure" in f.suggestion.lower() or "reduce the exposure" in f.suggestion.lower()
                           for f in found), found
            assert "reduce exposure" not in text.lower()


# --- the defects: wording and grounding ----------------------------------------------------------


@pytest.mark.parametrize("hue,name", [(270, "blue"), (90, "yellow"), (180, "green"), (5, "magenta"),
                                      (50, "orange"), (225, "cyan")])
def test_cast_names(hue, name):
    assert rules.cast_name(hue) == name


def test_an_orange_cast_takes_an():
    cal = Calibration(terms={"cast": TermCalibration({"all": _table((5, 0), (40, 30))}, 5.0)}, reference_quality=70.0)
    found, _ = feedback(quality=30.0, cal=cal, cast_a=12.0, cast_b=10.0, cast_strength=30.0, cast_hue_deg=50.0)
    f = next(f for f in found if f.kind == "color_cast")
    assert f.message.startswith("An orange colour cast (a* +12, b* +10)")
    found, _ = feedback(quality=30.0, cal=cal, cast_a=-2.0, cast_b=-30.0, cast_strength=30.0, cast_hue_deg=262.0)
    assert next(f for f in found if f.kind == "color_cast").message.startswith("A blue colour cast")


def test_shadow_noise_quotes_the_shadow_noise_it_measured():
    cal = Calibration(terms={"shadow_noise": TermCalibration({"all": _table((1, 0), (8, 30))}, 1.0)},
                      reference_quality=70.0)
    found, text = feedback(quality=30.0, cal=cal, exif={"iso": 3200}, noise_sigma=0.5, noise_shadows=6.4)
    f = next(f for f in found if f.kind == "noise")
    assert "shadows" in f.message and "sigma 6.4 levels there" in f.message and "0.5 overall" in f.message
    assert "ISO 3200" in f.message and "expose brighter" in f.suggestion


def test_motion_blur_reports_angle_shutter_and_a_faster_speed():
    found, text = feedback(quality=30.0, exif={"exposure_time_s": 1 / 15, "focal_length_mm": 50}, focus=0.15,
                           blur_kind="motion", motion_blur_angle_deg=30.4)
    f = next(f for f in found if f.kind == "motion_blur")
    assert "about 30 degrees" in f.message and "1/15 s" in f.message and "1/100 s" in f.suggestion
    assert f.severity in FLAGGED and text.count("Motion blur along about 30 degrees") == 1


def test_compression_read_from_the_pixels_of_a_lossless_copy():
    """A PNG of a quality-15 JPEG has no tables; the quantisation found in its pixels is reported."""
    cal = Calibration(terms={"jpeg": TermCalibration({"all": _table((10, 0), (85, 30))}, 1.0)}, reference_quality=70.0)
    found, _ = feedback(quality=30.0, cal=cal, jpeg_quality=None, jpeg_quality_pixels=15)
    f = next(f for f in found if f.kind == "compression")
    assert "quality about 15" in f.message and "pixels" in f.message and f.severity in FLAGGED
    # re-saved at 95 after 40: the harsher past compression counts, and is the one quoted
    found, _ = feedback(quality=30.0, cal=cal, jpeg_quality=95, jpeg_quality_pixels=40)
    assert "quality about 40" in next(f for f in found if f.kind == "compression").message
    assert "compression" not in kinds(feedback(quality=80.0, cal=cal, jpeg_quality=92, jpeg_quality_pixels=100)[0])


@pytest.mark.parametrize("angle,words", [(1.0, "horizontally (about 1 degree)"), (178.0, "horizontally (about -2"),
                                         (179.622, "horizontally (about 0 degrees)"), (0.3, "(about 0 degrees)"),
                                         (92.0, "vertically (about 92"), (45.0, "along about 45 degrees")])
def test_motion_direction_words(angle, words):
    found, _ = feedback(quality=30.0, focus=0.15, blur_kind="motion", motion_blur_angle_deg=angle)
    assert words in next(f for f in found if f.kind == "motion_blur").message


def test_blank_frames_say_what_they_are():
    blank = {"focus": None, "blur_kind": None, "edge_width_px": None, "sharp_area_pct": None,
             "focus_map": [[None] * 4] * 4}
    white, _ = feedback(quality=20.0, lightness_mean=100.0, highlights_clipped_pct=100.0, **blank)
    assert white[0].kind == "no_detail" and "blank white" in white[0].message
    assert "lens was uncovered" not in white[0].suggestion and "exposure" in white[0].suggestion.lower()
    black, _ = feedback(quality=20.0, lightness_mean=0.5, **blank)
    assert "black" in black[0].message and "lens" in black[0].suggestion
    assert attribute_scores({**CLEAN, "focus": None})["sharpness"] == 0.0


def test_an_all_white_image_end_to_end():
    import picinspector

    report = picinspector.analyze(np.ones((120, 160, 3), np.float32))
    assert report.findings[0].kind == "no_detail"
    assert "lens was uncovered" not in " ".join(f.suggestion for f in report.findings)
    assert "white" in report.findings[0].message


def test_verdict_is_capped_by_the_worst_finding():
    assert rules.verdict(90) == "excellent"
    assert rules.verdict(90, "minor") == "excellent"
    assert rules.verdict(90, "moderate") == "good"
    assert rules.verdict(90, "severe") == "fair"
    assert rules.verdict(20, "severe") == "bad"  # a cap never lifts


# --- resolution relative to content --------------------------------------------------------------


def test_resolution_is_relative_to_the_content():
    assert "low_resolution" not in kinds(feedback(size=(512, 512))[0])
    detailed, _ = feedback(size=(512, 512), edge_width_px=1.0, edge_density=0.09)
    f = next(f for f in detailed if f.kind == "low_resolution")
    assert f.severity == "info" and "512x512" in f.message and "1.0 px" in f.message
    assert "low_resolution" not in kinds(feedback(size=(3000, 2000), edge_width_px=1.0, edge_density=0.09)[0])
    tiny, _ = feedback(size=(320, 240))
    assert next(f for f in tiny if f.kind == "low_resolution").severity == "minor"


# --- the calibration file ------------------------------------------------------------------------


def test_calibration_round_trip_and_bad_files(tmp_path):
    path = tmp_path / "cal.json"
    CAL.save(path)
    again = Calibration.load(path)
    assert again.to_dict() == CAL.to_dict()
    assert again.cost("dark", 85.0, "flat") == pytest.approx(25.0) and again.cost("dark", 85.0, "ranged") == 3.0
    assert again.cost("blur", None) == 0.0 and again.cost("nope", 5.0) == 0.0
    assert again.terms["blur"].good_percentile(40.0) == pytest.approx(100.0)
    with pytest.raises(CalibrationError, match="not found"):
        Calibration.load(tmp_path / "missing.json")
    (tmp_path / "bad.json").write_text("{")
    with pytest.raises(CalibrationError, match="not a readable"):
        Calibration.load(tmp_path / "bad.json")
    data = json.loads(path.read_text())
    data["severity_points"] = {"minor": 9, "moderate": 8, "severe": 15}
    (tmp_path / "order.json").write_text(json.dumps(data))
    with pytest.raises(CalibrationError, match="rise"):
        Calibration.load(tmp_path / "order.json")
    with pytest.raises(ValueError, match="only a calibration"):
        FEEDBACK_WRITERS["rules"](colour="red")
    writer = FEEDBACK_WRITERS["rules"](calibration=str(path))
    photo = Photo(rgb=np.zeros((8, 12, 3), np.float32), width=1000, height=800)
    m = {**CLEAN, "focus": 0.15, "blur_kind": "defocus"}
    assert writer(photo, m, scores_for(m, 30.0), SCENE) == rules.write(photo, m, scores_for(m, 30.0), SCENE, CAL)


def test_the_shipped_calibration_is_small_and_documented():
    cal = default_calibration()
    meta = cal.meta
    assert set(cal.terms) <= set(rules.TERMS) and cal.terms
    assert meta["trained_on"]["n"] > 0 and meta["trained_on"]["names"] and meta["seed"] == 0
    assert 0 <= meta["cv"]["false_alarms"] <= 1 and 0 <= meta["cv"]["misses"] <= 1
    for term in cal.terms.values():
        for table in term.tables.values():
            assert list(table.cost) == sorted(table.cost) and min(table.cost) >= 0  # monotone, no gains
    assert 0 < cal.reference_quality <= 100


# --- properties of the shipped rules on images the tests make -------------------------------------


def _photo(name: str, size: int = 512) -> np.ndarray:
    from skimage import data

    image = Image.fromarray(getattr(data, name)()).convert("RGB")
    return image.resize((size, round(size * image.height / image.width)), Image.Resampling.LANCZOS)


def _jpeg(image: Image.Image, quality: int = 92) -> Image.Image:
    buf = io.BytesIO()
    image.save(buf, format="JPEG", quality=quality)
    return Image.open(io.BytesIO(buf.getvalue()))


@pytest.mark.parametrize("name", ["astronaut", "chelsea", "coffee"])
def test_a_blurred_photo_is_told_about_blur_first(name):
    import picinspector

    pytest.importorskip("skimage")
    blurred = _jpeg(_photo(name).filter(ImageFilter.GaussianBlur(4)))
    report = picinspector.analyze(blurred)
    first = report.findings[0]
    assert first.kind in ("defocus_blur", "soft", "motion_blur"), report.findings
    assert first.severity in FLAGGED
    assert "First fix: focus" in report.feedback or "First fix: hold" in report.feedback


def test_a_512_px_photo_is_not_called_low_resolution():
    import picinspector

    pytest.importorskip("skimage")
    report = picinspector.analyze(_jpeg(_photo("astronaut", 512)))
    assert "low_resolution" not in kinds(report.findings)


def test_a_high_key_snowy_image_is_not_told_to_reduce_exposure():
    import picinspector

    rng = np.random.default_rng(3)
    h, w = 384, 512
    y = np.linspace(0, 1, h)[:, None]
    snow = 0.93 - 0.08 * y + 0.01 * rng.standard_normal((h, w))  # bright, soft gradient, grainy snow
    snow[250:300, 100:110] = 0.25  # a dark post
    snow[200:215, 300:420] = 0.45  # a far tree line
    rgb = np.clip(np.repeat(snow[..., None], 3, axis=2) * np.array([0.98, 0.99, 1.0]), 0, 1).astype(np.float32)
    report = picinspector.analyze(rgb)
    assert report.measures["lightness_mean"] > 80
    for f in report.findings:
        assert "reduce exposure" not in f.suggestion.lower() and "reduce the exposure" not in f.suggestion.lower()
    assert "reduce exposure" not in report.feedback.lower()


def test_live_and_cached_rows_give_the_same_findings():
    """The evaluation re-runs the rules over stored rows: they must give what analyze gave."""
    import picinspector

    pytest.importorskip("skimage")
    report = picinspector.analyze(_jpeg(_photo("coffee", 400).filter(ImageFilter.GaussianBlur(2)), 60))
    row = json.loads(report.to_json())
    assert [f.to_dict() for f in rules.findings_from_row(row)] == row["findings"]
    assert rules.paragraph(row["scores"]["quality"], rules.findings_from_row(row)) == row["feedback"]
