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
2. Directional model. A blur kernel with covariance ``C`` blurs an edge with unit normal ``n`` by a
   1-D profile of variance ``n^T C n = a + b cos 2t + c sin 2t`` (``t`` the normal's angle). Edge blur
   estimates are binned by normal orientation (8 bins), the median taken per bin, and the
   cosine model fitted. Defocus gives a flat curve; linear motion blurs edges whose normal lies
   along the motion and spares those across it, so the phase of the fit is the motion direction
   and its relative amplitude the anisotropy (as the directional analyses of Yitzhaky & Kopeika do
   on the image spectrum).
3. Focus is the mean over orientations of the per-bin blur variance, converted to the edge's own
   Gaussian sigma (less the blur of our own filters, calibrated on synthetic area-sampled edges)
   and mapped to 0-1 with ``1 / (1 + (sigma / 1.6) ** 2.5)``.

Using only strong edges (top of the candidates per orientation) makes the measure indifferent to
how much texture a scene has, and to moderate noise and JPEG compression, which change weak
gradients but hardly the profile of a strong edge.
"""

from __future__ import annotations

import math

import cv2
import numpy as np

from ..errors import AnalysisError
from ..io._photo import Photo
from ._checks import check_gray
from ._registry import measure_group

#: Gaussian pre-filter (px) applied before the fine-scale gradient, against noise.
PREFILTER_SIGMA = 0.5
#: The known re-blur (px).
REBLUR_SIGMA = 2.0
#: Edge candidates: re-blurred gradient above this quantile of the image's own gradients...
CANDIDATE_QUANTILE = 0.75
#: ...and above this absolute floor (gradient per px on a [0, 1] scale: a step of about 6 levels).
MIN_GRADIENT = 0.004
#: Strongest fraction of the edge points kept in each orientation bin.
KEEP_PER_BIN = 0.4
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


def _windows_edges(gray: np.ndarray):
    """Edge points of one image: (rows, cols, normal angle in degrees, blur variance, strength)."""
    s0 = REBLUR_SIGMA
    k0 = 2 * int(math.ceil(3 * s0)) + 1  # +-3 sigma: the tails beyond hold 0.3 % of the weight
    fine = cv2.GaussianBlur(gray, (0, 0), PREFILTER_SIGMA)
    coarse = cv2.GaussianBlur(fine, (k0, k0), s0)
    # Unscaled 3x3 Sobel: 8 x the derivative (the ratio g2 / g1 does not care; thresholds do).
    gx = cv2.Sobel(fine, cv2.CV_32F, 1, 0, ksize=3)
    gy = cv2.Sobel(fine, cv2.CV_32F, 0, 1, ksize=3)
    g1 = cv2.magnitude(gx, gy, fine)  # ``fine`` is no longer needed: reuse its memory
    gx = cv2.Sobel(coarse, cv2.CV_32F, 1, 0, dst=gx, ksize=3)
    gy = cv2.Sobel(coarse, cv2.CV_32F, 0, 1, dst=gy, ksize=3)
    g2 = cv2.magnitude(gx, gy, coarse)

    h, w = gray.shape
    b = k0 // 2 + 2  # the re-blur reads reflected pixels closer than this to the border
    sample = g2[b:h - b:4, b:w - b:4].ravel()  # a quantile needs no more than this
    k = int(CANDIDATE_QUANTILE * (sample.size - 1))
    thr = max(float(np.partition(sample, k)[k]), 8.0 * MIN_GRADIENT)
    cand = cv2.compare(g2, thr, cv2.CMP_GT)
    cand[:b] = 0
    cand[h - b:] = 0
    cand[:, :b] = 0
    cand[:, w - b:] = 0
    idx = np.flatnonzero(cand.view(bool))
    g2f, gxf, gyf = g2.ravel(), gx.ravel(), gy.ravel()
    m = g2f[idx]
    ex = gxf[idx]
    ey = gyf[idx]
    # Non-maximum suppression along the gradient, its direction quantised to the 8 neighbours
    # (a step along an axis when the gradient's cosine with it exceeds cos 67.5 deg).
    lim = 0.3827 * m
    off = ((ex > lim).astype(np.intp) - (ex < -lim)) + w * ((ey > lim).astype(np.intp) - (ey < -lim))
    idx = idx[(m >= g2f[idx + off]) & (m > g2f[idx - off])]
    m = g2f[idx]
    v = np.square(m / np.maximum(g1.ravel()[idx], 1e-12))
    np.minimum(v, V_CAP, out=v)
    var = (s0 * s0) * v / (1.0 - v)
    # Rows point down: negate y so that angles run counter-clockwise as displayed.
    theta = np.degrees(np.arctan2(-gyf[idx], gxf[idx])) % 180.0
    ys, xs = np.divmod(idx, w)
    return ys, xs, theta, var, m * 0.125


def _select_per_bin(ys, xs, theta, var, m) -> dict:
    bins = np.floor(theta * (N_BINS / 180.0) + 0.5).astype(np.intp) % N_BINS
    kept = []
    for k in range(N_BINS):
        idx = np.flatnonzero(bins == k)
        n = min(idx.size, max(int(idx.size * KEEP_PER_BIN), MIN_BIN_EDGES))
        if n == idx.size:
            kept.append(idx)
        elif n > 0:
            kept.append(idx[np.argpartition(-m[idx], n - 1)[:n]])
    sel = np.sort(np.concatenate(kept)) if kept else np.zeros(0, np.intp)
    return {
        "row": ys[sel], "col": xs[sel], "theta_deg": theta[sel], "variance": var[sel],
        "bin": bins[sel], "strength": m[sel],
    }


def edge_blur_samples(gray) -> dict:
    """Blur of the strongest edges, one estimate per edge point.

    Parameters
    ----------
    gray : ndarray (H, W), or a sequence of them
        Luma on [0, 1], at least 32 px a side; a sequence (windows of one image) is measured piece
        by piece and the edges pooled before the selection (``row`` and ``col`` are then relative
        to each piece).

    Returns
    -------
    dict of ndarrays (one entry per kept edge point)
        ``row``, ``col`` : position; ``theta_deg`` : orientation of the edge normal, degrees in
        [0, 180), 0 = pointing right, counter-clockwise as displayed; ``variance`` : blur variance
        in px^2 including our filters (see :func:`edge_sigma_from_variance`); ``bin`` : orientation
        bin index; ``strength`` : re-blurred gradient magnitude (per px, on the [0, 1] scale).

    Notes
    -----
    Candidates are local maxima, along the gradient, of the re-blurred gradient magnitude ``g2``
    that exceed both the 75th percentile of ``g2`` and ``MIN_GRADIENT``. In each of ``N_BINS``
    orientation bins the strongest ``KEEP_PER_BIN`` of them are kept (at least
    ``MIN_BIN_EDGES``), so every orientation is represented even when motion blur weakens the
    edges of one direction. The blur variance is ``s0^2 v / (1 - v)`` with ``v = (g2 / g1)^2``
    capped at ``V_CAP``.

    References
    ----------
    F. Crete-Roffet, T. Dolmiere, P. Ladret and M. Nicolas, "The blur effect: perception and
    estimation with a new no-reference perceptual blur metric", Proc. SPIE 6492, Human Vision and
    Electronic Imaging XII, 64920I, 2007. doi:10.1117/12.702790 ;
    S. Zhuo and T. Sim, "Defocus map estimation from a single image", Pattern Recognition 44(9),
    1852-1858, 2011. doi:10.1016/j.patcog.2011.03.009
    """
    pieces = [gray] if isinstance(gray, np.ndarray) else list(gray)
    if not pieces:
        raise ValueError("no image given")
    parts = [_windows_edges(_check_gray(p)) for p in pieces]
    if len(parts) == 1:
        return _select_per_bin(*parts[0])
    return _select_per_bin(*(np.concatenate(c) for c in zip(*parts)))


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
        ``variance`` : mean over the populated orientation bins of the per-bin median variance
        (px^2), None when fewer than ``MIN_EDGES`` edges; ``anisotropy`` : 0-1,
        ``(max - min) / (max + min)`` of the fitted variance curve; ``angle_deg`` : direction, in
        [0, 180), along which edges are most blurred (the motion direction for linear motion);
        ``bins_used`` : populated bins. ``anisotropy`` and ``angle_deg`` are None with fewer than
        ``MIN_BINS_FOR_DIRECTION`` populated bins.

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
    out = {"variance": None, "anisotropy": None, "angle_deg": None, "bins_used": 0}
    if theta.size < MIN_EDGES:
        return out
    s02 = REBLUR_SIGMA ** 2
    bins = np.floor((theta % 180.0) * (N_BINS / 180.0) + 0.5).astype(np.intp) % N_BINS
    centres, med_v, weights, med_var = [], [], [], []
    for k in range(N_BINS):
        vals = var[bins == k]
        if vals.size >= MIN_BIN_EDGES:
            m = float(np.median(vals))
            centres.append(np.radians(k * 180.0 / N_BINS))
            med_var.append(m)
            med_v.append(m / (m + s02))
            weights.append(math.sqrt(vals.size))
    out["bins_used"] = len(centres)
    if not centres:
        return out
    out["variance"] = float(np.mean(med_var))
    if len(centres) < MIN_BINS_FOR_DIRECTION:
        return out
    c = np.asarray(centres)
    wts = np.asarray(weights)
    design = np.stack([np.ones_like(c), np.cos(2 * c), np.sin(2 * c)], axis=1)
    (a0, bc, bs), *_ = np.linalg.lstsq(design * wts[:, None], np.asarray(med_v) * wts, rcond=None)
    amp = math.hypot(bc, bs)
    to_var = lambda v: s02 * v / (1.0 - v)  # noqa: E731
    v_hi = min(max(a0 + amp, 1e-6), V_CAP)
    v_lo = min(max(a0 - amp, 1e-6), V_CAP)
    hi, lo = to_var(v_hi), to_var(v_lo)
    out["anisotropy"] = float((hi - lo) / (hi + lo))
    out["angle_deg"] = float((math.degrees(math.atan2(bs, bc)) / 2.0) % 180.0)
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


def focus_measures(gray, grid=None) -> dict:
    """Focus of a photo at its working resolution.

    Parameters
    ----------
    gray : ndarray, (H, W)
        Luma on [0, 1], at least 32 px a side.
    grid : (int, int), optional
        Rows and columns of the focus map; default :func:`focus_grid`.

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
    orientation-averaged blur variance of :func:`directional_blur` on the edges of
    :func:`edge_blur_samples`; ``edge_width_px = 2.563 * edge sigma`` (the 10-90 % rise of a
    Gaussian edge). The blur is "sharp" when focus >= ``SHARP_FOCUS``, otherwise "motion" when
    the anisotropy is at least ``MOTION_ANISOTROPY`` and "defocus" when not. Properties, checked
    by the tests on real photos: strictly decreasing under Gaussian blur of 0-4 px and under linear
    motion blur; unchanged by halving the contrast; moved far less by Gaussian noise of 5 levels or
    JPEG quality 50 than by 1 px of blur.

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
    samples = edge_blur_samples(gray)
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


def focus_score(gray) -> float | None:
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
    samples = edge_blur_samples(gray)
    d = directional_blur(samples["theta_deg"], samples["variance"])
    if d["variance"] is None:
        return None
    return focus_from_edge_sigma(edge_sigma_from_variance(d["variance"]))


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
)
def measure_focus(photo: Photo) -> dict:
    """Registered adapter: :func:`focus_measures` on ``photo.gray`` plus :func:`focus_score` native."""
    try:
        out = focus_measures(photo.gray)
        if not photo.has_native_detail:
            out["focus_native"] = None
        else:
            from ._noise import detail_luma  # here, so that importing focus does not register noise first

            out["focus_native"] = focus_score(detail_luma(photo, MAX_NATIVE_PIXELS))
    except ValueError as exc:
        raise AnalysisError(f"focus: {exc}", photo.path) from exc
    return out
