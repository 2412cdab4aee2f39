"""Focus: how sharp the strongest edges are, whether blur is defocus or motion, and where it is sharp.

Method (one pass of a few OpenCV filters over the luma):

1. Re-blur ratio per edge. The image is lightly pre-filtered (Gaussian, 0.5 px, against noise) and
   its gradient magnitude ``g1`` taken; it is then re-blurred with a known Gaussian (2 px) and the
   gradient ``g2`` taken again. For a step edge blurred by a Gaussian of standard deviation
   ``s``, ``g1 / g2 = sqrt(s^2 + s0^2) / s``, so the edge's own blur is
   ``s^2 = s0^2 / ((g1 / g2)^2 - 1)`` whatever the edge's contrast: the measure is contrast and
   brightness invariant by construction. This is the re-blur principle of Crete-Roffet et al. and
   the gradient-ratio defocus estimate of Zhuo & Sim, evaluated only at edge centres (non-maximum
   suppression of ``g2`` along the gradient) of the strongest edges.
   Thin lines (a dark joint between white panels, a wire) are ridges, not steps: their flanks
   are measured with the line model (:func:`edge_blur_samples`), in which the same ratio means
   the same blur. Block edges of a visible JPEG grid, pixel-sharp whatever the photo's blur, are
   left out.
2. Directional model. A blur kernel with covariance ``C`` blurs an edge with unit normal ``n`` by a
   1-D profile of variance ``n^T C n = a + b cos 2t + c sin 2t`` (``t`` the normal's angle). Edge blur
   estimates are binned by normal orientation (8 bins), the median taken per bin, and the
   cosine model fitted. Defocus gives a flat curve; linear motion blurs edges whose normal lies
   along the motion and spares those across it, so the phase of the fit is the motion direction
   and its relative amplitude the anisotropy (as the directional analyses of Yitzhaky & Kopeika do
   on the image spectrum). Orientations that a long motion has emptied of edges count as blurred
   beyond measure.
3. Focus is read from the mean of the orientation-averaged blur variance and the fitted worst
   direction, converted to the edge's own Gaussian sigma (less the blur of our own filters,
   calibrated on synthetic area-sampled edges) and mapped to 0-1 with
   ``1 / (1 + (sigma / 1.6) ** 2.5)``.

Using only strong edges (top of the candidates per orientation) makes the measure indifferent to
how much texture a scene has, and to moderate noise and JPEG compression, which change weak
gradients but hardly the profile of a strong edge.
"""

from __future__ import annotations

import math
from functools import lru_cache

import cv2
import numpy as np

from ..errors import AnalysisError
from ..io._photo import Photo
from ._checks import check_gray
from ._registry import measure_group
from ._scratch import scratch

#: Gaussian pre-filter (px) applied before the fine-scale gradient, against noise.
PREFILTER_SIGMA = 0.5
#: The known re-blur (px).
REBLUR_SIGMA = 2.0
#: Edge candidates: re-blurred gradient above this absolute floor (gradient per px on a [0, 1]
#: scale: a step of about 6 levels)...
MIN_GRADIENT = 0.004
#: ...and above this multiple of the image's median re-blurred gradient (noise and flat areas)
#: or, where that is higher (dense detail everywhere), above this quantile of it.
NOISE_FLOOR = 3.0
CAP_QUANTILE = 0.75
#: Strongest fraction of the edge points kept in each orientation bin...
KEEP_PER_BIN = 0.4
#: ...thinned evenly to at most this many (medians need no more; it bounds the cost).
MAX_PER_BIN = 3000
#: Images with more pixels than this (a 1024 x 683 working image has 0.7 M) use a fixed
#: pseudo-random half of their edge candidates.
THIN_ABOVE_PIXELS = 500_000
#: Thin-line test: the other flank is searched this many px away along the normal...
RIDGE_SEARCH = (3, 4, 5, 6, 7, 8)
#: ...as a gradient of the opposite sign at least this fraction of the point's own...
RIDGE_OPPOSITE = 0.35
#: ...and the line model's weight falls from 1 to 0 as the point's fine gradient over the fine peak
#: within 2 px rises between these two values.
RIDGE_DISPLACED = (0.3, 0.9)
#: A block grid is "visible" (its boundary edges are left out) when the mean step across its
#: boundaries is at least this many times the step elsewhere (about 1.05 at JPEG quality 90,
#: 1.3-1.5 at 50).
GRID_VISIBLE = 1.15
#: This many neighbouring orientation bins (of 8) without any edge, while others have edges, are
#: taken as lost to a long linear motion (see :func:`directional_blur`).
EMPTY_RUN_LOST = 4
#: Orientation bins over [0, 180) degrees.
N_BINS = 8
#: Fewest edge points for an orientation bin to count, and for the whole image to be judged.
MIN_BIN_EDGES = 10
MIN_EDGES = 50
#: Fewest populated bins to fit the directional model (anisotropy and motion angle).
MIN_BINS_FOR_DIRECTION = 5
#: Blur ratio v = (g2 / g1)^2 = s^2 / (s^2 + s0^2) is capped here (s = 8.7 px): beyond it the
#: ratio is too close to 1 to measure.
V_CAP = 0.95
#: Variance (px^2) our pre-filter and 3x3 derivative add to every edge, calibrated on synthetic
#: area-sampled step edges (an ideal pixel-sharp edge keeps its 1/12 px^2 pixel aperture).
FILTER_VARIANCE = 0.65
#: The narrowest edge a pixel grid can show: a box of one pixel, variance 1/12 px^2.
PIXEL_VARIANCE = 1.0 / 12.0
#: Mapping of edge sigma to focus: ``1 / (1 + (sigma / SIGMA_HALF) ** FOCUS_SHAPE)``.
SIGMA_HALF = 1.6
FOCUS_SHAPE = 2.5
#: Focus at or above this reads "sharp" (edge sigma <= 1.6 px, 10-90 % width <= 4.1 px).
SHARP_FOCUS = 0.5
#: Anisotropy at or above this makes a blurred photo "motion" rather than "defocus".
MOTION_ANISOTROPY = 0.4
#: 10-90 % rise distance of a Gaussian-blurred step, in sigmas: 2 * 1.2816.
WIDTH_PER_SIGMA = 2.0 * 1.2815516
#: Fewest edge points in a tile of the focus map for it to be judged.
MIN_TILE_EDGES = 12
#: Largest detail image measured in full; larger ones are sampled with 9 windows holding this
#: many pixels in all.
MAX_NATIVE_PIXELS = 1 << 20


def _check_gray(gray, name: str = "gray") -> np.ndarray:
    return check_gray(gray, 32, "judging focus", name)


def focus_from_edge_sigma(sigma_px):
    """Map an edge's Gaussian blur (px) to a 0-1 focus score.

    Parameters
    ----------
    sigma_px : float or ndarray
        Standard deviation of the edge's blur in pixels (>= 0).

    Returns
    -------
    float or ndarray
        ``1 / (1 + (sigma_px / SIGMA_HALF) ** FOCUS_SHAPE)``: 0.97 at 0.4 px, 0.81 at 0.9 px,
        0.5 at 1.6 px, 0.36 at 2 px, 0.09 at 4 px.

    Notes
    -----
    A smooth, strictly decreasing map. ``SIGMA_HALF`` = 1.6 px puts the midpoint where a photo at a
    1024-px working size starts to look soft on screen (10-90 % edge width 4 px); sharp photos
    measure 0.4-1.0 px at that size.

    References
    ----------
    P. Marziliano, F. Dufaux, S. Winkler and T. Ebrahimi, "A no-reference perceptual blur
    metric", Proc. ICIP 2002, III-57-60. doi:10.1109/ICIP.2002.1038902 (edge width as the
    perceived blur).
    """
    s = np.asarray(sigma_px, dtype=np.float64)
    if np.any(~np.isfinite(s)) or np.any(s < 0):
        raise ValueError("sigma_px must be finite and >= 0")
    out = 1.0 / (1.0 + (s / SIGMA_HALF) ** FOCUS_SHAPE)
    return float(out) if out.ndim == 0 else out


def edge_sigma_from_variance(variance):
    """The edge's own blur sigma (px) from a measured re-blur variance (px^2).

    Parameters
    ----------
    variance : float or ndarray
        Blur variance measured by :func:`edge_blur_samples` (includes our filters).

    Returns
    -------
    float or ndarray
        ``sqrt(max(variance - FILTER_VARIANCE, PIXEL_VARIANCE))``.

    Notes
    -----
    Variances of independent blurs add, so the pre-filter and derivative are removed by
    subtraction; the floor is the pixel aperture, the sharpest edge a pixel grid can hold.

    References
    ----------
    S. Zhuo and T. Sim, "Defocus map estimation from a single image", Pattern Recognition 44(9),
    1852-1858, 2011. doi:10.1016/j.patcog.2011.03.009
    """
    v = np.asarray(variance, dtype=np.float64)
    out = np.sqrt(np.maximum(v - FILTER_VARIANCE, PIXEL_VARIANCE))
    return float(out) if out.ndim == 0 else out


def _gradients(gray: np.ndarray, slot: int = 0):
    """Fine and re-blurred gradients (g1, gx2, gy2, g2, border), unscaled 3x3 Sobel (8 x d/dx),
    in this thread's scratch arrays (``slot`` tells apart the pieces of one call)."""
    s0 = REBLUR_SIGMA
    k0 = 2 * int(math.ceil(3 * s0)) + 1  # +-3 sigma: the tails beyond hold 0.3 % of the weight
    sh = gray.shape
    buf = lambda name: scratch(f"focus.{name}.{slot}", sh)  # noqa: E731
    fine = cv2.GaussianBlur(gray, (0, 0), PREFILTER_SIGMA, dst=buf("fine"))
    coarse = cv2.GaussianBlur(fine, (k0, k0), s0, dst=buf("coarse"))
    gx1 = cv2.Sobel(fine, cv2.CV_32F, 1, 0, dst=buf("gx1"), ksize=3)
    gy1 = cv2.Sobel(fine, cv2.CV_32F, 0, 1, dst=buf("gy1"), ksize=3)
    g1 = cv2.magnitude(gx1, gy1, fine)  # ``fine`` is no longer needed: reuse its memory
    gx2 = cv2.Sobel(coarse, cv2.CV_32F, 1, 0, dst=buf("gx2"), ksize=3)
    gy2 = cv2.Sobel(coarse, cv2.CV_32F, 0, 1, dst=buf("gy2"), ksize=3)
    g2 = cv2.magnitude(gx2, gy2, coarse)
    return g1, gx2, gy2, g2, k0 // 2 + 2


def _off_grid(xs, ys, horizontal, grid, period: int) -> np.ndarray:
    """False for edge points on a visible block boundary (the two pixels either side of it) whose
    normal crosses that boundary."""
    keep = np.ones(xs.size, bool)
    if grid is None:
        return keep
    for (phase, ratio), pos, across in ((grid[0], xs, horizontal), (grid[1], ys, ~horizontal)):
        if ratio >= GRID_VISIBLE:
            r = (pos - phase) % period
            keep &= ~(across & ((r == 0) | (r == period - 1)))
    return keep


def _offset(ny: np.ndarray, nx: np.ndarray, k: float, w: int) -> np.ndarray:
    """Flat-index offset of the pixel nearest to ``k`` px along the unit vectors (ny, nx).

    Edge points lie at least ``k0 // 2 + 2`` = 8 px inside the image and ``|k| <= 8``, so the
    pixel is always inside: no clamping is needed."""
    return np.rint(k * ny).astype(np.intp) * w + np.rint(k * nx).astype(np.intp)


def _nms_offsets(w: int) -> np.ndarray:
    """Flat offset of the neighbour along the gradient for each 4-bit code (bit 0: x > 0, 1: x < 0,
    2: y > 0, 3: y < 0; the two bits of one axis are never both set)."""
    codes = np.arange(16)
    return ((codes & 1) - ((codes >> 1) & 1) + w * (((codes >> 2) & 1) - ((codes >> 3) & 1))).astype(np.intp)


@lru_cache(maxsize=4)
def _half_mask(h: int, w: int) -> np.ndarray:
    """A fixed pseudo-random 0/255 mask of (h, w) holding about half the pixels (seed 0)."""
    mask = (np.random.default_rng(0).random((h, w)) < 0.5).astype(np.uint8) * 255
    mask.flags.writeable = False
    return mask


def _candidates(gray: np.ndarray, floor: float, block_period: int | None, grads):
    """Edge candidates of one image: (rows, cols, strength g2, gx2, gy2) of the local maxima of
    the re-blurred gradient above ``floor``, block-grid edges left out."""
    g1, gx, gy, g2, b = grads
    h, w = gray.shape
    cand = cv2.compare(g2, floor, cv2.CMP_GT, dst=scratch("focus.cand", (h, w), np.uint8))
    cand[:b] = 0
    cand[h - b:] = 0
    cand[:, :b] = 0
    cand[:, w - b:] = 0
    if h * w > THIN_ABOVE_PIXELS:
        # Large images: a fixed pseudo-random half of the candidates (no row, column or diagonal
        # favoured) is plenty for the medians, at half the cost of the suppression and after.
        cv2.bitwise_and(cand, _half_mask(h, w), dst=cand)
    idx = np.flatnonzero(cand.view(bool))
    g2f = g2.ravel()
    m = g2f[idx]
    ex = gx.ravel()[idx]
    ey = gy.ravel()[idx]
    # Non-maximum suppression along the gradient, its direction quantised to the 8 neighbours
    # (a step along an axis when the gradient's cosine with it exceeds cos 67.5 deg): a 4-bit
    # code of the two signs, looked up as a flat offset.
    lim = 0.3827 * m
    code = (ex > lim).view(np.uint8) | ((ex < -lim).view(np.uint8) << 1)
    code |= (ey > lim).view(np.uint8) << 2
    code |= (ey < -lim).view(np.uint8) << 3
    off = _nms_offsets(w)[code]
    keep = np.flatnonzero((m >= g2f[idx + off]) & (m > g2f[idx - off]))
    idx, m, ex, ey = idx[keep], m[keep], ex[keep], ey[keep]
    ys, xs = np.divmod(idx, w)
    if block_period:
        from ._compression import block_grid  # here: compression imports exposure, not focus

        keep = _off_grid(xs, ys, np.abs(ex) >= np.abs(ey), block_grid(gray, block_period), block_period)
        ys, xs, m, ex, ey = ys[keep], xs[keep], m[keep], ex[keep], ey[keep]
    return ys, xs, m, ex, ey


def _blur_variance(grads, shape, ys, xs, m, ex, ey):
    """Blur variance (px^2) and the thin-line flag of selected edge points (see
    :func:`edge_blur_samples`)."""
    g1, gx, gy, _, _ = grads
    w = shape[1]
    g1f, gxf, gyf = g1.ravel(), gx.ravel(), gy.ravel()
    idx = ys * w + xs
    nx, ny = ex / m, ey / m
    g1p = g1f[idx]
    g1max = g1p.copy()
    for k in (1, 2, -1, -2):
        np.maximum(g1max, g1f[idx + _offset(ny, nx, k, w)], out=g1max)
    # Line weight: 1 where the fine peak is clearly displaced (a thin line), 0 where it is not (a
    # step, or a bar wide enough to be two steps), linear between, so that a line that blur
    # widens passes smoothly from one model to the other.
    lo, hi = RIDGE_DISPLACED
    weight = np.clip((hi - g1p / np.maximum(g1max, 1e-12)) / (hi - lo), 0.0, 1.0)
    # Only where the fine peak is displaced can the point be a line's flank; there, look for the
    # other flank a few pixels on along the normal (either way: dark or bright lines). Thin lines
    # (ridges): the re-blurred gradient peaks beside the line, where the fine gradient has
    # already fallen, and an opposite flank follows. There the step model does not hold; the
    # line model does.
    maybe = np.flatnonzero(weight > 0.0)
    if maybe.size:
        at, sx, sy, lim = idx[maybe], nx[maybe], ny[maybe], -RIDGE_OPPOSITE * m[maybe]
        flank = np.zeros(maybe.size, bool)
        for k in RIDGE_SEARCH:
            for sign in (1, -1):
                q = at + _offset(sy, sx, sign * k, w)
                flank |= gxf[q] * sx + gyf[q] * sy < lim
        weight[maybe[~flank]] = 0.0
    ridge_w = weight
    v_step = np.square(m / np.maximum(g1p, 1e-12))
    np.minimum(v_step, V_CAP, out=v_step)
    v = ridge_w * np.minimum(m / np.maximum(g1max, 1e-12), V_CAP) + (1.0 - ridge_w) * v_step
    return (REBLUR_SIGMA ** 2) * v / (1.0 - v), ridge_w >= 0.5


def _edges(pieces: list[np.ndarray], block_period: int | None):
    """Selected edge points pooled over the pieces: (rows, cols, theta, variance, strength, ridge)."""
    grads = [_gradients(p, i) for i, p in enumerate(pieces)]
    samples = [g2[b:p.shape[0] - b:4, b:p.shape[1] - b:4].ravel() for p, (_, _, _, g2, b) in zip(pieces, grads)]
    sample = np.concatenate(samples) if samples else np.zeros(0, np.float32)
    floor = 8.0 * MIN_GRADIENT
    if sample.size:
        q = np.quantile(sample, (0.5, CAP_QUANTILE))
        floor = max(floor, min(NOISE_FLOOR * float(q[0]), float(q[1])))
    cands = [_candidates(p, floor, block_period, g) for p, g in zip(pieces, grads)]
    piece = np.concatenate([np.full(c[0].size, i, np.intp) for i, c in enumerate(cands)])
    ys, xs, m, ex, ey = (np.concatenate(col) for col in zip(*cands))
    # Rows point down: negate y so that angles run counter-clockwise as displayed.
    theta = np.degrees(np.arctan2(-ey, ex)) % 180.0
    bins = np.floor(theta * (N_BINS / 180.0) + 0.5).astype(np.intp) % N_BINS
    sel = _select_per_bin(bins, m)
    ys, xs, m, ex, ey, theta, piece = ys[sel], xs[sel], m[sel], ex[sel], ey[sel], theta[sel], piece[sel]
    var = np.empty(m.size)
    ridge = np.empty(m.size, bool)
    for i, (p, g) in enumerate(zip(pieces, grads)):
        at = np.flatnonzero(piece == i)
        var[at], ridge[at] = _blur_variance(g, p.shape, ys[at], xs[at], m[at], ex[at], ey[at])
    return ys, xs, theta, var, m * 0.125, ridge


def _select_per_bin(bins: np.ndarray, strength: np.ndarray) -> np.ndarray:
    """Indices (sorted) of the strongest ``KEEP_PER_BIN`` of each orientation bin (at least
    ``MIN_BIN_EDGES``), thinned evenly to at most ``MAX_PER_BIN`` per bin."""
    kept = []
    for k in range(N_BINS):
        idx = np.flatnonzero(bins == k)
        n = min(idx.size, max(int(idx.size * KEEP_PER_BIN), MIN_BIN_EDGES))
        if 0 < n < idx.size:
            idx = np.sort(idx[np.argpartition(-strength[idx], n - 1)[:n]])
        if idx.size > MAX_PER_BIN:
            idx = idx[np.linspace(0, idx.size - 1, MAX_PER_BIN).astype(np.intp)]
        kept.append(idx)
    return np.sort(np.concatenate(kept)) if kept else np.zeros(0, np.intp)


def _as_samples(ys, xs, theta, var, m, ridge) -> dict:
    return {
        "row": ys, "col": xs, "theta_deg": theta, "variance": var,
        "bin": np.floor(theta * (N_BINS / 180.0) + 0.5).astype(np.intp) % N_BINS, "strength": m,
        "ridge": ridge,
    }


def edge_blur_samples(gray, block_period: int | None = None) -> dict:
    """Blur of the strongest edges, one estimate per edge point.

    Parameters
    ----------
    gray : ndarray (H, W), or a sequence of them
        Luma on [0, 1], at least 32 px a side; a sequence (windows of one image) is measured piece
        by piece and the edges pooled (``row`` and ``col`` are then relative to each piece).
    block_period : int, optional
        Block size in pixels of a JPEG grid the pixels may carry (8 at the native scale, 4 at half
        scale); None when no grid can be at a whole-pixel period.

    Returns
    -------
    dict of ndarrays (one entry per kept edge point)
        ``row``, ``col`` : position; ``theta_deg`` : orientation of the edge normal, degrees in
        [0, 180), 0 = pointing right, counter-clockwise as displayed; ``variance`` : blur variance
        in px^2 including our filters (see :func:`edge_sigma_from_variance`); ``bin`` : orientation
        bin index; ``strength`` : re-blurred gradient magnitude (per px, on the [0, 1] scale);
        ``ridge`` : True where the point is the flank of a thin line, measured with the line model.

    Notes
    -----
    *Candidates* are local maxima, along the gradient, of the re-blurred gradient magnitude ``g2``
    above a floor: ``MIN_GRADIENT``, or ``NOISE_FLOOR`` times the median of ``g2`` when that is
    higher (flat areas and noise stay out, whatever the share of the frame they cover). In each of
    ``N_BINS`` orientation bins the strongest ``KEEP_PER_BIN`` of that bin's candidates are kept
    (at least ``MIN_BIN_EDGES``, at most ``MAX_PER_BIN``, thinned evenly), so each orientation is
    judged by its own strongest edges even when motion blur has weakened every edge of one
    direction.

    *Block edges.* With a ``block_period``, the grid phase and visibility are read from the pixels
    (:func:`._compression.block_grid`); where a grid is visible (boundary steps at least
    ``GRID_VISIBLE`` times the steps elsewhere), points on a block boundary whose normal crosses it
    are left out: a JPEG block edge is pixel-sharp whatever the blur of the photo.

    *Two edge models.* For a step edge of blur variance ``s^2`` (our filters included), the
    gradient at its centre falls under a re-blur of ``s0`` as ``sqrt(s^2 / (s^2 + s0^2))``, so
    ``v = (g2 / g1)^2 = s^2 / (s^2 + s0^2)``. A thin line is not a step: its re-blurred gradient
    peaks ``sqrt(s^2 + s0^2)`` from the line, where the fine gradient has fallen (a step read
    there looks very blurred, and reads sharper once the line is blurred, the defect this model
    removes). At a thin line's flank the gradient peaks scale as ``1 / (s^2 + s0^2)``, so with the
    fine peak ``g1max`` (the largest fine gradient within 2 px along the normal) ``v = g2 / g1max``
    has the same meaning. A point is taken as a line flank when a gradient of the opposite sign,
    at least ``RIDGE_OPPOSITE`` of its own, lies ``RIDGE_SEARCH`` px away along the normal (the
    other flank), and its fine gradient is displaced: ``r = g1 / g1max`` (1 at a step, about
    0.3 at a crisp 1-px line, rising as blur widens the line). The two models' ``v`` are blended
    with the line's weight falling linearly from 1 at ``r = RIDGE_DISPLACED[0]`` to 0 at
    ``RIDGE_DISPLACED[1]``, so that a line passes smoothly to the step model as it widens (a
    bar of 4 px or more is two steps). In both models the variance is ``s0^2 v / (1 - v)`` with
    ``v`` capped at ``V_CAP``. On synthetic 1-px lines the line model reads the blur within
    0.1 px up to 1 px of blur; beyond, lines read up to a third less blurred than they are, and
    are still ordered by blur.

    References
    ----------
    F. Crete-Roffet, T. Dolmiere, P. Ladret and M. Nicolas, "The blur effect: perception and
    estimation with a new no-reference perceptual blur metric", Proc. SPIE 6492, Human Vision and
    Electronic Imaging XII, 64920I, 2007. doi:10.1117/12.702790 ;
    S. Zhuo and T. Sim, "Defocus map estimation from a single image", Pattern Recognition 44(9),
    1852-1858, 2011. doi:10.1016/j.patcog.2011.03.009 ;
    C. Steger, "An unbiased detector of curvilinear structures", IEEE TPAMI 20(2), 113-125, 1998.
    doi:10.1109/34.659930 (the profile of a blurred line and its flanks in scale space) ;
    Z. Wang, H. R. Sheikh and A. C. Bovik, "No-reference perceptual quality assessment of JPEG
    compressed images", Proc. ICIP 2002, I-477-480. doi:10.1109/ICIP.2002.1038064 (block grid)
    """
    pieces = [gray] if isinstance(gray, np.ndarray) else list(gray)
    if not pieces:
        raise ValueError("no image given")
    return _as_samples(*_edges([_check_gray(p) for p in pieces], block_period))


def _longest_empty_run(used: np.ndarray) -> int:
    """Longest run of unused orientation bins, cyclically (orientations wrap at 180 degrees)."""
    if used.all():
        return 0
    if not used.any():
        return used.size
    run = best = 0
    for k in range(2 * used.size):
        run = 0 if used[k % used.size] else run + 1
        best = max(best, run)
    return min(best, used.size)


def directional_blur(theta_deg, variance) -> dict:
    """Fit the directional blur model ``var(t) = a + b cos 2t + c sin 2t`` to edge blur estimates.

    Parameters
    ----------
    theta_deg : ndarray
        Edge-normal orientations, degrees in [0, 180) (counter-clockwise, 0 = horizontal).
    variance : ndarray
        Blur variance per edge (px^2), as from :func:`edge_blur_samples`.

    Returns
    -------
    dict
        ``variance`` : the blur variance that focus is read from (px^2; see Notes), None when
        fewer than ``MIN_EDGES`` edges; ``mean_variance`` : mean over the judged orientation bins
        of the per-bin median variance; ``anisotropy`` : 0-1, ``(max - min) / (max + min)`` of the
        fitted variance curve; ``angle_deg`` : direction, in [0, 180), along which edges are most
        blurred (the motion direction for linear motion); ``bins_used`` : orientation bins with
        edges enough to judge; ``bins_lost`` : bins taken as blurred beyond measure (see Notes).
        ``anisotropy`` and ``angle_deg`` are None with fewer than ``MIN_BINS_FOR_DIRECTION``
        judged bins.

    Notes
    -----
    For a blur kernel of covariance ``C``, the edge whose normal is ``n`` is blurred by the
    kernel's projection on ``n``, of variance ``n^T C n``, which is exactly a constant plus a
    cos/sin of twice the angle. The fit is done on the bounded ratio ``v = var / (var + s0^2)``
    (so that saturated, very blurred bins do not dominate), by weighted least squares over the
    per-bin medians (weights sqrt(count)); the extremes of the fitted ``v`` curve are then
    converted back to variances. Isotropic defocus gives a flat curve (anisotropy near 0, at most
    about 0.2 on real photos whose content is itself directional); a linear motion of length ``L``
    adds ``L^2 / 12 cos^2(t - phi)``, anisotropy near 1.

    *Lost orientations.* A long linear motion can leave no edge at all whose normal lies near the
    motion (every such edge is smeared below the candidate floor). When ``EMPTY_RUN_LOST`` or more
    neighbouring orientation bins (90 degrees or more) hold no edge while others do, those bins
    are counted as blurred beyond measure (variance at ``V_CAP``). A photo whose content has
    edges of two orientations only (a facade of horizontal and vertical joints) leaves two gaps
    of 67.5 degrees, below that length, and is judged on its edges alone.

    *The focus variance* is the mean of the orientation average and the fitted curve's maximum:
    the two agree for defocus, and for motion blur the worst direction, which people see as
    streaks, weighs as much as the average of all directions.

    References
    ----------
    Y. Yitzhaky and N. S. Kopeika, "Identification of blur parameters from motion blurred images",
    Graphical Models and Image Processing 59(5), 310-320, 1997. doi:10.1006/gmip.1997.0435 ;
    S. Zhuo and T. Sim, Pattern Recognition 44(9), 2011. doi:10.1016/j.patcog.2011.03.009
    """
    theta = np.asarray(theta_deg, dtype=np.float64).ravel()
    var = np.asarray(variance, dtype=np.float64).ravel()
    if theta.shape != var.shape:
        raise ValueError(f"theta_deg and variance differ in length: {theta.size} vs {var.size}")
    if theta.size and (not np.all(np.isfinite(theta)) or not np.all(np.isfinite(var)) or var.min() < 0):
        raise ValueError("theta_deg and variance must be finite, variance >= 0")
    out = {"variance": None, "mean_variance": None, "anisotropy": None, "angle_deg": None,
           "bins_used": 0, "bins_lost": 0}
    if theta.size < MIN_EDGES:
        return out
    s02 = REBLUR_SIGMA ** 2
    bins = np.floor((theta % 180.0) * (N_BINS / 180.0) + 0.5).astype(np.intp) % N_BINS
    counts = np.bincount(bins, minlength=N_BINS)
    used = counts >= MIN_BIN_EDGES
    out["bins_used"] = int(used.sum())
    if not used.any():
        return out
    med = np.zeros(N_BINS)
    order = np.argsort(bins, kind="stable")
    starts = np.searchsorted(bins[order], np.arange(N_BINS + 1))
    for k in np.flatnonzero(used):
        med[k] = float(np.median(var[order[starts[k]:starts[k + 1]]]))
    weights = np.sqrt(counts.astype(np.float64))
    if _longest_empty_run(used) >= EMPTY_RUN_LOST:
        lost = ~used
        med[lost] = s02 * V_CAP / (1.0 - V_CAP)
        weights[lost] = math.sqrt(MIN_BIN_EDGES)
        out["bins_lost"] = int(lost.sum())
        used = np.ones(N_BINS, bool)
    mean_var = float(np.mean(med[used]))
    out["mean_variance"] = out["variance"] = mean_var
    if used.sum() < MIN_BINS_FOR_DIRECTION:
        return out
    c = np.radians(np.flatnonzero(used) * 180.0 / N_BINS)
    wts = weights[used]
    med_v = med[used] / (med[used] + s02)
    design = np.stack([np.ones_like(c), np.cos(2 * c), np.sin(2 * c)], axis=1)
    (a0, bc, bs), *_ = np.linalg.lstsq(design * wts[:, None], med_v * wts, rcond=None)
    amp = math.hypot(bc, bs)
    to_var = lambda v: s02 * v / (1.0 - v)  # noqa: E731
    hi = to_var(min(max(a0 + amp, 1e-6), V_CAP))
    lo = to_var(min(max(a0 - amp, 1e-6), V_CAP))
    out["anisotropy"] = float((hi - lo) / (hi + lo))
    out["angle_deg"] = float((math.degrees(math.atan2(bs, bc)) / 2.0) % 180.0)
    out["variance"] = 0.5 * (mean_var + max(hi, mean_var))
    return out


def focus_grid(shape) -> tuple[int, int]:
    """Rows and columns of the focus map: 3 x 4 for landscape, 4 x 3 for portrait, else 4 x 4.

    Parameters
    ----------
    shape : tuple
        ``(H, W, ...)``.

    Returns
    -------
    (int, int)

    Notes
    -----
    Landscape or portrait means the long side is at least 1.2 times the short one.

    References
    ----------
    None; a layout convention.
    """
    h, w = int(shape[0]), int(shape[1])
    if w >= 1.2 * h:
        return 3, 4
    if h >= 1.2 * w:
        return 4, 3
    return 4, 4


def focus_map(samples: dict, shape, grid=None) -> list[list[float | None]]:
    """Coarse map of focus: each tile's focus from the edges inside it.

    Parameters
    ----------
    samples : dict
        Output of :func:`edge_blur_samples`.
    shape : tuple
        ``(H, W)`` of the image the samples come from.
    grid : (int, int), optional
        Rows and columns; default :func:`focus_grid`.

    Returns
    -------
    list of lists
        ``rows`` lists of ``cols`` values: focus in 0-1, or None for a tile with fewer than
        ``MIN_TILE_EDGES`` strong edges (flat, or too little texture to judge).

    Notes
    -----
    A tile's value is :func:`focus_from_edge_sigma` of the median blur variance of its edges
    (all orientations pooled; a tile rarely has edges enough for the directional fit).

    References
    ----------
    S. Zhuo and T. Sim, "Defocus map estimation from a single image", Pattern Recognition 44(9),
    1852-1858, 2011. doi:10.1016/j.patcog.2011.03.009
    """
    h, w = int(shape[0]), int(shape[1])
    rows, cols = grid or focus_grid(shape)
    if rows < 1 or cols < 1:
        raise ValueError(f"grid must be at least 1 x 1, got {rows} x {cols}")
    ti = np.minimum(np.asarray(samples["row"]) * rows // h, rows - 1)
    tj = np.minimum(np.asarray(samples["col"]) * cols // w, cols - 1)
    tile = ti * cols + tj
    var = np.asarray(samples["variance"])
    order = np.argsort(tile, kind="stable")
    starts = np.searchsorted(tile[order], np.arange(rows * cols + 1))
    out: list[list[float | None]] = []
    for i in range(rows):
        row = []
        for j in range(cols):
            k = i * cols + j
            vals = var[order[starts[k]:starts[k + 1]]]
            if vals.size < MIN_TILE_EDGES:
                row.append(None)
            else:
                row.append(focus_from_edge_sigma(edge_sigma_from_variance(float(np.median(vals)))))
        out.append(row)
    return out


def focus_measures(gray, grid=None, block_period: int | None = None) -> dict:
    """Focus of a photo at its working resolution.

    Parameters
    ----------
    gray : ndarray, (H, W)
        Luma on [0, 1], at least 32 px a side.
    grid : (int, int), optional
        Rows and columns of the focus map; default :func:`focus_grid`.
    block_period : int, optional
        Block size in pixels of a JPEG grid the pixels may carry (see :func:`edge_blur_samples`).

    Returns
    -------
    dict
        ``focus`` (0-1, higher = sharper), ``edge_width_px`` (10-90 % width of a typical strong
        edge, px), ``blur_kind`` ("sharp", "defocus" or "motion"), ``motion_blur_angle_deg``
        (degrees in [0, 180), 0 = horizontal, counter-clockwise as displayed; None unless
        ``blur_kind`` is "motion"), ``blur_anisotropy`` (0-1), ``focus_map`` (see :func:`focus_map`)
        and ``sharp_area_pct`` (percent of the judged map tiles whose focus is at least
        ``SHARP_FOCUS``). With fewer than ``MIN_EDGES`` strong edges (a flat image) every value is
        None and the map all None.

    Notes
    -----
    ``focus = focus_from_edge_sigma(edge_sigma_from_variance(V))`` where ``V`` is the
    blur variance of :func:`directional_blur` (orientation average and worst direction) on the
    edges of :func:`edge_blur_samples`; ``edge_width_px = 2.563 * edge sigma`` (the 10-90 % rise
    of a Gaussian edge). The blur is "sharp" when focus >= ``SHARP_FOCUS``, otherwise "motion"
    when the anisotropy is at least ``MOTION_ANISOTROPY`` and "defocus" when not. Properties,
    checked by the tests on real photos and on scenes the tests draw: strictly decreasing under
    Gaussian blur of 0-4 px and under linear motion blur; unchanged by halving the contrast;
    moved far less by Gaussian noise of 5 levels or JPEG quality 50 than by 1 px of blur; thin
    dark lines on white panels under a flat sky read sharp, and lower under any blur; block edges
    of JPEG quality 5 do not make a blurred photo read sharper (with ``block_period``); a 25-px
    motion blur reads below 0.2, with its direction.

    References
    ----------
    F. Crete-Roffet et al., Proc. SPIE 6492, 64920I, 2007. doi:10.1117/12.702790 ;
    S. Zhuo and T. Sim, Pattern Recognition 44(9), 1852-1858, 2011.
    doi:10.1016/j.patcog.2011.03.009 ;
    P. Marziliano et al., Proc. ICIP 2002. doi:10.1109/ICIP.2002.1038902 ;
    Y. Yitzhaky and N. S. Kopeika, GMIP 59(5), 1997. doi:10.1006/gmip.1997.0435
    """
    gray = _check_gray(gray)
    rows, cols = grid or focus_grid(gray.shape)
    samples = edge_blur_samples(gray, block_period)
    d = directional_blur(samples["theta_deg"], samples["variance"])
    if d["variance"] is None:
        return {
            "focus": None, "edge_width_px": None, "blur_kind": None, "motion_blur_angle_deg": None,
            "blur_anisotropy": None, "focus_map": [[None] * cols for _ in range(rows)],
            "sharp_area_pct": None,
        }
    sigma = edge_sigma_from_variance(d["variance"])
    focus = focus_from_edge_sigma(sigma)
    if focus >= SHARP_FOCUS:
        kind = "sharp"
    elif d["anisotropy"] is not None and d["anisotropy"] >= MOTION_ANISOTROPY:
        kind = "motion"
    else:
        kind = "defocus"
    fmap = focus_map(samples, gray.shape, (rows, cols))
    judged = [v for r in fmap for v in r if v is not None]
    return {
        "focus": focus,
        "edge_width_px": WIDTH_PER_SIGMA * sigma,
        "blur_kind": kind,
        "motion_blur_angle_deg": d["angle_deg"] if kind == "motion" else None,
        "blur_anisotropy": d["anisotropy"],
        "focus_map": fmap,
        "sharp_area_pct": (100.0 * sum(v >= SHARP_FOCUS for v in judged) / len(judged)) if judged else None,
    }


def focus_score(gray, block_period: int | None = None) -> float | None:
    """The ``focus`` value alone, of one image or pooled over windows of one.

    Parameters
    ----------
    gray : ndarray (H, W), or a sequence of them
        Luma on [0, 1], each at least 32 px a side.

    Returns
    -------
    float or None
        As ``focus`` in :func:`focus_measures`; None when there are too few strong edges.

    Notes
    -----
    Used for ``focus_native``: the same measure on the decoded pixels, sampled with the windows of
    ``_noise.detail_luma`` when they are large, so that a 50-megapixel image costs what a
    one-megapixel one does.

    References
    ----------
    F. Crete-Roffet et al., Proc. SPIE 6492, 2007. doi:10.1117/12.702790 ;
    S. Zhuo and T. Sim, Pattern Recognition 44(9), 2011. doi:10.1016/j.patcog.2011.03.009
    """
    samples = edge_blur_samples(gray, block_period)
    d = directional_blur(samples["theta_deg"], samples["variance"])
    if d["variance"] is None:
        return None
    return focus_from_edge_sigma(edge_sigma_from_variance(d["variance"]))


def _block_period(scale: float) -> int | None:
    """Block size (px) of a JPEG grid in pixels at ``scale`` pixels per native pixel, or None."""
    from ._compression import block_period

    return block_period(scale) if scale > 0 else None


@measure_group(
    "focus",
    outputs=[
        ("focus", "0-1", "Sharpness of the strongest edges (re-blur ratio), higher = sharper"),
        ("focus_native", "0-1",
         "The same at native resolution (sampled windows); None unless native pixels were decoded"),
        ("edge_width_px", "px at working resolution", "10-90% width of a typical strong edge"),
        ("blur_kind", "label", '"sharp", "defocus" or "motion"'),
        ("motion_blur_angle_deg", "degrees, 0 = horizontal, counter-clockwise, [0,180)",
         'Direction of the blur streaks when blur_kind is "motion", else None'),
        ("blur_anisotropy", "0-1", "0 = isotropic blur or sharp, 1 = fully directional"),
        ("focus_map", "grid of 0-1, rows x cols",
         "Focus per tile (3x4 landscape, 4x3 portrait, 4x4 square); None for flat tiles"),
        ("sharp_area_pct", "%", "Percent of the judged tiles whose focus is >= 0.5"),
    ],
    cost=28,
)
def measure_focus(photo: Photo) -> dict:
    """Registered adapter: :func:`focus_measures` on ``photo.gray`` plus :func:`focus_score` native.

    The block period passed on is that of the working image when it holds a whole-pixel JPEG grid
    (native pixels, or a JPEG decoded at half scale), whatever the container (a PNG screenshot of
    a JPEG carries the grid too), and only when the photo shows JPEG compression (its tables, or a
    lattice in its pixels): in a never-compressed image an 8-px grid of steps is content.
    """
    from ._compression import shows_jpeg_compression  # here: compression imports exposure, not focus

    try:
        compressed = shows_jpeg_compression(photo)
        out = focus_measures(photo.gray, block_period=_block_period(photo.working_scale) if compressed else None)
        if not photo.has_native_detail:
            out["focus_native"] = None
        else:
            from ._noise import detail_luma  # here, so that importing focus does not register noise first

            out["focus_native"] = focus_score(detail_luma(photo, MAX_NATIVE_PIXELS),
                                              _block_period(1.0) if compressed else None)
    except ValueError as exc:
        raise AnalysisError(f"focus: {exc}", photo.path) from exc
    return out
