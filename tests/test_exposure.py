"""Exposure measures: known answers on synthetic images and exposure shifts of real photos."""

import numpy as np
import pytest
from skimage import data

from picinspector.io import Photo, linear_to_srgb, srgb_to_linear
from picinspector.measures import _exposure as E
from picinspector.measures import measure_all

KEYS = {
    "lightness_mean",
    "lightness_median",
    "highlights_clipped_pct",
    "shadows_crushed_pct",
    "exposure_ev",
    "dynamic_range_ev",
}


def photo_u8(u8):
    """Photo from an 8-bit (H, W, 3) or (H, W) array, as a decoder would hand it over."""
    u8 = np.asarray(u8, dtype=np.uint8)
    if u8.ndim == 2:
        u8 = np.repeat(u8[..., None], 3, axis=2)
    return Photo(rgb=u8.astype(np.float32) / 255.0)


def photo_linear(linear):
    """Photo from linear light: encode to sRGB and quantise to 8 bits, like a saved file."""
    return photo_u8(np.round(linear_to_srgb(linear) * 255.0))


def cie_lightness(y):
    """CIE 1976 L* from relative luminance (independent of the code under test)."""
    y = np.asarray(y, dtype=np.float64)
    return np.where(y > (6 / 29) ** 3, 116 * np.cbrt(y) - 16, y * (29 / 3) ** 3)


def grey_photo(y, shape=(64, 96)):
    """Uniform grey of relative luminance ``y`` (no 8-bit rounding)."""
    v = float(linear_to_srgb(np.float32(y)))
    return Photo(rgb=np.full(shape + (3,), v, dtype=np.float32))


def test_group_returns_documented_keys():
    out = measure_all(photo_u8(data.chelsea()), ["exposure"])
    assert set(out) == KEYS
    assert all(isinstance(v, float) for v in out.values())


@pytest.mark.parametrize("y", [0.02, 0.18, 0.5])
def test_uniform_grey_lightness_and_ev(y):
    out = E.measure_exposure(grey_photo(y))
    expected_l = float(cie_lightness(y))
    # OpenCV's float Lab (photo.lab) is within about 0.15 L* of the exact CIE formula.
    assert out["lightness_mean"] == pytest.approx(expected_l, abs=0.2)
    assert out["lightness_median"] == pytest.approx(expected_l, abs=0.6)
    assert out["exposure_ev"] == pytest.approx(np.log2(y / 0.18), abs=0.05)
    assert out["dynamic_range_ev"] == pytest.approx(0.0, abs=0.1)
    assert out["highlights_clipped_pct"] == 0.0
    assert out["shadows_crushed_pct"] == 0.0


def test_median_follows_majority():
    rgb = np.full((50, 100, 3), float(linear_to_srgb(np.float32(0.05))), np.float32)
    rgb[:, :60] = float(linear_to_srgb(np.float32(0.4)))  # 60 % of pixels at Y = 0.4
    out = E.measure_exposure(Photo(rgb=rgb))
    assert out["lightness_median"] == pytest.approx(float(cie_lightness(0.4)), abs=0.6)
    expected_mean = 0.6 * cie_lightness(0.4) + 0.4 * cie_lightness(0.05)
    assert out["lightness_mean"] == pytest.approx(float(expected_mean), abs=0.2)


def test_dynamic_range_of_two_levels():
    rgb = np.empty((80, 80, 3), np.float32)
    rgb[:40] = float(linear_to_srgb(np.float32(0.01)))
    rgb[40:] = float(linear_to_srgb(np.float32(0.64)))
    assert E.dynamic_range_ev(Photo(rgb=rgb).lab) == pytest.approx(6.0, abs=0.1)


def test_dynamic_range_floor_for_black():
    rgb = np.zeros((40, 40, 3), np.float32)
    rgb[:20] = 1.0
    # p1 is black: floored at the luminance of code 1, so log2(255 * 12.92) ~ 11.69 EV.
    assert E.dynamic_range_ev(Photo(rgb=rgb).lab) == pytest.approx(np.log2(255 * 12.92), abs=0.05)


def test_clipping_threshold_is_254_of_255():
    u8 = np.full((10, 10, 3), 128, np.uint8)
    u8[0, :, 0] = 254  # counts (red only)
    u8[1, :, 2] = 255  # counts (blue only)
    u8[2, :, :] = 253  # does not count
    u8[3, :5, 1] = 254  # counts
    out = E.measure_exposure(photo_u8(u8))
    assert out["highlights_clipped_pct"] == pytest.approx(25.0)
    assert E.highlights_clipped_pct(photo_u8(u8).rgb) == pytest.approx(25.0)


def test_crushed_threshold_is_luma_2_of_255():
    u8 = np.full((10, 10, 3), 100, np.uint8)
    u8[0] = 2  # luma exactly 2/255: counts
    u8[1] = 0  # counts
    u8[2] = 3  # does not
    u8[3] = (0, 0, 255)  # saturated blue, luma 18/255: not a shadow
    out = E.measure_exposure(photo_u8(u8))
    assert out["shadows_crushed_pct"] == pytest.approx(20.0)
    assert E.shadows_crushed_pct(photo_u8(u8).gray) == pytest.approx(20.0)


@pytest.mark.parametrize("name", ["chelsea", "coffee", "astronaut"])
def test_exposure_ev_tracks_linear_gain(name):
    # Darken first so that brightening by up to 4x does not clip.
    base = srgb_to_linear(getattr(data, name)().astype(np.float32) / 255.0) * 0.25
    gains = (0.25, 0.5, 1, 2, 4)
    ev = {g: E.measure_exposure(photo_linear(base * g))["exposure_ev"] for g in gains}
    assert ev[2] - ev[1] == pytest.approx(1.0, abs=0.2)
    assert ev[0.5] - ev[1] == pytest.approx(-1.0, abs=0.2)
    assert ev[4] - ev[1] == pytest.approx(2.0, abs=0.3)
    assert ev[0.25] - ev[1] == pytest.approx(-2.0, abs=0.3)
    lightness = [E.measure_exposure(photo_linear(base * g))["lightness_mean"] for g in (0.5, 1, 2)]
    assert lightness[0] < lightness[1] < lightness[2]


def test_blown_image_reports_clipping_and_positive_ev():
    lin = srgb_to_linear(data.coffee().astype(np.float32) / 255.0)
    out = E.measure_exposure(photo_linear(lin * 8.0))
    ref = E.measure_exposure(photo_linear(lin))
    assert out["highlights_clipped_pct"] > 20.0 > ref["highlights_clipped_pct"]
    assert out["exposure_ev"] > ref["exposure_ev"] + 1.0


def test_combined_matches_single_functions():
    p = photo_u8(data.astronaut())
    out = E.exposure_measures(p.rgb, p.lab, p.gray)
    mean, median = E.lightness_stats(p.lab)
    assert out["lightness_mean"] == pytest.approx(mean)
    assert out["lightness_median"] == pytest.approx(median)
    assert out["exposure_ev"] == pytest.approx(E.exposure_ev(p.lab))
    assert out["dynamic_range_ev"] == pytest.approx(E.dynamic_range_ev(p.lab))
    assert out["highlights_clipped_pct"] == pytest.approx(E.highlights_clipped_pct(p.rgb))
    assert out["shadows_crushed_pct"] == pytest.approx(E.shadows_crushed_pct(p.gray))
    # And the histogram statistics against exact ones.
    assert median == pytest.approx(float(np.median(p.lab[..., 0])), abs=0.3)
    assert mean == pytest.approx(float(p.lab[..., 0].mean(dtype=np.float64)), abs=1e-3)


def test_hist_quantile_against_numpy():
    rng = np.random.default_rng(7)
    values = rng.gamma(2.0, 0.1, 20000).clip(0, 0.999)
    edges = np.linspace(0, 1, 1001)
    centres = 0.5 * (edges[1:] + edges[:-1])
    hist, _ = np.histogram(values, edges)
    for q in (0.0, 0.01, 0.5, 0.99, 1.0):  # within half a bin
        assert E.hist_quantile(hist, centres, q) == pytest.approx(np.quantile(values, q), abs=6e-4)
    # Data on the bin centres come back exactly.
    codes = rng.integers(10, 200, 999)
    hist = np.bincount(codes, minlength=256)
    assert E.hist_quantile(hist, np.arange(256.0), 0.5) == np.median(codes)
    with pytest.raises(ValueError):
        E.hist_quantile(hist, np.arange(256.0), 1.5)
    with pytest.raises(ValueError):
        E.hist_quantile(np.zeros(10), np.arange(10.0), 0.5)


def test_luminance_from_lightness_inverts_cie():
    y = np.array([0.0, 0.001, 0.008856, 0.05, 0.18, 0.5, 1.0])
    assert np.allclose(E.luminance_from_lightness(cie_lightness(y)), y, atol=1e-9)


def test_one_pixel_photo():
    out = measure_all(photo_u8(np.array([[[1, 2, 1]]], np.uint8)), ["exposure"])
    assert out["shadows_crushed_pct"] == 100.0
    assert out["dynamic_range_ev"] == 0.0


def test_bad_input_raises():
    p = photo_u8(data.chelsea())
    with pytest.raises(ValueError, match="lab"):
        E.exposure_ev(p.lab[..., 0])
    with pytest.raises(ValueError, match="L\\*"):
        E.exposure_ev(p.lab * 2.0)
    with pytest.raises(ValueError, match="dtype"):
        E.highlights_clipped_pct(data.chelsea())  # uint8, not floats in [0, 1]
    with pytest.raises(ValueError, match="empty"):
        E.shadows_crushed_pct(np.zeros((0, 5), np.float32))
    with pytest.raises(ValueError, match="differ"):
        E.exposure_measures(p.rgb, p.lab, p.gray[:-1])
    with pytest.raises(ValueError, match="low"):
        E.dynamic_range_ev(p.lab, low=0.9, high=0.1)
    bad = p.lab.copy()
    bad[0, 0, 0] = np.nan
    with pytest.raises(ValueError):
        E.lightness_stats(bad)


def test_whole_image_statistics_read_a_512px_copy_of_a_large_working_image():
    """Exposure and colour read `Photo.stats_rgb`: the working image itself up to 512 px long side
    (so the 512-px training photos are measured exactly as before), an area-averaged copy above. On a
    1024x768 image of flat blocks the copy changes nothing that people would see: the same clipped
    and crushed shares, lightness and colourfulness."""
    from picinspector.io._photo import STATS_LONG_SIDE
    from picinspector.measures._color import measure_color

    small = np.zeros((384, 512, 3), np.uint8)
    small[:192, :256] = 255                 # white: clipped
    small[:192, 256:] = (200, 40, 40)       # red
    small[192:, :256] = 118                 # mid grey
    big = np.repeat(np.repeat(small, 2, axis=0), 2, axis=1)  # 1024x768, the same blocks
    p_small, p_big = photo_u8(small), photo_u8(big)
    assert p_small.stats_rgb is p_small.rgb and p_small.stats_lab is p_small.lab
    assert max(p_big.stats_rgb.shape[:2]) == STATS_LONG_SIDE
    np.testing.assert_allclose(p_big.stats_rgb, p_small.rgb, atol=1e-6)
    a, b = E.measure_exposure(p_big), E.measure_exposure(p_small)
    assert a["highlights_clipped_pct"] == pytest.approx(25.0, abs=0.01)  # the white block
    assert a["shadows_crushed_pct"] == pytest.approx(25.0, abs=0.01)                 # the black block
    for key in KEYS:
        assert a[key] == pytest.approx(b[key], abs=1e-4), key
    ca, cb = measure_color(p_big), measure_color(p_small)
    assert ca["colorfulness"] == pytest.approx(cb["colorfulness"], rel=1e-5)
    assert ca["saturation_mean"] == pytest.approx(cb["saturation_mean"], rel=1e-5)
