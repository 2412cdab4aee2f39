"""Noise measures: known answers with added Gaussian noise on synthetic and real photos."""

import math

import numpy as np
import pytest
from skimage import data

from picinspector.errors import AnalysisError
from picinspector.io import Photo
from picinspector.io._photo import LUMA_WEIGHTS
from picinspector.measures import _noise as N
from picinspector.measures import measure_all

KEYS = {"noise_sigma", "noise_sigma_native", "noise_chroma", "noise_shadows", "noise_snr_db"}


def q8(x):
    """Quantise to 8-bit code values, as a saved file would."""
    return (np.round(np.clip(x, 0.0, 1.0) * 255.0) / 255.0).astype(np.float32)


def smooth_gray(h=480, w=640):
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    return (0.5 + 0.15 * np.sin(xx / 60.0) * np.cos(yy / 45.0) + 0.1 * xx / w).astype(np.float32)


def mid_grey_photo(name):
    """A sample photo squeezed into [0.25, 0.75] so that added noise never clips."""
    rgb = getattr(data, name)().astype(np.float32) / 255.0
    return (0.25 + 0.5 * rgb).astype(np.float32)


def luma(rgb):
    return rgb @ LUMA_WEIGHTS


def add_luma_noise(rgb, sigma_levels, seed):
    """The same Gaussian noise on R, G and B: luma noise of sigma, no chroma noise."""
    rng = np.random.default_rng(seed)
    n = rng.normal(0.0, sigma_levels / 255.0, rgb.shape[:2]).astype(np.float32)
    return q8(rgb + n[..., None])


def chroma_noise(shape, sigma_levels, seed):
    """RGB noise whose Rec. 709 Cb and Cr have standard deviation sigma and whose luma is zero."""
    rng = np.random.default_rng(seed)
    d_cb = rng.normal(0.0, sigma_levels / 255.0, shape).astype(np.float32)
    d_cr = rng.normal(0.0, sigma_levels / 255.0, shape).astype(np.float32)
    wr, wg, wb = (float(w) for w in LUMA_WEIGHTS)
    d_b = 1.8556 * d_cb
    d_r = 1.5748 * d_cr
    d_g = -(wr * d_r + wb * d_b) / wg
    return np.stack([d_r, d_g, d_b], axis=-1)


# --------------------------------------------------------------------------- known answers


@pytest.mark.parametrize("sigma", [5.0, 10.0, 20.0])
def test_recovers_added_noise_on_smooth_image(sigma):
    rgb = np.repeat(smooth_gray()[..., None], 3, axis=2)
    out = N.noise_measures(add_luma_noise(rgb, sigma, seed=int(sigma)))
    assert out["noise_sigma"] == pytest.approx(sigma, rel=0.10)


@pytest.mark.parametrize("name", ["astronaut", "coffee"])
def test_recovers_added_noise_on_real_photos(name):
    rgb = mid_grey_photo(name)
    clean = N.noise_measures(q8(rgb))["noise_sigma"]
    assert clean < 3.0  # the photo itself reads nearly noise-free
    for i, sigma in enumerate([5.0, 10.0, 20.0]):
        noisy = N.noise_measures(add_luma_noise(rgb, sigma, seed=10 + i))["noise_sigma"]
        assert math.sqrt(max(noisy ** 2 - clean ** 2, 0.0)) == pytest.approx(sigma, rel=0.10)


def test_estimate_grows_with_noise_and_snr_falls():
    rgb = mid_grey_photo("astronaut")
    outs = [N.noise_measures(add_luma_noise(rgb, s, seed=3)) for s in (2.0, 6.0, 12.0, 24.0)]
    sig = [o["noise_sigma"] for o in outs]
    snr = [o["noise_snr_db"] for o in outs]
    assert all(a < b for a, b in zip(sig, sig[1:]))
    assert all(a > b for a, b in zip(snr, snr[1:]))


def test_noise_only_in_shadows_raises_noise_shadows():
    h, w = 480, 640
    g = smooth_gray(h, w)
    g[:, : w // 3] = 0.12 + 0.03 * (g[:, : w // 3] - 0.5)  # a dark third, luma about 0.12
    rgb = np.repeat(g[..., None], 3, axis=2)
    clean = N.noise_measures(q8(rgb))
    rng = np.random.default_rng(7)
    noise = np.zeros((h, w), np.float32)
    noise[:, : w // 3] = rng.normal(0.0, 10.0 / 255.0, (h, w // 3))
    noisy = N.noise_measures(q8(rgb + noise[..., None]))
    d_shadows = noisy["noise_shadows"] - clean["noise_shadows"]
    d_sigma = noisy["noise_sigma"] - clean["noise_sigma"]
    assert noisy["noise_shadows"] == pytest.approx(10.0, rel=0.10)
    assert d_shadows > 5.0 * max(d_sigma, 0.1)


def test_noise_shadows_none_without_shadows():
    rgb = np.repeat(smooth_gray()[..., None], 3, axis=2)  # luma 0.3 .. 0.75
    assert N.noise_measures(q8(rgb))["noise_shadows"] is None


def test_chroma_noise_known_answer_leaves_luma_alone():
    rgb = mid_grey_photo("coffee")
    clean = N.noise_measures(q8(rgb))
    noisy_rgb = q8(rgb + chroma_noise(rgb.shape[:2], 8.0, seed=5))
    noisy = N.noise_measures(noisy_rgb)
    assert noisy["noise_chroma"] == pytest.approx(8.0, rel=0.10)
    assert noisy["noise_sigma"] - clean["noise_sigma"] < 0.5  # luma untouched (8-bit rounding only)


def test_luma_noise_leaves_chroma_alone():
    rgb = mid_grey_photo("coffee")
    clean = N.noise_measures(q8(rgb))
    noisy = N.noise_measures(add_luma_noise(rgb, 10.0, seed=6))
    assert noisy["noise_sigma"] > 8.0
    assert noisy["noise_chroma"] - clean["noise_chroma"] < 1.0


def test_clipped_areas_do_not_hide_noise():
    h, w = 400, 600
    rgb = np.ones((h, w, 3), np.float32)  # blown-out white everywhere...
    rng = np.random.default_rng(8)
    rgb[:, w // 2:] = 0.5 + rng.normal(0.0, 8.0 / 255.0, (h, w - w // 2, 1))  # ...but one noisy half
    out = N.noise_measures(q8(rgb))
    assert out["noise_sigma"] == pytest.approx(8.0, rel=0.10)


# --------------------------------------------------------------------------- estimator parts


def test_immerkaer_on_pure_noise():
    rng = np.random.default_rng(9)
    n = (0.5 + rng.normal(0.0, 0.04, (300, 400))).astype(np.float32)
    assert N.immerkaer_sigma(n) == pytest.approx(0.04, rel=0.03)
    # a plane and a separable quadratic are annihilated by the mask
    yy, xx = np.mgrid[0:300, 0:400].astype(np.float32)
    assert N.immerkaer_sigma(0.2 + 1e-3 * xx + 2e-3 * yy + 1e-6 * xx ** 2) < 1e-5


def test_gradient_selection_does_not_bias_white_noise():
    """Odd gradient filters and the even residual are independent: any selection is unbiased."""
    rng = np.random.default_rng(10)
    n = (0.5 + rng.normal(0.0, 0.03, (400, 500))).astype(np.float32)
    everything = N.immerkaer_sigma(n)
    for keep in (0.1, 0.3, 0.7):
        mask = N.homogeneous_mask(n, keep_fraction=keep)
        assert mask.mean() == pytest.approx(keep, abs=0.03)
        assert N.immerkaer_sigma(n, mask) == pytest.approx(everything, rel=0.03)


def test_homogeneous_mask_avoids_edges():
    yy, xx = np.mgrid[0:300, 0:300].astype(np.float32)
    r = np.hypot(yy - 150, xx - 150)
    g = np.where(r < 80, 0.85, 0.15).astype(np.float32)  # a disc: its rim is curved, unlike a
    g += np.random.default_rng(11).normal(0, 0.005, g.shape).astype(np.float32)  # straight edge
    mask = N.homogeneous_mask(g)
    assert not mask[np.abs(r - 80) < 2.0].any()
    assert N.immerkaer_sigma(g) > 0.0065  # unrestricted, the rim counts as noise...
    assert N.estimate_noise_sigma(g) == pytest.approx(0.005, rel=0.1)  # ...restricted, it does not


def test_region_restricts_estimate():
    rng = np.random.default_rng(12)
    g = np.full((300, 400), 0.5, np.float32)
    g[:, :200] += rng.normal(0.0, 0.05, (300, 200)).astype(np.float32)
    left = np.zeros(g.shape, bool)
    left[:, :200] = True
    assert N.estimate_noise_sigma(g, region=left) == pytest.approx(0.05, rel=0.08)
    assert N.estimate_noise_sigma(g, region=~left) < 0.005


def test_snr_db_definition():
    assert N.snr_db(128.0, 1.28) == pytest.approx(40.0)
    assert N.snr_db(128.0, 0.0) == N.SNR_CAP_DB
    assert N.snr_db(128.0, 1e-9) == N.SNR_CAP_DB
    assert N.snr_db(0.0, 5.0) == 0.0
    assert N.snr_db(10.0, 100.0) == 0.0
    assert N.snr_db(128.0, None) is None
    with pytest.raises(ValueError):
        N.snr_db(-1.0, 2.0)
    with pytest.raises(ValueError):
        N.snr_db(100.0, float("nan"))


def test_sample_windows():
    assert N.sample_windows((100, 200), max_pixels=10**6) == [(slice(0, 100), slice(0, 200))]
    wins = N.sample_windows((3000, 4000), max_pixels=1 << 20)
    assert len(wins) == 9
    total = sum((sy.stop - sy.start) * (sx.stop - sx.start) for sy, sx in wins)
    assert 0.9 * (1 << 20) <= total <= (1 << 20)
    for sy, sx in wins:
        assert 0 <= sy.start < sy.stop <= 3000 and 0 <= sx.start < sx.stop <= 4000
    with pytest.raises(ValueError):
        N.sample_windows((10, 10), max_pixels=0)


def test_pooled_estimate_from_windows():
    rng = np.random.default_rng(13)
    big = np.tile(smooth_gray(240, 320), (7, 7))  # 1680 x 2240: sampled with windows
    noisy = q8(big + rng.normal(0.0, 6.0 / 255.0, big.shape).astype(np.float32))
    windows = N.sample_windows(noisy.shape)
    assert len(windows) == 9
    assert N.pooled_noise_sigma([noisy[sy, sx] for sy, sx in windows]) == pytest.approx(6.0, rel=0.10)
    assert N.pooled_noise_sigma(noisy[:400, :500]) == pytest.approx(6.0, rel=0.10)
    with pytest.raises(ValueError):
        N.pooled_noise_sigma([])


def test_detail_luma_windows_match_detail_gray():
    rng = np.random.default_rng(15)
    detail = rng.uniform(0, 1, (1200, 1000, 3)).astype(np.float32)  # 1.2 Mpx: over the budget
    photo = Photo(rgb=detail[::4, ::4].copy(), detail=detail, detail_scale=1.0)
    pieces = N.detail_luma(photo)
    windows = N.sample_windows(detail.shape)
    assert len(pieces) == len(windows) == 9
    for piece, (sy, sx) in zip(pieces, windows):
        np.testing.assert_allclose(piece, photo.detail_gray[sy, sx], atol=1e-6)
    small = Photo(rgb=detail[::4, ::4].copy(), detail=detail[:500, :500], detail_scale=1.0)
    assert N.detail_luma(small) is small.detail_gray


# --------------------------------------------------------------------------- input checks


@pytest.mark.parametrize(
    "bad",
    [np.zeros((50, 50), np.float32), np.zeros((50, 50, 4), np.float32), np.zeros((10, 50, 3), np.float32)],
)
def test_bad_rgb_raises(bad):
    with pytest.raises(ValueError):
        N.noise_measures(bad)


def test_non_finite_raises():
    rgb = np.full((40, 40, 3), 0.5, np.float32)
    rgb[3, 4, 1] = np.nan
    with pytest.raises(ValueError, match="non-finite"):
        N.noise_measures(rgb)
    with pytest.raises(ValueError, match="non-finite"):
        N.estimate_noise_sigma(rgb[..., 1])


def test_bad_arguments_raise():
    g = np.full((40, 40), 0.5, np.float32)
    with pytest.raises(ValueError):
        N.estimate_noise_sigma(g, keep_fraction=0.0)
    with pytest.raises(ValueError):
        N.estimate_noise_sigma(g, region=np.ones((10, 10), bool))
    with pytest.raises(ValueError):
        N.immerkaer_sigma(g, mask=np.zeros((40, 40), bool))
    with pytest.raises(ValueError):
        N.noise_measures(np.full((40, 40, 3), 0.5, np.float32), luma=np.zeros((20, 40), np.float32))


# --------------------------------------------------------------------------- registered group


def test_registered_group_native_from_large_detail():
    detail = np.repeat(np.tile(smooth_gray(240, 320), (5, 5))[..., None], 3, axis=2)  # 1200 x 1600
    detail = add_luma_noise(detail, 7.0, seed=17)
    out = measure_all(Photo(rgb=detail[::3, ::3].copy(), detail=detail), ["noise"])
    assert out["noise_sigma_native"] == pytest.approx(7.0, rel=0.10)


def test_registered_group_keys_and_native():
    rng = np.random.default_rng(14)
    detail = mid_grey_photo("astronaut")
    detail = q8(detail + rng.normal(0.0, 8.0 / 255.0, detail.shape[:2])[..., None].astype(np.float32))
    working = detail[::2, ::2].copy()
    out = measure_all(Photo(rgb=working), ["noise"])
    assert set(out) == KEYS
    assert out["noise_sigma_native"] is None
    out = measure_all(Photo(rgb=working, detail=detail), ["noise"])
    assert set(out) == KEYS
    assert out["noise_sigma_native"] == pytest.approx(8.0, rel=0.15)
    assert all(isinstance(out[k], float) for k in KEYS)


def test_registered_group_rejects_tiny_photo():
    with pytest.raises(AnalysisError):
        measure_all(Photo(rgb=np.full((8, 8, 3), 0.5, np.float32)), ["noise"])
