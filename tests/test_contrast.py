"""Contrast measures: known answers, monotonicity in contrast, robustness to blur and noise."""

import cv2
import numpy as np
import pytest
from skimage import data

from picinspector.io import Photo
from picinspector.measures import _contrast as K
from picinspector.measures import measure_all

KEYS = {"contrast_rms", "contrast_range", "contrast_local"}


def luma_of(name):
    img = getattr(data, name)().astype(np.float32) / 255.0
    if img.ndim == 2:
        img = np.repeat(img[..., None], 3, axis=2)
    return Photo(rgb=img).gray


def test_group_returns_documented_keys():
    out = measure_all(Photo(rgb=data.astronaut().astype(np.float32) / 255.0), ["contrast"])
    assert set(out) == KEYS
    assert all(isinstance(v, float) for v in out.values())


def test_uniform_image_has_no_contrast():
    luma = np.full((60, 90), 0.4, np.float32)
    assert K.contrast_rms(luma) == pytest.approx(0.0, abs=1e-6)
    assert K.contrast_range(luma) == pytest.approx(0.0, abs=1e-6)
    assert K.contrast_local(luma) == pytest.approx(0.0, abs=1e-6)


def test_half_black_half_white():
    luma = np.zeros((64, 128), np.float32)
    luma[:, 64:] = 1.0
    assert K.contrast_rms(luma) == pytest.approx(0.5, abs=1e-6)
    assert K.contrast_range(luma) == pytest.approx(1.0, abs=1e-6)
    # Windows are 2 px (128 / 64): none straddles the edge at column 64, so no local contrast.
    assert K.contrast_local(luma) == pytest.approx(0.0, abs=1e-6)


def test_two_levels_range_and_rms():
    luma = np.full((100, 100), 0.2, np.float32)
    luma[:50] = 0.7
    assert K.contrast_rms(luma) == pytest.approx(0.25, abs=1e-5)
    assert K.contrast_range(luma) == pytest.approx(0.5, abs=2.0 / 255.0)


def test_local_contrast_of_stripes():
    # Vertical stripes 0.25 / 0.75, period 2 px: every window has mean 0.5 and std 0.25.
    luma = np.tile(np.array([0.25, 0.75], np.float32), (96, 64))
    assert K.contrast_local(luma) == pytest.approx(0.5, abs=1e-4)
    # Dark stripes: std / mean would be 1; capped at 1 and mean floored.
    dark = np.tile(np.array([0.0, 0.02], np.float32), (96, 64))
    assert K.contrast_local(dark) == pytest.approx(0.01 / 0.05, abs=1e-4)


@pytest.mark.parametrize("name", ["astronaut", "chelsea", "camera"])
def test_all_fall_as_contrast_is_reduced(name):
    luma = luma_of(name)
    mean = float(luma.mean())
    values = []
    for alpha in (1.0, 0.8, 0.6, 0.4, 0.2):
        reduced = (alpha * luma + (1 - alpha) * mean).astype(np.float32)
        values.append(
            (K.contrast_rms(reduced), K.contrast_range(reduced), K.contrast_local(reduced))
        )
    values = np.array(values)
    assert (np.diff(values, axis=0) < 0).all(), values
    # RMS and range scale with alpha.
    assert values[2, 0] == pytest.approx(0.6 * values[0, 0], rel=1e-3)
    assert values[2, 1] == pytest.approx(0.6 * values[0, 1], abs=3.0 / 255.0)


@pytest.mark.parametrize("name", ["astronaut", "chelsea", "camera"])
def test_rms_stable_under_blur_and_noise(name):
    luma = luma_of(name)
    rms = K.contrast_rms(luma)
    blurred = cv2.GaussianBlur(luma, (0, 0), 2.0)
    rng = np.random.default_rng(3)
    noisy = np.clip(luma + rng.normal(0, 5 / 255, luma.shape), 0, 1).astype(np.float32)
    assert K.contrast_rms(blurred) == pytest.approx(rms, rel=0.10)
    assert K.contrast_rms(noisy) == pytest.approx(rms, rel=0.10)
    # Local contrast, by contrast, is about texture: blur lowers it clearly.
    assert K.contrast_local(blurred) < 0.9 * K.contrast_local(luma)


def test_tiny_images_work():
    luma = np.array([[0.2, 0.4], [0.6, 0.8]], np.float32)
    assert K.contrast_rms(luma) > 0
    assert K.contrast_range(luma) > 0
    assert 0 < K.contrast_local(luma) <= 1
    one = np.array([[0.5]], np.float32)
    assert K.contrast_local(one) == 0.0


def test_bad_input_raises():
    with pytest.raises(ValueError, match="2-D"):
        K.contrast_rms(np.zeros((4, 4, 3), np.float32))
    with pytest.raises(ValueError, match="within"):
        K.contrast_range(np.full((4, 4), 2.0, np.float32))
    with pytest.raises(ValueError, match="window_fraction"):
        K.contrast_local(np.zeros((8, 8), np.float32), window_fraction=0)
    with pytest.raises(ValueError, match="low"):
        K.contrast_range(np.zeros((8, 8), np.float32), low=0.5, high=0.5)
    bad = np.zeros((8, 8), np.float32)
    bad[0, 0] = np.nan
    for f in (K.contrast_rms, K.contrast_range, K.contrast_local):
        with pytest.raises(ValueError):
            f(bad)
