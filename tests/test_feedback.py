"""Rule-based feedback: every finding is grounded in a measured number and carries a suggestion."""

import numpy as np
import pytest

from picinspector.feedback import rules
from picinspector.io import Photo
from picinspector.report import SEVERITIES, SceneResult
from picinspector.scoring import attribute_scores, quality_score

CLEAN = {
    "lightness_mean": 52.0, "lightness_median": 50.0, "highlights_clipped_pct": 0.2, "shadows_crushed_pct": 0.5,
    "exposure_ev": -0.6, "dynamic_range_ev": 7.0, "colorfulness": 45.0, "saturation_mean": 0.25,
    "cast_a": 0.5, "cast_b": 1.0, "cast_strength": 1.1, "cast_hue_deg": 63.0,
    "contrast_rms": 0.22, "contrast_range": 0.8, "contrast_local": 0.25,
    "noise_sigma": 0.9, "noise_sigma_native": None, "noise_chroma": 0.6, "noise_shadows": 1.0, "noise_snr_db": 40.0,
    "focus": 0.8, "focus_native": None, "edge_width_px": 1.6, "blur_kind": "sharp", "motion_blur_angle_deg": None,
    "blur_anisotropy": 0.1, "focus_map": [[0.8] * 4] * 4, "sharp_area_pct": 90.0,
    "jpeg_quality": 92, "blockiness": 1.0,
}
SCENE = SceneResult("landscape", {"landscape": 1.0}, "cues", 1.0)


def feedback(exif=None, size=(3000, 2000), **changes):
    m = {**CLEAN, **changes}
    attrs = attribute_scores(m)
    s = {"quality": quality_score(m, attrs), **attrs}
    photo = Photo(rgb=np.zeros((8, 12, 3), np.float32), width=size[0], height=size[1], exif=exif or {})
    return rules.write(photo, m, s, SCENE)


def kinds(findings):
    return {f.kind for f in findings}


def test_clean_photo_has_no_problems():
    findings, text = feedback()
    assert [f for f in findings if f.severity != "info"] == []
    assert "no problems found" in text


def test_motion_blur_reports_angle_shutter_and_a_faster_speed():
    findings, text = feedback(exif={"exposure_time_s": 1 / 15, "focal_length_mm": 50}, focus=0.15,
                              blur_kind="motion", motion_blur_angle_deg=30.4)
    f = next(f for f in findings if f.kind == "motion_blur")
    assert "about 30 degrees" in f.message and "1/15 s" in f.message
    assert "1/100 s" in f.suggestion
    assert f.severity in ("moderate", "severe")
    assert text.count("Motion blur along about 30 degrees") == 1


def test_defocus_is_named_with_edge_width():
    findings, _ = feedback(focus=0.2, blur_kind="defocus", edge_width_px=4.2)
    f = next(f for f in findings if f.kind == "defocus_blur")
    assert "4.2 px" in f.message and "focus" in f.suggestion.lower()


def test_shadow_noise_at_iso():
    findings, text = feedback(exif={"iso": 3200}, noise_sigma=6.0, noise_shadows=12.0)
    f = next(f for f in findings if f.kind == "noise")
    assert "shadows" in f.message and "ISO 3200" in f.message and "sigma 6.0" in f.message
    assert "ISO 3200" in text


def test_clipped_highlights_percent_and_severity_grow():
    sev = []
    for pct in (0.5, 2.0, 6.0, 20.0):
        f = [f for f in feedback(highlights_clipped_pct=pct)[0] if f.kind == "clipped_highlights"]
        sev.append(SEVERITIES.index(f[0].severity) if f else -1)
        if f:
            assert f"{pct:.0f}% of the frame has clipped highlights" == f[0].message
    assert sev == sorted(sev) and sev[0] == -1 and sev[-1] == SEVERITIES.index("severe")


@pytest.mark.parametrize("hue,name", [(270, "blue"), (90, "yellow"), (180, "green"), (5, "magenta"),
                                      (50, "orange"), (225, "cyan")])
def test_cast_names(hue, name):
    assert rules.cast_name(hue) == name


def test_cast_finding_reports_signed_lab():
    findings, _ = feedback(cast_a=-2.0, cast_b=-14.0, cast_strength=14.1, cast_hue_deg=262.0)
    f = next(f for f in findings if f.kind == "color_cast")
    assert "blue" in f.message and "b* -14" in f.message


def test_exposure_findings_both_ways():
    assert "underexposed" in kinds(feedback(lightness_mean=14.0, exposure_ev=-3.1)[0])
    assert "overexposed" in kinds(feedback(lightness_mean=86.0, exposure_ev=2.2)[0])
    assert not {"underexposed", "overexposed"} & kinds(feedback()[0])


def test_compression_and_low_resolution():
    findings, _ = feedback(jpeg_quality=18, blockiness=1.8, size=(320, 240))
    f = next(f for f in findings if f.kind == "compression")
    assert "quality about 18" in f.message and "blocking" in f.message and f.severity == "severe"
    assert "low_resolution" in kinds(findings)


def test_compression_read_from_the_pixels_of_a_lossless_copy():
    """A PNG of a quality-15 JPEG has no tables; the quantisation found in its pixels is reported."""
    findings, _ = feedback(jpeg_quality=None, jpeg_quality_pixels=15)
    f = next(f for f in findings if f.kind == "compression")
    assert "quality about 15" in f.message and "pixels" in f.message and f.severity == "severe"
    # re-saved at 95 after 40: the harsher past compression counts
    f = next(f for f in feedback(jpeg_quality=95, jpeg_quality_pixels=40)[0] if f.kind == "compression")
    assert "quality about 40" in f.message and f.severity == "moderate"
    assert "compression" not in kinds(feedback(jpeg_quality=92, jpeg_quality_pixels=100)[0])


def test_findings_are_sorted_worst_first_and_all_have_suggestions():
    findings, text = feedback(focus=0.1, blur_kind="defocus", highlights_clipped_pct=2.0, jpeg_quality=60,
                              colorfulness=8.0)
    order = [SEVERITIES.index(f.severity) for f in findings]
    assert order == sorted(order, reverse=True)
    assert all(f.suggestion and f.message for f in findings)
    assert text.startswith("Overall quality") and "First fix" in text


@pytest.mark.parametrize("angle,words", [(1.0, "horizontally (about 1 degree)"), (178.0, "horizontally (about -2"),
                                         (92.0, "vertically (about 92"), (45.0, "along about 45 degrees")])
def test_motion_direction_words(angle, words):
    findings, _ = feedback(focus=0.15, blur_kind="motion", motion_blur_angle_deg=angle)
    assert words in next(f for f in findings if f.kind == "motion_blur").message


def test_featureless_frame_gets_a_finding_and_zero_sharpness():
    findings, _ = feedback(focus=None, blur_kind=None, edge_width_px=None, sharp_area_pct=None, focus_map=[[None] * 4] * 4)
    assert "no_detail" in kinds(findings)
    assert attribute_scores({**CLEAN, "focus": None})["sharpness"] == 0.0


def test_verdict_is_capped_by_the_worst_finding():
    assert rules.verdict(90) == "excellent"
    assert rules.verdict(90, "minor") == "excellent"
    assert rules.verdict(90, "moderate") == "good"
    assert rules.verdict(90, "severe") == "fair"
    assert rules.verdict(20, "severe") == "bad"  # a cap never lifts
    _, text = feedback(noise_sigma=14.0)
    assert "(fair)" in text or "(poor)" in text or "(bad)" in text
