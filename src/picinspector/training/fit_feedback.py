"""Fitting the rule findings' severities to opinion scores (``picinspector fit-feedback``).

Training-only: needs scikit-learn (isotonic regression; ``pip install "picinspector[fit]"``). The
result is a `~picinspector.feedback.calibration.Calibration` JSON file that the rules read with the
standard library.

Steps:

1. Every labelled photo's report row (the batch runner's JSONL, the same cache ``fit-quality``
   uses), so a refit never measures again.
2. The quality each photo would get *unseen*: out-of-fold predictions of the quality model's
   learners (the shipped model's candidate, the same folds as ``fit-quality``), with the guards,
   cached beside the rows. Or, with ``quality="rows"``, the quality stored in the rows (for an engine
   whose rows are already out of sample).
3. The cost tables: an additive model of the deficit ``100 - MOS`` over the rule terms
   (`picinspector.feedback.rules.TERMS`), one monotone table per term and context, fitted by
   backfitting binned isotonic regressions; each table is anchored at the median photo, so a term
   costs nothing where its value is typical.
4. The reference quality (a photo without faults), chosen on the training photos so that the
   flagged findings agree with people best: the larger of the false-alarm and miss rates is
   smallest (`choose_reference`).
5. Cross-validation of all of it (fit on k-1 folds, measure the feedback on the k-th), then a refit
   on every photo. Deterministic for a seed.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from .._version import __version__
from ..evaluation import AGREEMENT_SHARE, FLAGGED, _top_bottom, feedback_agreement, names_fingerprint, read_rows
from ..feedback.calibration import (FORMAT, FORMAT_VERSION, SEVERITY_POINTS, Calibration, CostTable,
                                    TermCalibration, quantiles)
from ..feedback.rules import TERMS, Context, assess, findings_for


def _sklearn():
    try:
        import sklearn  # noqa: F401
    except ImportError as exc:
        raise ImportError('fitting the feedback calibration needs scikit-learn: pip install "picinspector[fit]"'
                          ) from exc


# --------------------------------------------------------------------------------------------------
# Rows and out-of-fold quality


def _quality_candidate(quality_model: str | os.PathLike[str] | None) -> tuple[str, dict[str, Any]]:
    from ..scoring._model import DEFAULT_MODEL, QualityModel

    model = QualityModel.load(DEFAULT_MODEL if quality_model is None else quality_model)
    return model.meta["candidate"], model.meta


def _oof_key(x: np.ndarray, y: np.ndarray, candidate: str, folds: int, seed: int, names: list[str]) -> str:
    """What an out-of-fold quality cache is valid for: the features, targets, learners and folds."""
    return hashlib.sha256(b"".join([np.ascontiguousarray(x, dtype=np.float64).tobytes(),
                                    np.ascontiguousarray(y, dtype=np.float64).tobytes(),
                                    json.dumps([candidate, folds, seed, names, __version__]).encode()])).hexdigest()


def oof_quality(measures: Sequence[Mapping[str, Any]], mos01: np.ndarray, *, folds: int, seed: int,
                candidate: str, cache: str | os.PathLike[str] | None = None,
                progress: Callable[[str], None] | None = None) -> np.ndarray:
    """Out-of-fold quality (0-100, guards applied) of the quality model's ``candidate`` learners.

    The folds are ``KFold(folds, shuffle=True, random_state=seed)``, as in ``fit-quality``'s
    cross-validation, so each photo's quality comes from a model that never saw it. ``cache`` (a
    JSON file) keeps the result, keyed by a hash of the features, targets, candidate, folds and seed.
    """
    _sklearn()
    from sklearn.model_selection import KFold

    from ..scoring._features import feature_matrix, features
    from .fit_quality import _fit_candidate, _predict_candidate

    names = sorted(features(measures[0]))
    x = feature_matrix(list(measures), names)
    y = np.asarray(mos01, dtype=np.float64)
    key = _oof_key(x, y, candidate, folds, seed, names)
    if cache is not None and os.path.isfile(cache):
        try:
            stored = json.loads(Path(cache).read_text(encoding="utf-8"))
            if stored.get("key") == key:
                return np.asarray(stored["quality"], dtype=np.float64)
        except (OSError, ValueError, KeyError):
            pass
    pred = np.empty(len(y))
    for i, (train, test) in enumerate(KFold(n_splits=folds, shuffle=True, random_state=seed).split(x)):
        pre, fitted = _fit_candidate(candidate, x[train], y[train], names, seed)
        pred[test] = _predict_candidate(candidate, pre, fitted, x[test])
        if progress:
            progress(f"quality fold {i + 1}/{folds} fitted")
    quality = guarded_quality(pred, measures)
    if cache is not None:
        Path(cache).write_text(json.dumps({"key": key, "candidate": candidate, "folds": folds, "seed": seed,
                                           "quality": [round(float(q), 4) for q in quality]}), encoding="utf-8")
    return quality


def guarded_quality(pred01: Sequence[float], measures: Sequence[Mapping[str, Any]]) -> np.ndarray:
    """Quality 0-100 as `analyze` reports it from a model's 0-1 predictions: clipped, times the guards."""
    from ..scoring._attributes import attribute_scores
    from ..scoring._quality import guard_factor

    return np.array([float(np.clip(100.0 * p, 0.0, 100.0)) * guard_factor(m, attribute_scores(m))
                     for p, m in zip(pred01, measures)])


def report_quality(report: str | os.PathLike[str], rows: Sequence[Mapping[str, Any]]
                   ) -> tuple[np.ndarray, dict[str, Any]]:
    """Each row's out-of-fold quality from the ``--report`` of ``fit-quality --engine effnet`` (0-100, the
    chosen candidate's predictions times the guards, as the effnet engine reports them), and where it
    came from.

    Raises
    ------
    ValueError
        The file is not such a report, or holds no prediction for one of the rows' photos.
    """
    try:
        data = json.loads(Path(report).read_text(encoding="utf-8"))
        chosen = data["chosen"]
        preds = {os.path.realpath(p): float(v) for p, v in data["oof"][chosen].items()}
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise ValueError(f"{report}: not a report of `picinspector fit-quality --engine effnet --report` "
                         f"({type(exc).__name__}: {exc})") from None
    missing = [r["path"] for r in rows if os.path.realpath(r["path"]) not in preds]
    if missing:
        raise ValueError(f"{report}: no out-of-fold prediction for {len(missing)} of the {len(rows)} photos (first: "
                         f"{missing[0]}); make the report with fit-quality --engine effnet --report on this dataset")
    pred = [preds[os.path.realpath(r["path"])] for r in rows]
    return guarded_quality(pred, [r["measures"] for r in rows]), {
        "source": "report", "candidate": chosen, "report": os.path.basename(os.fspath(report))}


# --------------------------------------------------------------------------------------------------
# Cost tables


@dataclass
class TermData:
    """One term's values over the photos, with each photo's context (NaN: not measured)."""

    values: np.ndarray
    contexts: np.ndarray


def term_data(contexts: Sequence[Context]) -> dict[str, TermData]:
    out = {}
    for name, term in TERMS.items():
        vals = [term.value(c) for c in contexts]
        out[name] = TermData(np.array([np.nan if v is None else float(v) for v in vals]),
                             np.array([term.context(c) for c in contexts], dtype=object))
    return out


def _binned_isotonic(x: np.ndarray, r: np.ndarray, bins: int, min_count: int
                     ) -> tuple[np.ndarray, np.ndarray, float]:
    """Knots (bin means of x), an increasing fit of the bin means of r weighted by counts, and the
    standard error of a bin mean (residual spread / sqrt(mean count))."""
    from sklearn.isotonic import IsotonicRegression

    n_bins = max(1, min(bins, len(x) // max(min_count, 1)))
    edges = np.unique(np.quantile(x, np.linspace(0, 1, n_bins + 1)))
    if len(edges) < 2:
        return np.array([float(x.mean())]), np.array([float(r.mean())]), 0.0
    idx = np.clip(np.searchsorted(edges, x, side="right") - 1, 0, len(edges) - 2)
    counts = np.bincount(idx, minlength=len(edges) - 1)
    used = counts > 0
    xs = (np.bincount(idx, weights=x, minlength=len(counts))[used] / counts[used])
    rs = (np.bincount(idx, weights=r, minlength=len(counts))[used] / counts[used])
    fit = IsotonicRegression(increasing=True).fit(xs, rs, sample_weight=counts[used]).predict(xs)
    spread = float(np.sqrt(np.mean((r - np.interp(x, xs, fit)) ** 2)))
    return xs, fit, spread / np.sqrt(counts[used].mean())


#: Standard errors of a bin mean that a cost must exceed to count (`fit_tables`).
SIGNIFICANCE = 2.0


def fit_tables(data: Mapping[str, TermData], mos100: np.ndarray, *, good: np.ndarray | None = None,
               bins: int = 25, min_count: int = 40, iterations: int = 8) -> dict[str, TermCalibration]:
    """Monotone cost tables per term and context by backfitting an additive model of ``100 - MOS``.

    Parameters
    ----------
    data : mapping
        `term_data` of the training photos.
    mos100 : ndarray
        Their MOS on 0-100.
    good : ndarray of bool, optional
        The training photos people rate highest; each term keeps the quantiles of its value among
        them (to compare a photo with them in words).
    bins, min_count : int
        At most ``bins`` quantile bins per table, with at least ``min_count`` photos each.
    iterations : int
        Backfitting sweeps.

    Returns
    -------
    dict
        Term name -> `TermCalibration` (a table per context seen in the data).

    Notes
    -----
    The model is ``100 - MOS = b + sum_j f_j(x_j; context_j)`` with every ``f_j`` non-decreasing,
    fitted by backfitting (Hastie & Tibshirani 1986): each sweep refits one term to the partial
    residual of the others by weighted isotonic regression of its quantile-bin means (Barlow et
    al. 1972, pool-adjacent-violators). A missing value contributes nothing. A term's cost is
    ``max(0, f_j(x) - f_j(x0) - 2 SE)`` with ``x0`` the median value over all photos and SE the
    standard error of a bin mean: what people take off compared with a photo where that value is
    typical, counted only where it stands out of the noise (`SIGNIFICANCE`).

    References
    ----------
    T. Hastie and R. Tibshirani, "Generalized additive models", Statistical Science 1(3):297-310,
    1986, doi:10.1214/ss/1177013604. R. E. Barlow, D. J. Bartholomew, J. M. Bremner and H. D. Brunk,
    Statistical Inference under Order Restrictions, Wiley, 1972.
    """
    _sklearn()
    t = 100.0 - np.asarray(mos100, dtype=float)
    n = len(t)
    contrib = {name: np.zeros(n) for name in data}
    knots: dict[str, dict[str, tuple[np.ndarray, np.ndarray]]] = {name: {} for name in data}
    errors: dict[str, dict[str, float]] = {name: {} for name in data}
    b = float(t.mean())
    for _ in range(iterations):
        for name, d in data.items():
            partial = t - b - sum(contrib[o] for o in data if o != name)
            fitted = np.zeros(n)
            present = np.isfinite(d.values)
            for ctx in sorted(set(d.contexts[present])):
                sel = present & (d.contexts == ctx)
                if sel.sum() < 2 * min_count:
                    continue
                xs, fs, se = _binned_isotonic(d.values[sel], partial[sel], bins, min_count)
                knots[name][ctx] = (xs, fs)
                errors[name][ctx] = se
                fitted[sel] = np.interp(d.values[sel], xs, fs)
            shift = float(fitted[present].mean()) if present.any() else 0.0
            contrib[name] = np.where(present, fitted - shift, 0.0)
            knots[name] = {c: (xs, fs - shift) for c, (xs, fs) in knots[name].items()}
        b = float((t - sum(contrib.values())).mean())
    out = {}
    for name, d in data.items():
        present = np.isfinite(d.values)
        if not present.any():
            continue
        anchor = float(np.median(d.values[present]))
        tables = {}
        for ctx, (xs, fs) in knots[name].items():
            # Only a cost that stands out of the noise of a bin mean counts (a soft threshold of
            # `SIGNIFICANCE` standard errors): small steps would name faults people do not see.
            margin = SIGNIFICANCE * errors[name].get(ctx, 0.0)
            cost = np.maximum(0.0, fs - float(np.interp(anchor, xs, fs)) - margin)
            if xs[0] < anchor < xs[-1] and anchor not in xs:  # a knot at the anchor: zero cost there exactly
                at = int(np.searchsorted(xs, anchor))
                xs, cost = np.insert(xs, at, anchor), np.insert(cost, at, 0.0)
            tables[ctx] = CostTable(tuple(float(v) for v in xs), tuple(float(v) for v in cost))
        top_values = d.values[present & good] if good is not None else np.array([])
        out[name] = TermCalibration(tables, anchor, quantiles(top_values) if top_values.size else ())
    return out


# --------------------------------------------------------------------------------------------------
# The whole calibration, and its cross-validation


def _with_quality(contexts: Sequence[Context], quality: np.ndarray) -> list[Context]:
    return [Context(c.measures, {**c.scores, "quality": float(q)}, c.scene, c.width, c.height, c.exif)
            for c, q in zip(contexts, quality)]


def choose_reference(quality: np.ndarray, mos100: np.ndarray, moderate: float,
                     always: np.ndarray | None = None) -> float:
    """The reference quality that makes the flagged findings agree with people best.

    A photo gets a moderate or severe finding exactly when its deficit ``reference - quality``
    reaches ``moderate`` points (an aspect's attributed points never exceed the deficit, and a
    deficit that no aspect carries is still reported), or when a measured cost is large enough on
    its own (``always``, which does not depend on the reference). So the flag is a threshold on
    quality, and the threshold chosen makes the larger of the false-alarm rate (top photos flagged)
    and the miss rate (bottom photos not flagged) smallest; ties go to the smaller sum, then the
    lower reference.
    """
    q = np.asarray(quality, dtype=float)
    y = np.asarray(mos100, dtype=float)
    always = np.zeros(len(q), bool) if always is None else np.asarray(always, bool)
    top, bottom = _top_bottom(y, AGREEMENT_SHARE)
    cuts = np.unique(np.round(q, 2))
    best: tuple[float, float, float] | None = None
    for cut in np.concatenate([[cuts[0] - 0.01], cuts]):
        flagged = (q <= cut + 1e-9) | always
        fa, miss = float(flagged[top].mean()), float((~flagged[bottom]).mean())
        key = (round(max(fa, miss), 6), round(fa + miss, 6), float(cut))
        if best is None or key < best:
            best = key
    return round(best[2] + moderate, 2)


def fit_calibration(contexts: Sequence[Context], mos100: np.ndarray, *, severity_points: Mapping[str, float]
                    = SEVERITY_POINTS, max_scale: float = 2.0, measured_floor: float = 0.5,
                    meta: Mapping[str, Any] | None = None) -> Calibration:
    """Fit the tables and choose the reference quality on these photos (their ``scores.quality``
    must be out-of-sample predictions)."""
    mos100 = np.asarray(mos100, dtype=float)
    tables = fit_tables(term_data(contexts), mos100, good=_top_bottom(mos100, AGREEMENT_SHARE)[0],
                        min_count=max(5, min(40, len(mos100) // 25)))
    cal = Calibration(terms=tables, severity_points=dict(severity_points), max_scale=max_scale,
                      measured_floor=measured_floor, meta=dict(meta or {}))
    quality = np.array([float(c.scores["quality"]) for c in contexts])
    moderate = float(severity_points["moderate"])
    # Photos flagged whatever the reference: a measured cost whose floor share reaches moderate.
    always = np.array([any(a.cost * measured_floor >= moderate for a in assess(c, cal)[0]) for c in contexts])
    cal.reference_quality = choose_reference(quality, mos100, moderate, always)
    return cal


def cross_validate(contexts: Sequence[Context], mos100: np.ndarray, subsets: Sequence[str | None], *, folds: int,
                   seed: int, progress: Callable[[str], None] | None = None, **fit_options: Any
                   ) -> tuple[dict[str, Any], list[list[dict[str, str]]], list[dict[str, Any]]]:
    """k-fold CV of `fit_calibration`: the pooled out-of-fold agreement, the out-of-fold findings
    per photo, and per-fold figures."""
    from sklearn.model_selection import KFold

    mos100 = np.asarray(mos100, dtype=float)
    oof: list[list[dict[str, str]] | None] = [None] * len(contexts)
    per_fold = []
    for i, (train, test) in enumerate(KFold(n_splits=folds, shuffle=True, random_state=seed).split(mos100)):
        cal = fit_calibration([contexts[j] for j in train], mos100[train], **fit_options)
        found = [[f.to_dict() for f in findings_for(contexts[j], cal)] for j in test]
        for j, fs in zip(test, found):
            oof[j] = fs
        agree = feedback_agreement(found, mos100[test])
        per_fold.append({"fold": i, "n": len(test), "reference_quality": cal.reference_quality,
                         "false_alarms": agree["false_alarms"], "misses": agree["misses"]})
        if progress:
            progress(f"feedback fold {i + 1}/{folds}: reference quality {cal.reference_quality:.0f}, false alarms "
                     f"{agree['false_alarms']:.1%}, misses {agree['misses']:.1%}")
    pooled = feedback_agreement(oof, mos100, list(subsets))
    return pooled, oof, per_fold


@dataclass
class FitFeedbackResult:
    calibration: Calibration
    cv: dict[str, Any]
    per_fold: list[dict[str, Any]]
    n: int
    quality_srcc: float
    quality_srcc_sets: dict[str, float]


def fit_feedback(rows: Sequence[Mapping[str, Any]], mos01: np.ndarray, subsets: Sequence[str | None], *,
                 trained_on: Mapping[str, Any], quality: np.ndarray, quality_source: Mapping[str, Any],
                 folds: int = 5, seed: int = 0, progress: Callable[[str], None] | None = None) -> FitFeedbackResult:
    """Cross-validate the calibration on these rows and refit it on all of them.

    Parameters
    ----------
    rows : sequence of mapping
        Report rows (``measures``, ``scores``, ``scene``, size, EXIF) of the labelled photos.
    mos01 : ndarray
        Their MOS mapped to [0, 1].
    subsets : sequence
        Their dataset subsets (for per-subset figures).
    trained_on : mapping
        Dataset provenance for the file (name, format, n, citation, names fingerprint).
    quality : ndarray
        Each photo's quality as it would be unseen (0-100; `oof_quality`).
    quality_source : mapping
        How ``quality`` was made (stored in the file).
    """
    _sklearn()
    from .metrics import srcc

    if len(rows) < 5 * folds:
        raise ValueError(f"{len(rows)} labelled photos are too few for {folds}-fold cross-validation")
    mos100 = 100.0 * np.asarray(mos01, dtype=float)
    contexts = _with_quality([Context.from_row(r) for r in rows], np.asarray(quality, dtype=float))
    pooled, _, per_fold = cross_validate(contexts, mos100, subsets, folds=folds, seed=seed, progress=progress)
    q_srcc = float(srcc(quality, mos100))
    names = np.array(list(subsets), dtype=object)
    srcc_sets = {"overall": q_srcc, **{str(n): float(srcc(np.asarray(quality)[names == n], mos100[names == n]))
                                       for n in sorted({x for x in subsets if x is not None})}}
    meta = {"trained_on": dict(trained_on), "seed": seed, "folds": folds, "picinspector_version": __version__,
            "quality": {**dict(quality_source), "srcc": {k: round(v, 4) for k, v in srcc_sets.items()}},
            "flagged": list(FLAGGED), "share": AGREEMENT_SHARE,
            "terms": {name: term.doc for name, term in TERMS.items()},
            "cv": {"false_alarms": pooled["false_alarms"], "severe_false_alarms": pooled["severe_false_alarms"],
                   "misses": pooled["misses"], "flagged": pooled["flagged"], "per_fold": per_fold,
                   "kinds": pooled["kinds"], "subsets": pooled.get("subsets", {})}}
    cal = fit_calibration(contexts, mos100, meta=meta)
    if progress:
        progress(f"refit on all {len(rows)} photos: reference quality {cal.reference_quality:.0f}")
    return FitFeedbackResult(cal, pooled, per_fold, len(rows), q_srcc, srcc_sets)


__all__ = ["FORMAT", "FORMAT_VERSION", "FitFeedbackResult", "TermData", "cross_validate", "fit_calibration",
           "choose_reference", "fit_feedback", "fit_tables", "guarded_quality", "names_fingerprint", "oof_quality",
           "read_rows", "report_quality", "term_data"]
