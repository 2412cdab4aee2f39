"""Scores from measures: ranges, directions, and that each score reads its own measure."""

import math

import pytest

from picinspector.scoring import ATTRIBUTE_SCORES, QUALITY_TERMS, attribute_scores, quality_score

GOOD = {
    "lightness_mean": 52.0, "highlights_clipped_pct": 0.2, "shadows_crushed_pct": 0.5, "exposure_ev": -0.6,
    "colorfulness": 45.0, "contrast_rms": 0.22, "contrast_local": 0.25,
    "noise_sigma": 0.9, "noise_chroma": 0.6, "focus": 0.8, "jpeg_quality": 92, "blockiness": 1.0,
}


def scores(**changes):
    m = {**GOOD, **changes}
    attrs = attribute_scores(m)
    return {"quality": quality_score(m, attrs), **attrs}


# (measure, values in the order the photo gets worse (or brighter), score that must follow, direction)
MOVES = [
    ("focus", [0.9, 0.7, 0.5, 0.3, 0.1], "sharpness", -1),
    ("noise_sigma", [0.5, 3, 6, 10, 20], "noisiness", -1),
    ("lightness_mean", [10, 25, 45, 65, 90], "brightness", +1),
    ("contrast_rms", [0.25, 0.18, 0.12, 0.06, 0.02], "contrast", -1),
    ("colorfulness", [90, 60, 30, 10, 0], "colorfulness", -1),
]


@pytest.mark.parametrize("measure,values,score,sign", MOVES)
def test_each_attribute_follows_its_own_measure_only(measure, values, score, sign):
    rows = [scores(**{measure: v}) for v in values]
    own = [r[score] for r in rows]
    assert all(sign * (b - a) > 0 for a, b in zip(own, own[1:])), own
    for other in ATTRIBUTE_SCORES:
        if other != score:
            assert len({round(r[other], 6) for r in rows}) == 1, f"{other} moved with {measure}"


@pytest.mark.parametrize("measure,values,score,sign", [m for m in MOVES if m[2] != "brightness"])
def test_quality_falls_with_every_degradation(measure, values, score, sign):
    q = [scores(**{measure: v})["quality"] for v in values]
    assert all(b < a for a, b in zip(q, q[1:])), q


def test_quality_falls_with_jpeg_quality_exposure_and_clipping():
    assert scores(jpeg_quality=20)["quality"] < scores(jpeg_quality=60)["quality"] < scores()["quality"]
    assert scores(lightness_mean=12)["quality"] < scores(lightness_mean=25)["quality"] < scores()["quality"]
    assert scores(lightness_mean=90)["quality"] < scores(lightness_mean=78)["quality"] < scores()["quality"]
    assert scores(highlights_clipped_pct=15)["quality"] < scores(highlights_clipped_pct=3)["quality"]


def test_scores_stay_in_range_at_extremes():
    extremes = [dict(focus=0.0, noise_sigma=80, noise_chroma=80, lightness_mean=0, contrast_rms=0, contrast_local=0,
                     colorfulness=0, jpeg_quality=1, blockiness=4, highlights_clipped_pct=100,
                     shadows_crushed_pct=100),
                dict(focus=1.0, noise_sigma=0, noise_chroma=0, lightness_mean=100, contrast_rms=0.5,
                     contrast_local=1, colorfulness=200, jpeg_quality=None, blockiness=None)]
    for e in extremes:
        for name, value in scores(**e).items():
            assert 0.0 <= value <= 100.0 and math.isfinite(value), (name, value)


def test_quality_weights_sum_to_one():
    assert sum(t.weight for t in QUALITY_TERMS.values()) == pytest.approx(1.0)


def test_a_good_photo_scores_high_and_a_bad_one_low():
    assert scores()["quality"] > 75
    assert scores(focus=0.1, noise_sigma=15, lightness_mean=15)["quality"] < 25
