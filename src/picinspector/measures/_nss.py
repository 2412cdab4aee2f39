"""Natural scene statistics: the BRISQUE feature set plus a few cheap NSS extras.

Luma, after local mean subtraction and divisive normalisation by the local standard deviation
(the MSCN coefficients), is close to Gaussian in undistorted natural photos (Ruderman 1994), and
distortions bend that distribution in characteristic ways: blur narrows it, white noise widens it
and lightens its tails, blocking and ringing change the products of neighbouring coefficients. BRISQUE
(Mittal, Moorthy & Bovik 2012) summarises this with 18 numbers per scale:

- a generalised Gaussian (GGD) fit of the MSCN coefficients: shape ``alpha`` and variance;
- an asymmetric generalised Gaussian (AGGD) fit of the products of each coefficient with its
  right (``h``), lower (``v``), lower-right (``d1``, main diagonal) and lower-left (``d2``,
  secondary diagonal) neighbour: shape ``nu``, mean ``eta`` and the left and right variances;

at two scales: the statistics copy of the working image (``s1``; the working image itself up to 512 px
long side, the size of the BIQ2021 photos the fitted models learnt them on, and an area-averaged copy
of that size above, as the gmlog features do) and that copy reduced by 2 (``s2``).

Both fits match moments. The shape that matches a moment ratio is read from a precomputed table of
the generalised Gaussian ratio function on a fine grid of shapes in [0.2, 10] (one ``np.interp``),
so there is no per-image optimisation. Everything is a handful of OpenCV filters and reductions over
the image; the group costs a few milliseconds at the working size.

Conventions that differ from the reference MATLAB code, all documented where they apply: products
use only pairs inside the image (no circular wrap-around); the half scale is a Burt-Adelson
``pyrDown`` (5-tap binomial low-pass, then every other pixel) instead of MATLAB's antialiased bicubic
``imresize``; a product of magnitude <= ``ZERO_TOL`` counts as zero (float round-off in flat areas),
and zeros belong to neither side of the AGGD, as in the reference code.
"""

from __future__ import annotations

import math

import cv2
import numpy as np
from scipy.special import gammaln

from ..errors import AnalysisError
from ..io._photo import Photo
from ._checks import check_gray
from ._registry import measure_group
from ._scratch import scratch

# --------------------------------------------------------------------------- constants

#: Side and standard deviation of the Gaussian window of the local mean and deviation (BRISQUE).
WINDOW = 7
WINDOW_SIGMA = 7.0 / 6.0
#: Stabilising constant of the divisive normalisation, on the 0-255 scale (BRISQUE's C = 1).
C_LEVELS = 1.0
#: Shapes covered by the ratio tables; a ratio outside the table is clamped to its ends.
SHAPE_MIN, SHAPE_MAX = 0.2, 10.0
_SHAPE_STEP = 0.001
#: Shape reported for a distribution that has no spread at all (a flat image): the Gaussian's.
DEGENERATE_SHAPE = 2.0
#: In the image features, a set of MSCN coefficients or products whose mean square is at most this
#: counts as all zero (a flat image): float round-off of a flat area gives about 1e-10, while one
#: isolated 1-level pixel in a megapixel frame still gives about 1e-6.
FLAT_MEAN_SQ = 1e-8
#: An MSCN product of magnitude at most this counts as zero: float round-off in flat areas gives
#: products around 1e-10, a one-level step about 1e-2.
ZERO_TOL = 1e-6
#: Patch side (pixels, working resolution) of the patch-sharpness statistics (NIQE uses 96).
PATCH = 96
#: A patch is "sharp" when its sharpness is at least this fraction of the sharpest patch (NIQE).
SHARP_FRACTION = 0.75
#: Smallest image side accepted: the half scale still holds a 7 x 7 window.
MIN_SIDE = 16

#: The four neighbour directions, in BRISQUE's order: (name, description).
PAIRS = (
    ("h", "horizontal (right neighbour)"),
    ("v", "vertical (lower neighbour)"),
    ("d1", "main diagonal (lower-right neighbour)"),
    ("d2", "secondary diagonal (lower-left neighbour)"),
)


def _ratio_table():
    """rho(a) = Gamma(2/a)^2 / (Gamma(1/a) Gamma(3/a)) on the shape grid; increasing in a."""
    shapes = np.arange(SHAPE_MIN, SHAPE_MAX + _SHAPE_STEP / 2, _SHAPE_STEP)
    rho = np.exp(2.0 * gammaln(2.0 / shapes) - gammaln(1.0 / shapes) - gammaln(3.0 / shapes))
    if not np.all(np.diff(rho) > 0):  # pragma: no cover - a property of the Gamma function
        raise AssertionError("the generalised Gaussian ratio table is not increasing")
    return shapes, rho


_SHAPES, _RHO = _ratio_table()


# --------------------------------------------------------------------------- moment fits


def ggd_shape_from_ratio(rho):
    """Generalised Gaussian shape whose moment ratio ``E[|x|]^2 / E[x^2]`` is ``rho``.

    Parameters
    ----------
    rho : float or array_like
        Moment ratio(s); the generalised Gaussian's lies in (0, 0.75) for shapes in (0, inf).

    Returns
    -------
    float or ndarray
        The shape, from linear interpolation in a table on a grid of step 0.001 over
        [``SHAPE_MIN``, ``SHAPE_MAX``] = [0.2, 10]; ratios beyond the table give its end shapes.

    Notes
    -----
    For a zero-mean generalised Gaussian of shape ``a``, ``E[|x|]^2 / E[x^2] = Gamma(2/a)^2 /
    (Gamma(1/a) Gamma(3/a))``, which increases monotonically from 0 to 3/4 (2/pi at ``a = 2``).
    Vectorised: one ``np.interp`` for any number of ratios.

    References
    ----------
    K. Sharifi and A. Leon-Garcia, "Estimation of shape parameter for generalized Gaussian
    distributions in subband decompositions of video", IEEE Trans. Circuits Syst. Video Technol.
    5(1), 52-56, 1995. doi:10.1109/76.350779
    """
    out = np.interp(np.asarray(rho, dtype=np.float64), _RHO, _SHAPES)
    return float(out) if out.ndim == 0 else out


def _ggd_from_moments(mean_abs: float, mean_sq: float, flat: float = 0.0) -> tuple[float, float]:
    if not mean_sq > flat:
        return DEGENERATE_SHAPE, 0.0
    return ggd_shape_from_ratio(mean_abs * mean_abs / mean_sq), float(mean_sq)


def _aggd_from_moments(n: int, n_neg: int, n_pos: int, sq_neg: float, sq_pos: float,
                       sum_abs: float, flat: float = 0.0) -> tuple[float, float, float, float]:
    """(nu, eta, left variance, right variance) from the sums over ``n`` samples; degenerate when
    the mean square is at most ``flat``."""
    mean_sq = (sq_neg + sq_pos) / n
    if not mean_sq > flat:
        return DEGENERATE_SHAPE, 0.0, 0.0, 0.0
    lvar = sq_neg / n_neg if n_neg else 0.0
    rvar = sq_pos / n_pos if n_pos else 0.0
    sl, sr = math.sqrt(lvar), math.sqrt(rvar)
    mean_abs = sum_abs / n
    # Lasmar et al.: r_hat * (g^3 + 1)(g + 1) / (g^2 + 1)^2 with g = sl / sr, written without the
    # division so that a one-sided sample (sl or sr = 0) is well defined.
    ratio = (mean_abs * mean_abs / mean_sq) * (sl ** 3 + sr ** 3) * (sl + sr) / (lvar + rvar) ** 2
    nu = ggd_shape_from_ratio(ratio)
    g1, g2, g3 = gammaln(1.0 / nu), gammaln(2.0 / nu), gammaln(3.0 / nu)
    eta = (sr - sl) * math.exp(0.5 * (g1 - g3)) * math.exp(g2 - g1)
    return nu, float(eta), float(lvar), float(rvar)


def _finite_samples(x, name: str) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64).ravel()
    if x.size == 0:
        raise ValueError(f"{name}: no samples")
    if not np.all(np.isfinite(x)):
        raise ValueError(f"{name}: samples contain non-finite values")
    return x


def fit_ggd(x) -> tuple[float, float]:
    """Fit a zero-mean generalised Gaussian to samples by moment matching.

    Parameters
    ----------
    x : array_like
        Samples (any shape), finite.

    Returns
    -------
    alpha : float
        Shape (2 = Gaussian, 1 = Laplacian), in [0.2, 10].
    variance : float
        ``E[x^2]``.

    Notes
    -----
    ``alpha`` solves ``Gamma(2/a)^2 / (Gamma(1/a) Gamma(3/a)) = E[|x|]^2 / E[x^2]`` through
    :func:`ggd_shape_from_ratio`. Samples that are all zero give ``(DEGENERATE_SHAPE, 0.0)``:
    the shape of a distribution with no spread is undefined, and the Gaussian's is reported.

    References
    ----------
    K. Sharifi and A. Leon-Garcia, IEEE TCSVT 5(1), 52-56, 1995. doi:10.1109/76.350779 ;
    A. Mittal, A. K. Moorthy and A. C. Bovik, "No-reference image quality assessment in the
    spatial domain", IEEE Trans. Image Process. 21(12), 4695-4708, 2012.
    doi:10.1109/TIP.2012.2214050
    """
    x = _finite_samples(x, "fit_ggd")
    return _ggd_from_moments(float(np.mean(np.abs(x))), float(np.mean(x * x)))


def fit_aggd(x, zero_tol: float = 0.0) -> tuple[float, float, float, float]:
    """Fit an asymmetric generalised Gaussian to samples by moment matching.

    Parameters
    ----------
    x : array_like
        Samples (any shape), finite.
    zero_tol : float
        Samples with ``|x| <= zero_tol`` belong to neither side.

    Returns
    -------
    nu : float
        Shape, in [0.2, 10].
    eta : float
        Mean, ``(beta_r - beta_l) Gamma(2/nu) / Gamma(1/nu)``.
    left_var, right_var : float
        Mean square of the negative and of the positive samples (0 for a side with none).

    Notes
    -----
    With ``g = sigma_l / sigma_r`` and ``r = E[|x|]^2 / E[x^2]`` (over all samples), the shape
    solves ``rho(nu) = r (g^3 + 1)(g + 1) / (g^2 + 1)^2`` (:func:`ggd_shape_from_ratio`), and
    ``beta_side = sigma_side sqrt(Gamma(1/nu) / Gamma(3/nu))``. All-zero samples give
    ``(DEGENERATE_SHAPE, 0, 0, 0)``.

    References
    ----------
    N.-E. Lasmar, Y. Stitou and Y. Berthoumieu, "Multiscale skewed heavy tailed model for texture
    analysis", Proc. IEEE ICIP 2009, 2281-2284. doi:10.1109/ICIP.2009.5414404 ;
    A. Mittal, A. K. Moorthy and A. C. Bovik, IEEE TIP 21(12), 2012. doi:10.1109/TIP.2012.2214050
    """
    x = _finite_samples(x, "fit_aggd")
    neg, pos = x < -zero_tol, x > zero_tol
    xn, xp = x[neg], x[pos]
    return _aggd_from_moments(x.size, xn.size, xp.size, float(np.dot(xn, xn)), float(np.dot(xp, xp)),
                              float(np.abs(x).sum()))


# --------------------------------------------------------------------------- MSCN and features


def _check_gray(gray) -> np.ndarray:
    return check_gray(gray, MIN_SIDE, "NSS features")


_BLUR = dict(ksize=(WINDOW, WINDOW), sigmaX=WINDOW_SIGMA, sigmaY=WINDOW_SIGMA,
             borderType=cv2.BORDER_REPLICATE)


def _mscn_and_denominator(gray01: np.ndarray, denom: np.ndarray, mscn: np.ndarray,
                          scratch: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """MSCN coefficients and their denominator ``sigma + C / 255`` of a float32 [0, 1] luma.

    Works on the [0, 1] scale with C / 255, which equals BRISQUE's computation on 0-255 exactly.
    The results are written into ``mscn`` and ``denom``; ``scratch`` is overwritten. All three are
    float32 arrays of the shape of ``gray01``.
    """
    cv2.multiply(gray01, gray01, dst=denom)
    cv2.GaussianBlur(denom, dst=denom, **_BLUR)
    mu = cv2.GaussianBlur(gray01, dst=mscn, **_BLUR)
    # |E[I^2] - mu^2|: round-off can make a flat area's variance slightly negative
    cv2.absdiff(denom, cv2.multiply(mu, mu, dst=scratch), dst=denom)
    cv2.sqrt(denom, dst=denom)
    cv2.add(denom, C_LEVELS / 255.0, dst=denom)
    cv2.subtract(gray01, mu, dst=mscn)
    cv2.divide(mscn, denom, dst=mscn)
    return mscn, denom


def mscn(gray) -> np.ndarray:
    """Mean-subtracted contrast-normalised (MSCN) coefficients of a luma image.

    Parameters
    ----------
    gray : ndarray, (H, W)
        Luma on [0, 1], at least ``MIN_SIDE`` px a side.

    Returns
    -------
    ndarray, float32, (H, W)
        ``(I - mu) / (sigma + 1)`` with ``I = 255 gray`` and ``mu``, ``sigma`` the local mean and
        standard deviation under a 7 x 7 Gaussian window of standard deviation 7/6 (replicated
        border).

    References
    ----------
    D. L. Ruderman, "The statistics of natural images", Network: Computation in Neural Systems
    5(4), 517-548, 1994. doi:10.1088/0954-898X/5/4/006 ;
    A. Mittal, A. K. Moorthy and A. C. Bovik, IEEE TIP 21(12), 2012. doi:10.1109/TIP.2012.2214050
    """
    gray = _check_gray(gray)
    return _mscn_and_denominator(gray, np.empty_like(gray), np.empty_like(gray), np.empty_like(gray))[0]


#: Neighbour pairs as (slice of the first, slice of the second), in the order of ``PAIRS``; only
#: pairs inside the image (no wrap-around).
_PAIR_SLICES = (
    ((slice(None), slice(None, -1)), (slice(None), slice(1, None))),
    ((slice(None, -1), slice(None)), (slice(1, None), slice(None))),
    ((slice(None, -1), slice(None, -1)), (slice(1, None), slice(1, None))),
    ((slice(None, -1), slice(1, None)), (slice(1, None), slice(None, -1))),
)


def _scale_features(m: np.ndarray, scratch: np.ndarray, masks: np.ndarray) -> tuple[list[float], float]:
    """The 18 BRISQUE features of one scale and the MSCN kurtosis.

    ``scratch`` (float32, ``m``'s shape) and ``masks`` (bool, at least 2 ``m.size``) are overwritten.
    """
    n = m.size
    sq = cv2.multiply(m, m, dst=scratch)
    mean_sq = float(cv2.sumElems(sq)[0]) / n
    alpha, var = _ggd_from_moments(cv2.norm(m, cv2.NORM_L1) / n, mean_sq, FLAT_MEAN_SQ)
    kurt = cv2.norm(sq, cv2.NORM_L2SQR) / n / (mean_sq * mean_sq) - 3.0 if mean_sq > FLAT_MEAN_SQ else 0.0
    feats = [alpha, var]
    flat = scratch.reshape(-1)
    masks = masks[: 2 * m.size].reshape(2, m.size)  # NumPy compares with a scalar faster than OpenCV
    for first, second in _PAIR_SLICES:
        a, b = m[first], m[second]
        k = a.size
        p = cv2.multiply(a, b, dst=flat[:k].reshape(a.shape))
        neg = np.less(p, -ZERO_TOL, out=masks[0, :k].reshape(a.shape)).view(np.uint8)
        pos = np.greater(p, ZERO_TOL, out=masks[1, :k].reshape(a.shape)).view(np.uint8)
        feats.extend(_aggd_from_moments(
            k, cv2.countNonZero(neg), cv2.countNonZero(pos),
            cv2.norm(p, cv2.NORM_L2SQR, mask=neg), cv2.norm(p, cv2.NORM_L2SQR, mask=pos),
            cv2.norm(p, cv2.NORM_L1), FLAT_MEAN_SQ,
        ))
    return feats, float(kurt)


def _workspace(n: int) -> tuple[np.ndarray, np.ndarray]:
    """Scratch for an image of ``n`` pixels: float32 of 3 n and bool of 2 n.

    Every full-size array of the group lives in these two (see :func:`nss_features`), so one call
    allocates twice instead of about fifteen times; on a 1024 x 683 image each fresh array costs
    page faults comparable to the arithmetic that fills it.
    """
    return scratch("nss.floats", (3 * n,)), scratch("nss.masks", (2 * n,), bool)  # reused per thread


def _view(flat: np.ndarray, start: int, shape: tuple[int, int]) -> np.ndarray:
    return flat[start: start + shape[0] * shape[1]].reshape(shape)


def brisque_features(gray) -> np.ndarray:
    """The 36 BRISQUE features of a luma image.

    Parameters
    ----------
    gray : ndarray, (H, W)
        Luma on [0, 1] (scaled to 0-255 inside), at least ``MIN_SIDE`` px a side.

    Returns
    -------
    ndarray, float64, (36,)
        For scale 1 (the image) then scale 2 (reduced by 2): MSCN GGD shape ``alpha`` and variance,
        then for the horizontal, vertical, main-diagonal and secondary-diagonal neighbour products
        the AGGD shape ``nu``, mean ``eta``, left variance and right variance. Always finite: a flat
        image gives shape ``DEGENERATE_SHAPE`` (2) and zero variances and means.

    Notes
    -----
    MSCN: :func:`mscn` (7 x 7 Gaussian window, sigma 7/6, C = 1 on 0-255). Fits: :func:`fit_ggd`
    and :func:`fit_aggd` on sums accumulated in double precision. Products pair coefficients inside
    the image only; products of magnitude <= ``ZERO_TOL`` count as zero. Scale 2 is
    ``cv2.pyrDown`` of the luma (binomial 5-tap low-pass, then every other pixel), where the
    reference code uses MATLAB's antialiased bicubic ``imresize(I, 0.5)``. The features are those
    BRISQUE regresses on; no model is applied here.

    References
    ----------
    A. Mittal, A. K. Moorthy and A. C. Bovik, "No-reference image quality assessment in the spatial
    domain", IEEE Trans. Image Process. 21(12), 4695-4708, 2012. doi:10.1109/TIP.2012.2214050 ;
    P. J. Burt and E. H. Adelson, "The Laplacian pyramid as a compact image code", IEEE Trans.
    Commun. 31(4), 532-540, 1983. doi:10.1109/TCOM.1983.1095851
    """
    return nss_features(gray)[0]


def _patch_sharpness(sigma: np.ndarray) -> np.ndarray:
    """Mean local standard deviation of each ``PATCH`` x ``PATCH`` patch (remainders dropped)."""
    h, w = sigma.shape
    ph, pw = min(PATCH, h), min(PATCH, w)
    ny, nx = h // ph, w // pw
    rows = sigma[: ny * ph].reshape(ny, ph, w).sum(axis=1)  # float32 sums of ph values: exact enough
    return rows[:, : nx * pw].reshape(ny, nx, pw).sum(axis=2, dtype=np.float64) / (ph * pw)


def patch_sharpness_stats(sigma_levels, scale: float = 1.0, offset: float = 0.0) -> tuple[float, float, float]:
    """NIQE-style patch sharpness: mean, standard deviation and sharp fraction over patches.

    Parameters
    ----------
    sigma_levels : ndarray, (H, W)
        Local standard deviation field (the MSCN denominator without C), in 8-bit levels, or in
        other units together with ``scale``.
    scale : float
        8-bit levels per unit of ``sigma_levels`` (255 for a field on the [0, 1] scale).
    offset : float
        Levels to subtract after scaling (C, when the field is the MSCN denominator ``sigma + C``).

    Returns
    -------
    mean, std : float
        Mean and standard deviation over ``PATCH`` x ``PATCH`` patches of each patch's mean local
        deviation (8-bit levels). Patches tile the image from the top left; a remainder narrower
        than a patch is left out; an image smaller than a patch is one patch.
    sharp_fraction : float
        Fraction of patches whose sharpness is at least ``SHARP_FRACTION`` (0.75) of the sharpest
        patch's: NIQE's rule for the patches it models. 1.0 when every patch is equal (a flat image).
        In :func:`nss_features` the deviation is computed in float32 as ``E[I^2] - mu^2``, which
        leaves a round-off floor of under 0.1 level on a perfectly flat bright area.

    Notes
    -----
    The local deviation is the "sharpness" NIQE uses to choose patches: high on sharp detail,
    low on blurred or flat areas (it also rises with contrast and noise, which the other features
    tell apart). The mean says how much detail the frame holds; the spread and the sharp fraction
    say whether it is spread over the frame or held by a few patches (a sharp subject on a soft
    background, or a partly blurred frame).

    References
    ----------
    A. Mittal, R. Soundararajan and A. C. Bovik, "Making a 'completely blind' image quality
    analyzer", IEEE Signal Process. Lett. 20(3), 209-212, 2013. doi:10.1109/LSP.2012.2227726
    """
    sigma_levels = np.asarray(sigma_levels, dtype=np.float32)
    if sigma_levels.ndim != 2 or sigma_levels.size == 0:
        raise ValueError(f"sigma_levels must be a non-empty 2-D array, got shape {sigma_levels.shape}")
    s = _patch_sharpness(sigma_levels).ravel() * scale - offset
    top = float(s.max())
    frac = float(np.mean(s >= SHARP_FRACTION * top))
    return float(s.mean()), float(s.std()), frac


def nss_features(gray) -> tuple[np.ndarray, dict]:
    """BRISQUE features and the NSS extras of a luma image, in one pass.

    Parameters
    ----------
    gray : ndarray, (H, W)
        Luma on [0, 1], at least ``MIN_SIDE`` px a side.

    Returns
    -------
    features : ndarray, float64, (36,)
        As :func:`brisque_features`.
    extras : dict
        ``s1_mscn_kurtosis``, ``s2_mscn_kurtosis``: excess kurtosis ``E[m^4] / E[m^2]^2 - 3`` of
        the MSCN coefficients ``m`` about zero at each scale (0 for a Gaussian and for a flat
        image); ``patch_sharpness_mean``, ``patch_sharpness_std``, ``sharp_patch_frac``: see
        :func:`patch_sharpness_stats`, on the scale-1 local deviation in 8-bit levels.

    Notes
    -----
    The kurtosis reads the tails directly, where the GGD shape is matched on the first two absolute
    moments: a photo whose MSCN core is Gaussian but whose tails are heavy (isolated sharp edges
    in smooth or blurred surroundings) differs in the kurtosis more than in the shape; white noise
    makes it negative (self-normalised noise has lighter tails than a Gaussian).

    Why these extras: on the 5,000 BIQ2021 training photos (Ahmed et al. 2022), a 5-fold
    cross-validated RBF support-vector regression on the 36 BRISQUE features reaches SRCC 0.626 /
    PLCC 0.719 against MOS, and 0.641 / 0.726 with the five extras added; the patch-sharpness
    spread alone has SRCC 0.50, higher than any single BRISQUE feature (0.48 at best).

    References
    ----------
    D. L. Ruderman, Network 5(4), 517-548, 1994. doi:10.1088/0954-898X/5/4/006 ;
    A. Mittal, A. K. Moorthy and A. C. Bovik, IEEE TIP 21(12), 2012. doi:10.1109/TIP.2012.2214050 ;
    A. Mittal, R. Soundararajan and A. C. Bovik, IEEE SPL 20(3), 2013. doi:10.1109/LSP.2012.2227726 ;
    N. Ahmed et al., "BIQ2021: a large-scale blind image quality assessment database", J. Electron.
    Imaging 31(5), 053010, 2022. doi:10.1117/1.JEI.31.5.053010 (data of the numbers above)
    """
    g1 = _check_gray(gray)
    floats, masks = _workspace(g1.size)
    shape1 = g1.shape
    shape2 = ((shape1[0] + 1) // 2, (shape1[1] + 1) // 2)
    n1, n2 = g1.size, shape2[0] * shape2[1]
    # floats = [A | B | C], each n1 long. Scale 1: denominator in A, MSCN in B, scratch in C.
    # Scale 2: denominator and MSCN at the start of A and B, the reduced luma and its scratch in C
    # (2 n2 <= n1 for sides >= 3).
    denom1, m1 = _view(floats, 0, shape1), _view(floats, n1, shape1)
    _mscn_and_denominator(g1, denom1, m1, _view(floats, 2 * n1, shape1))
    f1, k1 = _scale_features(m1, _view(floats, 2 * n1, shape1), masks)
    sharp = patch_sharpness_stats(denom1, scale=255.0, offset=C_LEVELS)  # sigma = denominator - C
    g2 = cv2.pyrDown(g1, dst=_view(floats, 2 * n1, shape2), borderType=cv2.BORDER_REPLICATE)
    scratch2 = _view(floats, 2 * n1 + n2, shape2)
    m2 = _mscn_and_denominator(g2, _view(floats, 0, shape2), _view(floats, n1, shape2), scratch2)[0]
    f2, k2 = _scale_features(m2, scratch2, masks)
    extras = {
        "s1_mscn_kurtosis": k1,
        "s2_mscn_kurtosis": k2,
        "patch_sharpness_mean": sharp[0],
        "patch_sharpness_std": sharp[1],
        "sharp_patch_frac": sharp[2],
    }
    return np.array(f1 + f2, dtype=np.float64), extras


# --------------------------------------------------------------------------- registration


def _feature_outputs() -> list[tuple[str, str, str]]:
    """(name, unit, description) of the 36 BRISQUE outputs, in :func:`brisque_features` order."""
    out = []
    for s, where in (("s1", "working image"), ("s2", "working image reduced by 2")):
        out.append((f"nss_{s}_mscn_alpha", "GGD shape (2 = Gaussian, 1 = Laplacian)",
                    f"Shape of a generalised Gaussian fitted to the MSCN coefficients, {where}"))
        out.append((f"nss_{s}_mscn_var", "dimensionless",
                    f"Variance of the MSCN coefficients, {where}"))
        for key, pair in PAIRS:
            what = f"the {pair} MSCN products, {where}"
            out += [
                (f"nss_{s}_{key}_nu", "AGGD shape", f"Shape of an asymmetric generalised Gaussian fitted to {what}"),
                (f"nss_{s}_{key}_eta", "dimensionless", f"Mean of the asymmetric generalised Gaussian of {what}"),
                (f"nss_{s}_{key}_lvar", "dimensionless", f"Mean square of the negative values among {what}"),
                (f"nss_{s}_{key}_rvar", "dimensionless", f"Mean square of the positive values among {what}"),
            ]
    return out


#: The 36 BRISQUE output names, in :func:`brisque_features` order.
FEATURE_NAMES = tuple(o[0] for o in _feature_outputs())

_EXTRA_OUTPUTS = [
    ("nss_s1_mscn_kurtosis", "excess kurtosis (0 = Gaussian)",
     "Kurtosis about zero of the MSCN coefficients, working image (tail weight; Ruderman 1994)"),
    ("nss_s2_mscn_kurtosis", "excess kurtosis (0 = Gaussian)",
     "Kurtosis about zero of the MSCN coefficients, working image reduced by 2"),
    ("nss_patch_sharpness_mean", "8-bit levels",
     "Mean over 96-px patches of the patch's mean local standard deviation (NIQE patch sharpness)"),
    ("nss_patch_sharpness_std", "8-bit levels",
     "Standard deviation over 96-px patches of the NIQE patch sharpness"),
    ("nss_sharp_patch_frac", "fraction 0-1",
     "Fraction of 96-px patches at least 0.75 times as sharp as the sharpest (NIQE's selection rule)"),
]


@measure_group("nss", outputs=_feature_outputs() + _EXTRA_OUTPUTS, cost=16)
def measure_nss(photo: Photo) -> dict:
    """Registered adapter: :func:`nss_features` of the statistics copy's luma
    (`~picinspector.io.Photo.stats_gray`: the working image up to 512 px long side, the size of the
    BIQ2021 photos the fitted models learnt these features on), as named floats."""
    try:
        feats, extras = nss_features(photo.stats_gray)
    except ValueError as exc:
        raise AnalysisError(f"nss: {exc}", photo.path) from exc
    out = {name: float(v) for name, v in zip(FEATURE_NAMES, feats)}
    out.update({f"nss_{k}": float(v) for k, v in extras.items()})
    return out
