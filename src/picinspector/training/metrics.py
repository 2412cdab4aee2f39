"""Agreement metrics between predicted scores and human opinion, and scene-label metrics.

Quality metrics follow the usual IQA protocol (VQEG 2000; ITU-T P.1401): rank correlations (SRCC,
KRCC) on the raw predictions, and PLCC and RMSE after a monotone 4-parameter logistic maps the
predictions onto the MOS scale. Scene metrics treat each image's labels as a set (SPAQ images carry
one to three scene labels).

Only numpy and scipy are used, so the module may be imported anywhere.
"""

from __future__ import annotations

import math
import warnings
from typing import Any, Hashable, Sequence

import numpy as np
from scipy import optimize, special, stats

__all__ = [
    "average_precision", "krcc", "logistic4", "logistic4_fit", "mean_average_precision",
    "per_class_average_precision", "plcc", "quality_metrics", "rmse", "srcc", "top1_any_hit",
]


def _pair(pred: Any, mos: Any) -> tuple[np.ndarray, np.ndarray]:
    """Two equally long 1-D float arrays with the pairs where either value is not finite removed."""
    x = np.asarray(pred, dtype=float).ravel()
    y = np.asarray(mos, dtype=float).ravel()
    if x.shape != y.shape:
        raise ValueError(f"predictions and MOS differ in length: {x.size} vs {y.size}")
    keep = np.isfinite(x) & np.isfinite(y)
    return x[keep], y[keep]


def _pearson(x: np.ndarray, y: np.ndarray) -> float:
    if x.size < 2:
        return math.nan
    dx, dy = x - x.mean(), y - y.mean()
    denom = math.sqrt(float(dx @ dx) * float(dy @ dy))
    if denom == 0.0:
        return math.nan  # a constant input has no defined correlation
    return float(np.clip((dx @ dy) / denom, -1.0, 1.0))


def srcc(pred: Any, mos: Any) -> float:
    """Spearman rank-order correlation coefficient.

    Parameters
    ----------
    pred, mos : array_like
        Predictions and opinion scores, same length. Pairs with a non-finite value are dropped.

    Returns
    -------
    float
        In [-1, 1]; NaN with fewer than 2 pairs or when either side is constant.

    Notes
    -----
    The Pearson correlation of the average ranks (ties share their mean rank).

    References
    ----------
    C. Spearman, "The proof and measurement of association between two things", Am. J. Psychol.
    15(1):72-101, 1904, doi:10.2307/1412159.
    """
    x, y = _pair(pred, mos)
    return _pearson(stats.rankdata(x), stats.rankdata(y))


def krcc(pred: Any, mos: Any) -> float:
    """Kendall rank correlation coefficient (tau-b, which accounts for ties).

    Parameters
    ----------
    pred, mos : array_like
        Predictions and opinion scores, same length. Pairs with a non-finite value are dropped.

    Returns
    -------
    float
        In [-1, 1]; NaN with fewer than 2 pairs or when either side is constant.

    References
    ----------
    M. G. Kendall, "The treatment of ties in ranking problems", Biometrika 33(3):239-251, 1945,
    doi:10.1093/biomet/33.3.239.
    """
    x, y = _pair(pred, mos)
    if x.size < 2 or np.all(x == x[0]) or np.all(y == y[0]):
        return math.nan
    return float(stats.kendalltau(x, y, variant="b")[0])


def plcc(pred: Any, mos: Any) -> float:
    """Pearson linear correlation coefficient of the values as given (no fitting).

    Parameters
    ----------
    pred, mos : array_like
        Same length; pairs with a non-finite value are dropped.

    Returns
    -------
    float
        In [-1, 1]; NaN with fewer than 2 pairs or a constant side.

    References
    ----------
    K. Pearson, "Notes on regression and inheritance in the case of two parents", Proc. R. Soc.
    Lond. 58:240-242, 1895, doi:10.1098/rspl.1895.0041.
    """
    x, y = _pair(pred, mos)
    return _pearson(x, y)


def rmse(pred: Any, mos: Any) -> float:
    """Root-mean-square error, in the units of ``mos``.

    Parameters
    ----------
    pred, mos : array_like
        Same length and scale; pairs with a non-finite value are dropped.

    Returns
    -------
    float
        NaN when no pair is left.
    """
    x, y = _pair(pred, mos)
    if x.size == 0:
        return math.nan
    return float(np.sqrt(np.mean((x - y) ** 2)))


def logistic4(x: Any, b1: float, b2: float, b3: float, b4: float) -> np.ndarray:
    """The VQEG 4-parameter logistic mapping of predictions onto the MOS scale.

    Parameters
    ----------
    x : array_like
        Predictions.
    b1, b2 : float
        The asymptotes for large and for small ``x`` (``b1 < b2`` makes the curve decreasing).
    b3 : float
        The midpoint, in units of ``x``.
    b4 : float
        The scale, in units of ``x``; its sign is ignored.

    Returns
    -------
    numpy.ndarray
        ``b2 + (b1 - b2) / (1 + exp(-(x - b3) / |b4|))``, computed without overflow.

    References
    ----------
    VQEG, "Final report from the Video Quality Experts Group on the validation of objective models
    of video quality assessment, phase II", 2003, section 5.3 (the 4-parameter logistic).
    """
    scale = max(abs(float(b4)), 1e-12)
    return b2 + (b1 - b2) * special.expit((np.asarray(x, dtype=float) - b3) / scale)


#: Bound of every parameter of the standardised fit (asymptotes, midpoint, scale), in standard
#: deviations: a nearly linear relation otherwise sends the asymptotes and the scale to infinity
#: together, slowly.
_LIMIT = 20.0

#: Fewer pairs than this are not fitted (4 parameters on a handful of points fit noise).
MIN_PAIRS = 10

#: Lower bound of the logistic's scale ``|b4|``, as a fraction of the predictions' standard deviation.
MIN_SCALE = 0.05


def _logistic4_jac(x: np.ndarray, b1: float, b2: float, b3: float, b4: float) -> np.ndarray:
    """Derivatives of `logistic4` by its parameters (for ``b4 > 0``), one row per point."""
    scale = max(abs(float(b4)), 1e-12)
    t = (x - b3) / scale
    s = special.expit(t)
    slope = (b1 - b2) * s * (1.0 - s)
    return np.column_stack([s, 1.0 - s, -slope / scale, -slope * t / scale])


def _initial_guesses(x: np.ndarray, y: np.ndarray) -> list[list[float]]:
    """Starting points (on standardised data): the MOS range as asymptotes, oriented by the sign of
    the correlation, the middle of the predictions as midpoint, and a few scales."""
    hi, lo = float(y.max()), float(y.min())
    if _pearson(x, y) < 0:
        hi, lo = lo, hi
    starts = [[hi, lo, m, k] for m in (float(np.median(x)), 0.0) for k in (1.0, 0.3, 3.0)]
    return [list(np.clip(p, -0.99 * _LIMIT, 0.99 * _LIMIT)) for p in starts]  # inside the bounds


def logistic4_fit(pred: Any, mos: Any, *, maxfev: int = 200) -> tuple[float, float, float, float] | None:
    """Fit `logistic4` from predictions to MOS by least squares.

    Parameters
    ----------
    pred, mos : array_like
        Same length; pairs with a non-finite value are dropped.
    maxfev : int
        Function evaluations allowed per start.

    Returns
    -------
    tuple of 4 floats or None
        ``(b1, b2, b3, b4)`` with the lowest squared error over several starting points
        (``scipy.optimize.curve_fit``, trust-region reflective); None when fewer than `MIN_PAIRS` pairs
        are given, either side is constant, or no start converged to finite parameters.

    Notes
    -----
    Both sides are standardised (zero mean, unit variance) for the fit, which keeps the problem
    well conditioned whatever the scales, and the parameters are mapped back. The starts put the
    asymptotes at the MOS extremes, oriented by the sign of the Pearson correlation (so
    anti-correlated predictions give a decreasing curve), the midpoint at the median or mean
    prediction, and the scale at 0.3, 1 and 3 standard deviations of the predictions. The scale is
    kept at or above `MIN_SCALE` standard deviations: on a few dozen points an unbounded fit can
    turn the curve into a step between two clusters, which inflates PLCC without predicting
    anything.

    References
    ----------
    VQEG, "Final report from the Video Quality Experts Group on the validation of objective models
    of video quality assessment, phase II", 2003.
    """
    x, y = _pair(pred, mos)
    if x.size < MIN_PAIRS or np.ptp(x) == 0 or np.ptp(y) == 0:
        return None
    mx, sx, my, sy = float(x.mean()), float(x.std()), float(y.mean()), float(y.std())
    xs, ys = (x - mx) / sx, (y - my) / sy
    bounds = ([-_LIMIT, -_LIMIT, -_LIMIT, MIN_SCALE], [_LIMIT, _LIMIT, _LIMIT, _LIMIT])
    best: tuple[float, np.ndarray] | None = None
    for p0 in _initial_guesses(xs, ys):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # OptimizeWarning: covariance not estimable
                params, _ = optimize.curve_fit(logistic4, xs, ys, p0=p0, bounds=bounds, jac=_logistic4_jac,
                                               max_nfev=maxfev)
        except (RuntimeError, ValueError, FloatingPointError, optimize.OptimizeWarning):
            continue
        if not np.all(np.isfinite(params)):
            continue
        sse = float(np.sum((logistic4(xs, *params) - ys) ** 2))
        if np.isfinite(sse) and (best is None or sse < best[0]):
            best = (sse, params)
    if best is None:
        return None
    b1, b2, b3, b4 = (float(v) for v in best[1])
    return my + sy * b1, my + sy * b2, mx + sx * b3, sx * abs(b4)


def quality_metrics(pred: Any, mos: Any) -> dict[str, Any]:
    """The standard agreement figures between quality predictions and MOS.

    Parameters
    ----------
    pred : array_like
        Predicted quality (any monotone scale).
    mos : array_like
        Opinion scores; RMSE is reported in these units (pass MOS on 0-100 to compare with
        PicInspector's scores).

    Returns
    -------
    dict
        ``n`` (pairs used), ``srcc``, ``krcc``, ``plcc_raw`` (no fitting), ``plcc`` and ``rmse``
        (after the logistic fit), ``fit`` ("logistic4", or "raw" when the fit failed, in which
        case ``plcc`` and ``rmse`` use the raw predictions) and ``params`` (the logistic
        parameters or None). Undefined values are NaN.

    Notes
    -----
    SRCC and KRCC are invariant to any monotone mapping, so they need no fit. PLCC and RMSE are
    computed after `logistic4_fit`, as in the VQEG protocol; a raw fallback is reported as such.
    """
    x, y = _pair(pred, mos)
    params = logistic4_fit(x, y)
    fitted = x if params is None else logistic4(x, *params)
    return {
        "n": int(x.size),
        "srcc": srcc(x, y),
        "krcc": krcc(x, y),
        "plcc_raw": _pearson(x, y),
        "plcc": _pearson(np.asarray(fitted, dtype=float), y),
        "rmse": rmse(fitted, y),
        "fit": "raw" if params is None else "logistic4",
        "params": None if params is None else list(params),
    }


# --------------------------------------------------------------------------------------------------
# Scene labels


def _label_matrix(label_sets: Sequence[Any], n_rows: int, classes: Sequence[Hashable] | None,
                  n_classes: int) -> np.ndarray:
    """Boolean (n, k) membership matrix from label sets of class names (or column indices)."""
    if len(label_sets) != n_rows:
        raise ValueError(f"{n_rows} probability rows but {len(label_sets)} label sets")
    index = {c: i for i, c in enumerate(classes)} if classes is not None else None
    out = np.zeros((n_rows, n_classes), dtype=bool)
    for r, labels in enumerate(label_sets):
        for label in labels or ():
            if index is not None:
                if label not in index:
                    raise ValueError(f"label {label!r} (row {r}) is not one of the classes {list(classes)}")
                out[r, index[label]] = True
            else:
                col = int(label)
                if not 0 <= col < n_classes:
                    raise ValueError(f"label index {col} (row {r}) is outside 0..{n_classes - 1}")
                out[r, col] = True
    return out


def _prob_matrix(prob_matrix: Any) -> np.ndarray:
    p = np.asarray(prob_matrix, dtype=float)
    if p.ndim != 2:
        raise ValueError(f"prob_matrix must be 2-D (images x classes), got shape {p.shape}")
    return p


def top1_any_hit(prob_matrix: Any, label_sets: Sequence[Any], classes: Sequence[Hashable] | None = None
                 ) -> float:
    """Share of images whose most probable class is one of their labels.

    Parameters
    ----------
    prob_matrix : array_like, shape (n, k)
        Class scores per image.
    label_sets : sequence of n iterables
        Each image's true labels: class names from ``classes`` or, without ``classes``, column
        indices. Images with no label are left out.
    classes : sequence, optional
        Column names, in column order.

    Returns
    -------
    float
        In [0, 1]; NaN when no image has a label. Ties for the top score go to the first column.
    """
    p = _prob_matrix(prob_matrix)
    truth = _label_matrix(label_sets, p.shape[0], classes, p.shape[1])
    has = truth.any(axis=1)
    if not has.any():
        return math.nan
    top = np.argmax(p, axis=1)
    return float(np.mean(truth[np.arange(p.shape[0]), top][has]))


def average_precision(scores: Any, positives: Any) -> float:
    """Average precision of one ranking (area under the precision-recall step curve).

    Parameters
    ----------
    scores : array_like, shape (n,)
        Higher = more likely positive.
    positives : array_like of bool, shape (n,)

    Returns
    -------
    float
        ``sum_t (R_t - R_{t-1}) P_t`` over the distinct score thresholds ``t`` from high to low
        (tied scores enter together, so the result does not depend on their order); NaN when
        there is no positive.

    References
    ----------
    M. Everingham et al., "The PASCAL Visual Object Classes (VOC) challenge", IJCV 88:303-338,
    2010, doi:10.1007/s11263-009-0275-4 (AP as the mean precision at each recall step).
    """
    s = np.asarray(scores, dtype=float).ravel()
    pos = np.asarray(positives, dtype=bool).ravel()
    if s.shape != pos.shape:
        raise ValueError(f"scores and positives differ in length: {s.size} vs {pos.size}")
    n_pos = int(pos.sum())
    if n_pos == 0:
        return math.nan
    order = np.argsort(-s, kind="mergesort")
    s, pos = s[order], pos[order]
    last = np.r_[np.flatnonzero(np.diff(s) != 0), s.size - 1]  # last index of each tie group
    tp = np.cumsum(pos)[last]
    precision = tp / (last + 1)
    recall = tp / n_pos
    return float(np.sum(np.diff(np.r_[0.0, recall]) * precision))


def per_class_average_precision(prob_matrix: Any, label_sets: Sequence[Any], classes: Sequence[Hashable]
                                ) -> dict[Hashable, float]:
    """`average_precision` of each class column (NaN for a class with no positive image).

    Parameters
    ----------
    prob_matrix : array_like, shape (n, k)
    label_sets : sequence of n iterables of class names
        Images with no label are left out.
    classes : sequence of k class names, in column order

    Returns
    -------
    dict
        Class name -> AP.
    """
    p = _prob_matrix(prob_matrix)
    if p.shape[1] != len(classes):
        raise ValueError(f"prob_matrix has {p.shape[1]} columns but {len(classes)} classes were named")
    truth = _label_matrix(label_sets, p.shape[0], classes, p.shape[1])
    has = truth.any(axis=1)
    return {c: average_precision(p[has, i], truth[has, i]) for i, c in enumerate(classes)}


def mean_average_precision(prob_matrix: Any, label_sets: Sequence[Any], classes: Sequence[Hashable]) -> float:
    """Mean of the per-class average precision over the classes that have a positive image.

    Parameters
    ----------
    prob_matrix : array_like, shape (n, k)
    label_sets : sequence of n iterables of class names
    classes : sequence of k class names, in column order

    Returns
    -------
    float
        In [0, 1]; 1 when every class ranks all its images above all others. NaN when no class
        has a positive image.

    References
    ----------
    M. Everingham et al., "The PASCAL Visual Object Classes (VOC) challenge", IJCV 88:303-338,
    2010, doi:10.1007/s11263-009-0275-4.
    """
    ap = [v for v in per_class_average_precision(prob_matrix, label_sets, classes).values() if not math.isnan(v)]
    return float(np.mean(ap)) if ap else math.nan
