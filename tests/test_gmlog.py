"""GM-LOG features: filter and histogram known answers, the distributions' definitions, the directions
blur and noise move them, degenerate and shifted inputs, the analysis-size rule and the group's keys.

Directions verified (skimage photos, luma at long side 384-512 px): Gaussian blur moves the
normalised |LOG| towards low levels, and the normalised GM *up* (blur removes LOG faster than GM,
so GM takes over the shared normalisation: less of P_G sits at level 0). White noise makes GM and
LOG less dependent: Q_G moves towards P_G (their total-variation distance falls), and it moves the
normalised |LOG| up.
"""

import math

import cv2
import numpy as np
import pytest
from skimage import data

from picinspector.errors import AnalysisError
from picinspector.io import Photo
from picinspector.io._photo import LUMA_WEIGHTS
from picinspector.measures import MEASURE_GROUPS, measure_all, measure_units
from picinspector.measures import _gmlog as G

LEVELS = np.arange(G.LEVELS)


def q8(x):
    return (np.round(np.clip(x, 0.0, 1.0) * 255.0) / 255.0).astype(np.float32)


def photo_luma(name, long_side=512):
    """A skimage photo as 8-bit-quantised [0, 1] luma, area-reduced to ``long_side`` if longer."""
    g = getattr(data, name)().astype(np.float32) / 255.0
    if g.ndim == 3:
        g = g[..., :3] @ LUMA_WEIGHTS
    s = long_side / max(g.shape)
    if s < 1:
        g = cv2.resize(g, (round(g.shape[1] * s), round(g.shape[0] * s)), interpolation=cv2.INTER_AREA)
    return q8(g)


def dists(gray):
    f = G.gmlog_features(gray)
    return dict(zip(("pg", "pl", "qg", "ql"), f.reshape(4, G.LEVELS)))


def tv(p, q):
    return 0.5 * float(np.abs(np.asarray(p) - np.asarray(q)).sum())


# --------------------------------------------------------------------------- filters and levels


def test_kernels_have_exact_ramp_and_parabola_answers():
    x = np.arange(-10, 11, dtype=np.float64)
    for sigma in (0.5, 1.0, 2.0):
        g, d, s = (k.astype(np.float64) for k in G._kernels(sigma))
        r = (len(g) - 1) // 2
        t = x[10 - r: 11 + r]
        assert g.sum() == pytest.approx(1.0, abs=1e-6)
        assert np.dot(d, t) == pytest.approx(1.0, abs=1e-6)  # unit ramp -> 1
        assert abs(d.sum()) < 1e-6 and abs(np.dot(d, t * t)) < 1e-6
        assert abs(s.sum()) < 1e-6 and abs(np.dot(s, t)) < 1e-6
        assert np.dot(s, t * t / 2) == pytest.approx(1.0, abs=1e-6)  # x^2 / 2 -> 1


def test_responses_of_a_ramp_and_a_parabola():
    """A ramp of slope a has GM = a and LOG = 0, so GM / N = a / (a / sqrt(2) + C); a parabola
    a (x - x0)^2 / 2 has GM = a |x - x0| and LOG = a, so the ratio of the normalised responses is
    LOG_WEIGHT / |x - x0| whatever the normalisation."""
    yy, xx = np.mgrid[0:64, 0:80].astype(np.float32)
    slope = 2.0  # levels per pixel
    gm, log = G.normalized_responses((20.0 + slope * (0.6 * xx + 0.8 * yy)) / 255.0)
    np.testing.assert_allclose(gm, slope / (slope / math.sqrt(2.0) + G.C_LEVELS), rtol=1e-4)
    assert float(np.abs(log).max()) < 1e-3
    a = 0.1
    gm, log = G.normalized_responses((10.0 + a * (xx - 40.0) ** 2 / 2) / 255.0)
    b = (64 - gm.shape[0]) // 2  # the border cut from every side
    assert b > 0 and gm.shape == (64 - 2 * b, 80 - 2 * b)
    dist = np.abs(xx - 40.0)[b:-b, b:-b]
    far = dist >= 2
    np.testing.assert_allclose(log[far] / gm[far], G.LOG_WEIGHT / dist[far], rtol=1e-3)


def test_joint_histogram_levels_and_top_clamp():
    gm = np.array([[0.05, 0.25, 0.5, 1.9, 2.5, 50.0]], np.float32)
    lo = np.array([[0.1, 0.1, 0.7, 0.0, 3.0, 0.39]], np.float32)
    k = G.joint_histogram(gm, lo)
    want = np.zeros((10, 10))
    for m, n in [(0, 0), (1, 0), (2, 3), (9, 0), (9, 9), (9, 1)]:
        want[m, n] += 1 / 6
    np.testing.assert_allclose(k, want)


def test_distributions_known_answers():
    p, q = np.array([0.5, 0.3, 0.2, 0, 0, 0, 0, 0, 0, 0]), np.linspace(1, 2, 10)
    q /= q.sum()
    pg, pl, qg, ql = G.distributions(np.outer(p, q))  # independent G and L
    np.testing.assert_allclose(pg, p, atol=1e-12)
    np.testing.assert_allclose(pl, q, atol=1e-12)
    np.testing.assert_allclose(qg, p, atol=1e-12)  # Q = P exactly under independence
    np.testing.assert_allclose(ql, q, atol=1e-12)
    # Fully dependent (L level = G level): each conditional is a point mass, so with alpha = 0 the
    # independency distributions are uniform over the occupied levels, whatever the marginals.
    k = np.diag([0.7, 0.2, 0.1] + [0.0] * 7)
    pg, pl, qg, ql = G.distributions(k, alpha=0.0)
    np.testing.assert_allclose(pg, np.diag(k))
    np.testing.assert_allclose(qg, [1 / 3] * 3 + [0] * 7)
    np.testing.assert_allclose(ql, [1 / 3] * 3 + [0] * 7)
    # The default alpha discounts a rare conditioning level: 0.1 / (0.1 + alpha) < 0.7 / (0.7 + alpha).
    qg = G.distributions(k)[2]
    assert qg[0] > qg[1] > qg[2] > 0


def test_reduction_to_the_analysis_size():
    assert [G.reduction_factor(n) for n in (100, 512, 767, 768, 1024, 1536)] == [1, 1, 1, 2, 2, 3]
    assert G.reduction_factor(1024, long_side=0) == 1
    # A 1024-px image is analysed as its 2 x 2 area reduction: the same features as that image.
    g = photo_luma("retina", 1024)
    half = cv2.resize(g, (512, 512), interpolation=cv2.INTER_AREA)
    np.testing.assert_allclose(G.gmlog_features(g), G.gmlog_features(half), atol=1e-6)


# --------------------------------------------------------------------------- photos and distortions


@pytest.mark.parametrize("name", ["astronaut", "coffee"])
def test_distributions_sum_to_one(name):
    f = G.gmlog_features(photo_luma(name))
    assert f.shape == (40,) and f.dtype == np.float64
    assert np.all(f >= 0)
    np.testing.assert_allclose(f.reshape(4, 10).sum(axis=1), 1.0, atol=1e-9)
    # a photo spreads over many levels, unlike a flat image
    assert all(np.count_nonzero(d > 0.01) >= 5 for d in f.reshape(4, 10))


@pytest.mark.parametrize("level", [0.0, 0.5, 1.0])
def test_flat_image_gives_defined_finite_features(level):
    f = G.gmlog_features(np.full((40, 56), level, np.float32)).reshape(4, 10)
    assert np.all(np.isfinite(f))
    np.testing.assert_array_equal(f, np.tile(np.eye(10)[0], (4, 1)))  # all mass at level 0


@pytest.mark.parametrize("name", ["astronaut", "coffee", "chelsea"])
def test_blur_moves_log_down_and_gm_up(name):
    g = photo_luma(name, 384)
    runs = [dists(g)] + [dists(q8(cv2.GaussianBlur(g, (0, 0), s))) for s in (1.0, 2.0, 3.0)]
    mean_pl = [float(r["pl"] @ LEVELS) for r in runs]
    assert all(b < a for a, b in zip(mean_pl, mean_pl[1:])), mean_pl
    assert mean_pl[-1] < 0.5 * mean_pl[0]
    pg0 = [float(r["pg"][0]) for r in runs]  # P_G's lowest level empties as GM dominates
    assert all(b < a for a, b in zip(pg0, pg0[1:])), pg0


@pytest.mark.parametrize("name", ["astronaut", "coffee", "chelsea"])
def test_white_noise_weakens_the_gm_log_dependency(name):
    g = photo_luma(name, 384)
    rng = np.random.default_rng(11)
    runs = [dists(g)] + [dists(q8(g + rng.normal(0, s / 255, g.shape))) for s in (5.0, 10.0, 20.0)]
    dep = [tv(r["qg"], r["pg"]) for r in runs]  # 0 when GM and LOG are independent
    assert all(b < a for a, b in zip(dep, dep[1:])), dep
    assert dep[-1] < 0.5 * dep[0]
    mean_pl = [float(r["pl"] @ LEVELS) for r in runs]
    assert all(b > a for a, b in zip(mean_pl, mean_pl[1:])), mean_pl


SHIFTS = [((slice(None), slice(None, -1)), (slice(None), slice(1, None))),
          ((slice(None, -1), slice(None)), (slice(1, None), slice(None)))]


def shift_changes(g):
    """Largest total-variation distance of any distribution, and largest relative change of any
    level holding >= 5 %, between the image and the image shifted by 1 px (either axis)."""
    worst_tv = worst_rel = 0.0
    for a, b in SHIFTS:
        fa, fb = dists(g[a]), dists(g[b])
        for key in fa:
            worst_tv = max(worst_tv, tv(fa[key], fb[key]))
            big = fa[key] >= 0.05
            worst_rel = max(worst_rel, float(np.max(np.abs(fa[key] - fb[key])[big] / fa[key][big])))
    return worst_tv, worst_rel


@pytest.mark.parametrize("name", ["astronaut", "coffee"])
def test_one_pixel_shift_at_the_analysis_size(name):
    worst_tv, worst_rel = shift_changes(photo_luma(name, 512))
    assert worst_tv < 0.003 and worst_rel < 0.02, (worst_tv, worst_rel)


@pytest.mark.parametrize("name", ["retina", "hubble_deep_field"])
def test_one_pixel_shift_of_a_large_photo(name):
    """At 1000-1024 px a 1-px shift is a half-pixel shift of the 2 x 2 reduced analysis image, a new
    sample of the finest detail: < 1 % of any distribution's mass moves, and no level holding
    >= 5 % changes by 4 % of itself or more (the independency distributions move most)."""
    worst_tv, worst_rel = shift_changes(photo_luma(name, 1024))
    assert worst_tv < 0.01 and worst_rel < 0.04, (worst_tv, worst_rel)


# --------------------------------------------------------------------------- registration and errors


def test_group_returns_exactly_its_documented_keys():
    group = MEASURE_GROUPS["gmlog"]
    names = [o.name for o in group.outputs]
    want = [f"gmlog_{d}_{k}" for d in ("pg", "pl", "qg", "ql") for k in range(10)]
    assert names == want == list(G.FEATURE_NAMES)
    assert all(o.unit and o.description for o in group.outputs)
    assert set(names) <= set(measure_units())
    rgb = np.dstack([photo_luma("coffee", 300)] * 3)
    out = measure_all(Photo(rgb=rgb), ["gmlog"])
    assert list(out) == names
    assert all(isinstance(v, float) and math.isfinite(v) for v in out.values())
    np.testing.assert_allclose([out[k] for k in names], G.gmlog_features(rgb[..., 0]), atol=1e-6)


@pytest.mark.parametrize("bad, reason", [
    (np.zeros((10, 40), np.float32), "too small"),
    (np.zeros((3, 32, 32), np.float32), "2-D"),
    (np.full((32, 32), np.nan, np.float32), "non-finite"),
])
def test_bad_luma_is_rejected(bad, reason):
    with pytest.raises(ValueError, match=reason):
        G.gmlog_features(bad)


def test_adapter_names_the_file():
    photo = Photo(rgb=np.zeros((10, 10, 3), np.float32), path="tiny.png")
    with pytest.raises(AnalysisError, match="tiny.png.*gmlog.*too small"):
        G.measure_gmlog(photo)
