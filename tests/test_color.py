"""Colour measures: colourfulness, chroma and colour-cast direction on real and synthetic images."""

import numpy as np
import pytest
from skimage import data
from skimage.color import rgb2lab
from sklearn.datasets import load_sample_images

from picinspector.io import Photo, linear_to_srgb, srgb_to_linear
from picinspector.measures import _color as C
from picinspector.measures import measure_all

KEYS = {"colorfulness", "saturation_mean", "cast_a", "cast_b", "cast_strength", "cast_hue_deg"}
LUMA = np.array([0.2126, 0.7152, 0.0722], np.float32)

BLUE = (0.85, 1.0, 1.15)
WARM = (1.15, 1.0, 0.85)
MAGENTA = (1.07, 0.85, 1.07)
GREEN = (0.93, 1.15, 0.93)


def photo_linear(linear):
    """Photo from linear light, encoded to sRGB and quantised to 8 bits like a saved file."""
    return Photo(rgb=np.round(linear_to_srgb(linear) * 255.0).astype(np.float32) / 255.0)


def linear_of(u8):
    u8 = np.asarray(u8)
    if u8.ndim == 2:
        u8 = np.repeat(u8[..., None], 3, axis=2)
    return srgb_to_linear(u8.astype(np.float32) / 255.0)


def desaturate(rgb, amount):
    """Blend towards the luma grey by ``amount`` (0 = unchanged, 1 = grey)."""
    grey = (rgb @ LUMA)[..., None]
    return ((1 - amount) * rgb + amount * grey).astype(np.float32)


def hasler_reference(rgb):
    """Hasler & Suesstrunk (2003) M, written out directly in float64."""
    x = rgb.astype(np.float64) * 255.0
    rg = x[..., 0] - x[..., 1]
    yb = 0.5 * (x[..., 0] + x[..., 1]) - x[..., 2]
    return np.hypot(rg.std(), yb.std()) + 0.3 * np.hypot(rg.mean(), yb.mean())


def test_group_returns_documented_keys():
    out = measure_all(Photo(rgb=data.coffee().astype(np.float32) / 255.0), ["color"])
    assert set(out) == KEYS


def test_grey_image_is_colourless_and_uncast():
    ramp = np.repeat(np.linspace(0, 1, 256, dtype=np.float32)[None, :, None], 3, axis=2)
    out = C.measure_color(Photo(rgb=np.repeat(ramp, 40, axis=0)))
    assert out["colorfulness"] == pytest.approx(0.0, abs=1e-4)
    assert out["saturation_mean"] == pytest.approx(0.0, abs=1e-3)
    assert out["cast_strength"] < 1.0
    assert out["cast_hue_deg"] is None


def test_colorfulness_matches_formula_on_random_colours():
    rng = np.random.default_rng(11)
    rgb = rng.random((120, 160, 3), dtype=np.float32)
    assert C.colorfulness(rgb) == pytest.approx(hasler_reference(rgb), rel=1e-4)
    red_blue = np.zeros((10, 20, 3), np.float32)
    red_blue[:, :10, 0] = 1.0
    red_blue[:, 10:, 2] = 1.0
    # rg: mean 127.5, std 127.5; yb: mean -63.75, std 191.25.
    expected = np.hypot(127.5, 191.25) + 0.3 * np.hypot(127.5, 63.75)
    assert C.colorfulness(red_blue) == pytest.approx(expected, rel=1e-5)


def test_pure_colour_pattern_beats_its_desaturated_version():
    rng = np.random.default_rng(5)
    palette = np.array(
        [[1, 0, 0], [0, 1, 0], [0, 0, 1], [1, 1, 0], [0, 1, 1], [1, 0, 1]], np.float32
    )
    pattern = palette[rng.integers(0, len(palette), (32, 48))].repeat(8, 0).repeat(8, 1)
    assert C.colorfulness(pattern) > 2 * C.colorfulness(desaturate(pattern, 0.5))
    assert C.colorfulness(desaturate(pattern, 1.0)) == pytest.approx(0.0, abs=1e-3)


@pytest.mark.parametrize("name", ["astronaut", "coffee", "chelsea"])
def test_colorfulness_and_chroma_fall_with_desaturation(name):
    rgb = getattr(data, name)().astype(np.float32) / 255.0
    values = []
    for amount in (0.0, 0.25, 0.5, 0.75, 1.0):  # saturation 100 / 75 / 50 / 25 / 0 %
        p = Photo(rgb=desaturate(rgb, amount))
        values.append((C.colorfulness(p.rgb), C.saturation_mean(p.lab)))
    values = np.array(values)
    assert (np.diff(values, axis=0) < 0).all(), values
    assert values[-1, 0] < 0.01 and values[-1, 1] < 0.002


def test_saturation_mean_is_chroma_over_100():
    colour = np.array([0.8, 0.3, 0.1], np.float32)
    rgb = np.broadcast_to(colour, (20, 30, 3)).copy()
    lab = rgb2lab(colour[None, None].astype(np.float64))[0, 0]
    expected = np.hypot(lab[1], lab[2]) / 100.0
    assert C.saturation_mean(Photo(rgb=rgb).lab) == pytest.approx(expected, abs=0.01)


def test_illuminant_to_cast_matches_cielab():
    assert C.illuminant_to_cast((1.0, 1.0, 1.0)) == pytest.approx((0.0, 0.0), abs=1e-9)
    gains = np.array(BLUE)
    grey = 0.18 * gains / (gains @ LUMA.astype(np.float64))
    lab = rgb2lab(linear_to_srgb(grey.astype(np.float32))[None, None].astype(np.float64))[0, 0]
    assert C.illuminant_to_cast(gains) == pytest.approx((lab[1], lab[2]), abs=0.05)


def test_neutral_photo_with_casts():
    # camera() is a real grayscale photo: perfectly neutral.
    lin = linear_of(data.camera()) * 0.8
    neutral = C.measure_color(photo_linear(lin))
    assert neutral["cast_strength"] < 1.0 and neutral["cast_hue_deg"] is None
    blue = C.measure_color(photo_linear(lin * np.float32(BLUE)))
    assert blue["cast_b"] < 0
    assert abs(blue["cast_hue_deg"] - 270.0) <= 40.0
    assert blue["cast_strength"] == pytest.approx(np.hypot(*C.illuminant_to_cast(BLUE)), rel=0.1)
    assert C.measure_color(photo_linear(lin * np.float32(WARM)))["cast_b"] > 0
    assert C.measure_color(photo_linear(lin * np.float32(MAGENTA)))["cast_a"] > 0
    assert C.measure_color(photo_linear(lin * np.float32(GREEN)))["cast_a"] < 0


def _sample(name):
    if name == "china":
        return load_sample_images().images[0]
    return getattr(data, name)()


@pytest.mark.parametrize("name", ["astronaut", "china", "coffee"])
def test_balanced_colour_photo_with_blue_cast(name):
    lin = linear_of(_sample(name)) * 0.8
    balanced = lin / C.estimate_illuminant(photo_linear(lin).rgb).astype(np.float32)
    assert C.measure_color(photo_linear(balanced))["cast_strength"] < 1.0
    out = C.measure_color(photo_linear(balanced * np.float32(BLUE)))
    assert out["cast_b"] < 0
    assert abs(out["cast_hue_deg"] - 270.0) <= 40.0


@pytest.mark.parametrize("name", ["astronaut", "china", "coffee"])
def test_cast_shift_follows_applied_gains(name):
    lin = linear_of(_sample(name)) * 0.8
    base = C.measure_color(photo_linear(lin))
    for gains in (BLUE, WARM, MAGENTA, GREEN):
        out = C.measure_color(photo_linear(lin * np.float32(gains)))
        shift = np.array([out["cast_a"] - base["cast_a"], out["cast_b"] - base["cast_b"]])
        expected = np.array(C.illuminant_to_cast(gains))
        assert np.hypot(*(shift - expected)) < 1.5, (gains, shift, expected)


def test_blown_white_image_has_no_cast_estimate():
    out = C.measure_color(Photo(rgb=np.ones((32, 32, 3), np.float32)))
    assert out["cast_a"] is None and out["cast_strength"] is None and out["cast_hue_deg"] is None
    assert out["colorfulness"] == pytest.approx(0.0, abs=1e-4)


def test_flat_colour_falls_back_to_grey_world():
    rgb = np.broadcast_to(np.array([0.6, 0.5, 0.3], np.float32), (40, 40, 3)).copy()
    a, b = C.color_cast(rgb)
    assert b > 5  # a flat yellow-orange field reads as a warm cast


def test_one_pixel_photo():
    out = measure_all(Photo(rgb=np.array([[[0.9, 0.5, 0.2]]], np.float32)), ["color"])
    assert out["cast_b"] > 0 and out["colorfulness"] > 0


def test_bad_input_raises():
    with pytest.raises(ValueError, match=r"\(H, W, 3\)"):
        C.colorfulness(np.zeros((8, 8), np.float32))
    with pytest.raises(ValueError, match="dtype"):
        C.color_cast(data.coffee())
    with pytest.raises(ValueError):
        C.illuminant_to_cast((1.0, -1.0, 1.0))
    with pytest.raises(ValueError):
        C.illuminant_to_cast((0.0, 0.0, 0.0))
    with pytest.raises(ValueError, match="sigma"):
        C.estimate_illuminant(np.zeros((8, 8, 3), np.float32), sigma=0)
    bad = np.zeros((8, 8, 3), np.float32)
    bad[1, 1, 1] = np.nan
    for f in (C.colorfulness, C.color_cast):
        with pytest.raises(ValueError):
            f(bad)
