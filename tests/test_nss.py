"""NSS (BRISQUE) features: moment fits on known distributions, agreement with a plain float64
implementation, the directions blur and noise move the features, degenerate and shifted inputs,
and the registered group's keys.

Directions verified (skimage photos, luma, long side 384 px): Gaussian blur lowers the MSCN
variance at both scales and the patch sharpness; white noise raises the MSCN shape alpha (from
about 1.5 to 2 and beyond: self-normalised noise has lighter tails than a Gaussian), raises the MSCN
variance and makes the kurtosis negative. Blur does not move alpha consistently (it rises on some
photos and falls on others), so no direction is asserted for it.
"""

import math
from concurrent.futures import ThreadPoolExecutor

import cv2
import numpy as np
import pytest
from scipy import ndimage, special, stats
from skimage import data

from picinspector.errors import AnalysisError
from picinspector.io import Photo
from picinspector.io._photo import LUMA_WEIGHTS
from picinspector.measures import MEASURE_GROUPS, measure_all, measure_units
from picinspector.measures import _nss as N

EXTRAS = {"nss_s1_mscn_kurtosis", "nss_s2_mscn_kurtosis", "nss_patch_sharpness_mean",
          "nss_patch_sharpness_std", "nss_sharp_patch_frac"}


def photo_luma(name, long_side=384):
    """A skimage sample photo as [0, 1] luma, area-reduced to ``long_side`` and 8-bit quantised."""
    g = (getattr(data, name)().astype(np.float32) / 255.0) @ LUMA_WEIGHTS
    s = long_side / max(g.shape)
    if s < 1:
        g = cv2.resize(g, (round(g.shape[1] * s), round(g.shape[0] * s)), interpolation=cv2.INTER_AREA)
    return q8(g)


def q8(x):
    return (np.round(np.clip(x, 0.0, 1.0) * 255.0) / 255.0).astype(np.float32)


def feats(gray):
    f, extras = N.nss_features(gray)
    out = dict(zip(N.FEATURE_NAMES, f))
    out.update({f"nss_{k}": v for k, v in extras.items()})
    return out


def aggd_samples(nu, beta_l, beta_r, n, seed):
    """Asymmetric generalised Gaussian: each side is a half generalised Gaussian of its own scale,
    chosen with probability proportional to that scale (which makes the density continuous at 0)."""
    rng = np.random.default_rng(seed)
    mag = rng.gamma(1.0 / nu, 1.0, n) ** (1.0 / nu)
    left = rng.random(n) < beta_l / (beta_l + beta_r)
    return np.where(left, -beta_l * mag, beta_r * mag)


# --------------------------------------------------------------------------- moment fits


@pytest.mark.parametrize("alpha", [0.5, 1.0, 2.0, 3.0])
def test_ggd_fit_recovers_shape_and_variance(alpha):
    dist = stats.gennorm(beta=alpha, scale=0.7)
    x = dist.rvs(size=200_000, random_state=np.random.default_rng(int(alpha * 10)))
    a, var = N.fit_ggd(x)
    assert a == pytest.approx(alpha, rel=0.05)
    assert var == pytest.approx(dist.var(), rel=0.05)


def test_ratio_table_known_answers():
    # E|x|^2 / E[x^2]: Laplacian b^2 / 2b^2 = 1/2 -> 1; Gaussian 2/pi -> 2; beyond the table -> its ends.
    assert N.ggd_shape_from_ratio(0.5) == pytest.approx(1.0, abs=1e-3)
    assert N.ggd_shape_from_ratio(2 / math.pi) == pytest.approx(2.0, abs=1e-3)
    assert N.ggd_shape_from_ratio(0.75) == pytest.approx(N.SHAPE_MAX)
    assert N.ggd_shape_from_ratio(1e-6) == pytest.approx(N.SHAPE_MIN)
    shapes = np.array([0.3, 0.8, 1.7, 4.0, 9.0])
    rho = np.exp(2 * special.gammaln(2 / shapes) - special.gammaln(1 / shapes) - special.gammaln(3 / shapes))
    back = N.ggd_shape_from_ratio(rho)  # vectorised
    assert isinstance(back, np.ndarray) and back.shape == shapes.shape
    np.testing.assert_allclose(back, shapes, rtol=1e-3)


@pytest.mark.parametrize("nu, beta_l, beta_r", [(0.6, 0.5, 1.0), (1.5, 1.0, 0.6), (1.0, 0.8, 0.8)])
def test_aggd_fit_recovers_shape_variance_ratio_and_mean(nu, beta_l, beta_r):
    x = aggd_samples(nu, beta_l, beta_r, 300_000, seed=int(nu * 100))
    fnu, eta, lvar, rvar = N.fit_aggd(x)
    assert fnu == pytest.approx(nu, rel=0.05)
    # Each side's mean square is beta^2 Gamma(3/nu) / Gamma(1/nu): the ratio is (beta_l / beta_r)^2.
    assert lvar / rvar == pytest.approx((beta_l / beta_r) ** 2, rel=0.05)
    g = math.exp(0.5 * (special.gammaln(3 / nu) - special.gammaln(1 / nu)))
    assert math.sqrt(rvar) == pytest.approx(beta_r * g, rel=0.05)
    true_mean = (beta_r - beta_l) * math.exp(special.gammaln(2 / nu) - special.gammaln(1 / nu))
    scale = math.sqrt((lvar + rvar) / 2)
    assert abs(eta - true_mean) < 0.02 * scale
    assert abs(eta - x.mean()) < 0.02 * scale


def test_degenerate_and_one_sided_samples_are_finite():
    assert N.fit_ggd(np.zeros(100)) == (N.DEGENERATE_SHAPE, 0.0)
    assert N.fit_aggd(np.zeros(100)) == (N.DEGENERATE_SHAPE, 0.0, 0.0, 0.0)
    x = np.abs(aggd_samples(1.0, 1.0, 1.0, 50_000, seed=3))  # only a right side
    nu, eta, lvar, rvar = N.fit_aggd(x)
    assert lvar == 0.0 and rvar > 0 and eta > 0 and math.isfinite(nu)
    assert nu == pytest.approx(1.0, rel=0.05)  # a half-Laplacian is the one-sided limit


@pytest.mark.parametrize("bad, reason", [(np.array([]), "no samples"), (np.array([1.0, np.nan]), "non-finite")])
def test_fits_reject_bad_samples(bad, reason):
    for fit in (N.fit_ggd, N.fit_aggd):
        with pytest.raises(ValueError, match=reason):
            fit(bad)


# --------------------------------------------------------------------------- agreement with the definition


def reference_features(gray):
    """BRISQUE written plainly in float64 on 0-255 (scipy filters, boolean indexing)."""
    k1 = np.exp(-0.5 * (np.arange(-3, 4) / (7 / 6)) ** 2)
    k = np.outer(k1, k1) / np.outer(k1, k1).sum()
    out = []
    img = np.asarray(gray, np.float64) * 255.0
    for scale in (1, 2):
        if scale == 2:
            b = np.array([1, 4, 6, 4, 1], float) / 16
            img = ndimage.correlate1d(ndimage.correlate1d(img, b, 0, mode="nearest"), b, 1, mode="nearest")
            img = img[::2, ::2]  # Burt-Adelson reduction, as cv2.pyrDown
        mu = ndimage.correlate(img, k, mode="nearest")
        sd = np.sqrt(np.abs(ndimage.correlate(img * img, k, mode="nearest") - mu * mu))
        m = (img - mu) / (sd + 1.0)
        out += list(N.fit_ggd(m))
        for p in (m[:, :-1] * m[:, 1:], m[:-1] * m[1:], m[:-1, :-1] * m[1:, 1:], m[:-1, 1:] * m[1:, :-1]):
            out += list(N.fit_aggd(p, zero_tol=N.ZERO_TOL))
    return np.array(out)


def test_features_match_a_plain_float64_implementation():
    g = photo_luma("coffee", 200)
    got, ref = N.brisque_features(g), reference_features(g)
    assert got.shape == (36,) and got.dtype == np.float64
    np.testing.assert_allclose(got, ref, rtol=2e-3, atol=2e-5)


def test_mscn_matches_definition_on_0_255():
    g = photo_luma("chelsea", 160)
    k1 = cv2.getGaussianKernel(7, 7 / 6, cv2.CV_64F)
    I = g.astype(np.float64) * 255
    mu = cv2.sepFilter2D(I, -1, k1, k1, borderType=cv2.BORDER_REPLICATE)
    sd = np.sqrt(np.abs(cv2.sepFilter2D(I * I, -1, k1, k1, borderType=cv2.BORDER_REPLICATE) - mu * mu))
    np.testing.assert_allclose(N.mscn(g), (I - mu) / (sd + 1), atol=2e-3)


# --------------------------------------------------------------------------- photos and distortions


@pytest.mark.parametrize("name", ["astronaut", "coffee"])
def test_clean_photo_is_near_gaussian(name):
    f = feats(photo_luma(name))
    assert 1.3 <= f["nss_s1_mscn_alpha"] <= 3.0
    assert 1.3 <= f["nss_s2_mscn_alpha"] <= 3.0
    assert 0.05 < f["nss_s1_mscn_var"] < 1.0
    assert -1.0 < f["nss_s1_mscn_kurtosis"] < 2.0


@pytest.mark.parametrize("name", ["astronaut", "coffee"])
def test_blur_lowers_mscn_variance_and_patch_sharpness(name):
    g = photo_luma(name)
    runs = [feats(g)] + [feats(q8(cv2.GaussianBlur(g, (0, 0), s))) for s in (1.0, 2.0, 3.0)]
    for key in ("nss_s1_mscn_var", "nss_s2_mscn_var", "nss_patch_sharpness_mean"):
        values = [r[key] for r in runs]
        assert all(b < a for a, b in zip(values, values[1:])), (key, values)


@pytest.mark.parametrize("name", ["astronaut", "coffee"])
def test_white_noise_raises_alpha_and_variance(name):
    g = photo_luma(name)
    rng = np.random.default_rng(7)
    runs = [feats(g)] + [feats(q8(g + rng.normal(0, s / 255, g.shape))) for s in (5.0, 10.0, 20.0)]
    for key in ("nss_s1_mscn_alpha", "nss_s1_mscn_var", "nss_s2_mscn_var"):
        values = [r[key] for r in runs]
        assert all(b > a for a, b in zip(values, values[1:])), (key, values)
    assert runs[0]["nss_s1_mscn_alpha"] < 2.0 < runs[-1]["nss_s1_mscn_alpha"]
    assert runs[0]["nss_s1_mscn_kurtosis"] > 0 > runs[-1]["nss_s1_mscn_kurtosis"]


@pytest.mark.parametrize("level", [0.0, 0.5, 1.0])
def test_flat_image_gives_defined_finite_features(level):
    f = feats(np.full((64, 80), level, np.float32))
    assert all(math.isfinite(v) for v in f.values())
    for s in ("s1", "s2"):
        assert f[f"nss_{s}_mscn_alpha"] == N.DEGENERATE_SHAPE and f[f"nss_{s}_mscn_var"] == 0.0
        for key, _ in N.PAIRS:
            assert f[f"nss_{s}_{key}_nu"] == N.DEGENERATE_SHAPE
            assert f[f"nss_{s}_{key}_eta"] == f[f"nss_{s}_{key}_lvar"] == f[f"nss_{s}_{key}_rvar"] == 0.0
        assert f[f"nss_{s}_mscn_kurtosis"] == 0.0
    # float32 E[I^2] - mu^2 leaves a round-off floor of under 0.1 level on a flat bright area
    assert 0.0 <= f["nss_patch_sharpness_mean"] < 0.1 and f["nss_patch_sharpness_std"] < 1e-6
    assert f["nss_sharp_patch_frac"] == 1.0


def test_single_step_edge_is_finite():
    g = np.full((48, 48), 0.2, np.float32)
    g[:, 24:] = 0.8
    assert np.all(np.isfinite(N.brisque_features(g)))


def test_flat_area_does_not_dilute_the_side_variances():
    """Products in a flat area are float round-off (about 1e-10, all of one sign) and count as
    zero: beside a flat area of equal size, the side variances stay those of the textured half."""
    g = photo_luma("coffee", 256)
    padded = np.hstack([g, np.full_like(g, 0.5)])
    alone, both = feats(g), feats(padded)
    for key, _ in N.PAIRS:
        for side in ("lvar", "rvar"):
            name = f"nss_s1_{key}_{side}"
            assert both[name] == pytest.approx(alone[name], rel=0.15), name


@pytest.mark.parametrize("name", ["astronaut", "coffee"])
def test_one_pixel_shift_changes_features_little(name):
    """Shapes and variances change < 2 % (eta by < 2 % of its product's spread). The scale-2 side
    variances may change up to 6 %: a 1-px shift is a half-pixel shift at scale 2, so the reduced
    image is a new sample, and the mean square of the (rarer) negative products is a heavy-tailed
    estimate."""
    g = photo_luma(name, 600)
    for a, b in [((slice(None), slice(None, -1)), (slice(None), slice(1, None))),
                 ((slice(None, -1), slice(None)), (slice(1, None), slice(None)))]:
        fa, fb = feats(g[a]), feats(g[b])
        for key in N.FEATURE_NAMES:
            if key.endswith("_eta"):
                stem = key[: -len("eta")]
                spread = math.sqrt((fa[stem + "lvar"] + fa[stem + "rvar"]) / 2)
                assert abs(fa[key] - fb[key]) < 0.02 * spread, key
            else:
                tol = 0.06 if key.startswith("nss_s2_") and key.endswith("var") and "mscn" not in key else 0.02
                assert fa[key] == pytest.approx(fb[key], rel=tol), key
        for key in ("nss_s1_mscn_kurtosis", "nss_patch_sharpness_mean", "nss_patch_sharpness_std"):
            assert fa[key] == pytest.approx(fb[key], rel=0.05), key


def test_patch_sharpness_known_answers():
    sigma = np.zeros((192, 288), np.float32)  # 2 x 3 patches of 96 px
    sigma[:96, :96] = 8.0
    sigma[96:, 192:] = 7.0
    sigma[:96, 96:192] = 5.0
    mean, std, frac = N.patch_sharpness_stats(np.pad(sigma, ((0, 50), (0, 40))))  # remainder ignored
    vals = np.array([8.0, 5.0, 0.0, 0.0, 0.0, 7.0])
    assert mean == pytest.approx(vals.mean()) and std == pytest.approx(vals.std())
    assert frac == pytest.approx(2 / 6)  # 8 and 7 are >= 0.75 * 8; 5 is not
    assert N.patch_sharpness_stats(sigma / 255.0, scale=255.0)[0] == pytest.approx(mean, rel=1e-5)
    denom = (sigma + 1.0) / 255.0  # the MSCN denominator sigma + C, on [0, 1]
    assert N.patch_sharpness_stats(denom, scale=255.0, offset=1.0) == pytest.approx((mean, std, frac), rel=1e-5)


def test_results_do_not_depend_on_earlier_calls_or_threads():
    """No result may depend on what ran before or beside it (no state kept between calls)."""
    small, big = photo_luma("coffee", 200), photo_luma("astronaut", 400)
    with ThreadPoolExecutor(1) as fresh:
        want_small = fresh.submit(N.brisque_features, small).result()
    with ThreadPoolExecutor(1) as fresh:
        want_big = fresh.submit(N.brisque_features, big).result()
    # equal up to summation order (SIMD sums depend on the buffer's alignment)
    same = dict(rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(N.brisque_features(big), want_big, **same)
    np.testing.assert_allclose(N.brisque_features(small), want_small, **same)  # after a larger image
    with ThreadPoolExecutor(2) as pool:
        got = list(pool.map(N.brisque_features, [small, big] * 4))
    for i, f in enumerate(got):
        np.testing.assert_allclose(f, want_small if i % 2 == 0 else want_big, **same)


# --------------------------------------------------------------------------- registration and errors


def test_group_returns_exactly_its_documented_keys():
    group = MEASURE_GROUPS["nss"]
    names = [o.name for o in group.outputs]
    assert len(names) == len(set(names)) == 36 + len(EXTRAS)
    assert names[:36] == list(N.FEATURE_NAMES) and set(names[36:]) == EXTRAS
    assert all(o.unit and o.description for o in group.outputs)
    rgb = np.dstack([photo_luma("coffee", 256)] * 3)
    out = measure_all(Photo(rgb=rgb), ["nss"])
    assert set(out) == set(names)
    assert all(isinstance(v, float) and math.isfinite(v) for v in out.values())
    assert set(names) <= set(measure_units())
    np.testing.assert_allclose([out[k] for k in N.FEATURE_NAMES], N.brisque_features(rgb[..., 0]), rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("bad, reason", [
    (np.zeros((10, 40), np.float32), "too small"),
    (np.zeros((3, 32, 32), np.float32), "2-D"),
    (np.full((32, 32), np.nan, np.float32), "non-finite"),
])
def test_bad_luma_is_rejected(bad, reason):
    with pytest.raises(ValueError, match=reason):
        N.brisque_features(bad)


def test_adapter_names_the_file():
    photo = Photo(rgb=np.zeros((10, 10, 3), np.float32), path="tiny.png")
    with pytest.raises(AnalysisError, match="tiny.png.*nss.*too small"):
        N.measure_nss(photo)
