"""Fitting the classic engine's quality model to human opinion scores (``picinspector fit-quality``).

Training-only: needs scikit-learn (``pip install "picinspector[fit]"``). The result is a
`~picinspector.scoring._model.QualityModel` file that inference reads with NumPy alone.

Steps: analyse every labelled photo once (a resumable JSONL cache of reports, written by the batch
runner), turn each report's measures into `~picinspector.scoring._features.features`, compare the
candidate learners by k-fold cross-validation with a fixed seed, refit the best on all photos, and
export it, checking that the exported model reproduces scikit-learn's predictions.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
from scipy.stats import pearsonr, spearmanr

from .._version import __version__
from ..scoring._features import feature_matrix, features
from ..scoring._model import FORMAT, FORMAT_VERSION, Z_CLIP, QualityModel


def _sklearn():
    try:
        import sklearn  # noqa: F401
    except ImportError as exc:
        raise ImportError('fitting the quality model needs scikit-learn: pip install "picinspector[fit]"') from exc


@dataclass
class Preprocess:
    """Median fill and standardisation, learned on the training rows only."""

    fill: np.ndarray
    mean: np.ndarray
    scale: np.ndarray

    @classmethod
    def fit(cls, x: np.ndarray) -> "Preprocess":
        fill = np.nanmedian(np.where(np.isfinite(x), x, np.nan), axis=0)
        fill = np.where(np.isfinite(fill), fill, 0.0)
        filled = np.where(np.isfinite(x), x, fill)
        scale = filled.std(axis=0)
        # A feature constant on the training photos taught nothing: an infinite scale makes it 0 at
        # inference too, however far a new photo's value lies (BIQ2021 is all JPEG quality 75).
        return cls(fill, filled.mean(axis=0), np.where(scale > 1e-12, scale, np.inf))

    def __call__(self, x: np.ndarray) -> np.ndarray:
        z = (np.where(np.isfinite(x), x, self.fill) - self.mean) / self.scale
        return np.clip(z, -Z_CLIP, Z_CLIP)  # as `QualityModel.prepare` does at inference


# --- candidate learners: each builds a fitted estimator and exports it as model members ----------

def _ridge(seed: int, names: list[str]):
    from sklearn.linear_model import RidgeCV

    return RidgeCV(alphas=np.logspace(-2, 3, 11))


def _svr(seed: int, names: list[str]):
    from sklearn.svm import SVR

    # epsilon 0.02 on the 0-1 target is a tenth of the typical MOS spread; C = 1 with z-scored features.
    return SVR(kernel="rbf", C=1.0, epsilon=0.02, gamma="scale")


def _trees(seed: int, names: list[str], monotone: bool = False):
    from sklearn.ensemble import HistGradientBoostingRegressor

    cst = [1 if n.startswith("term_") else 0 for n in names] if monotone else None
    return HistGradientBoostingRegressor(
        loss="squared_error", learning_rate=0.04, max_iter=500, max_leaf_nodes=24, min_samples_leaf=25,
        l2_regularization=1.0, early_stopping=False, random_state=seed, monotonic_cst=cst)


def _export_linear(est, prefix: str, compact: bool = True) -> dict[str, np.ndarray]:
    return {f"{prefix}coef": np.asarray(est.coef_, np.float64),
            f"{prefix}intercept": np.array([float(est.intercept_)])}


def _export_svr(est, prefix: str, compact: bool = True) -> dict[str, np.ndarray]:
    # Half-precision support vectors (z-scored features) keep the shipped file near 1 MB; on BIQ2021
    # they move predictions by < 0.05 score points. `export` checks the effect against
    # EXPORT_TOLERANCE and stores float32 instead when half precision is not enough.
    return {f"{prefix}support_vectors": np.asarray(est.support_vectors_, np.float16 if compact else np.float32),
            f"{prefix}dual_coef": np.asarray(est.dual_coef_[0], np.float64),
            f"{prefix}intercept": np.array([float(est.intercept_[0])]),
            f"{prefix}gamma": np.array([float(est._gamma)])}


def _export_trees(est, prefix: str, compact: bool = True) -> dict[str, np.ndarray]:
    """Concatenate the nodes of a fitted HistGradientBoostingRegressor's trees.

    scikit-learn keeps the trees in ``_predictors`` (each a ``TreePredictor`` with a structured
    ``nodes`` array). That is not public API, so `export` checks the exported model against
    ``est.predict`` and refuses a mismatch.
    """
    feats, thr, left, right, value, roots, depth = [], [], [], [], [], [], 0
    offset = 0
    for (predictor,) in est._predictors:
        nodes = predictor.nodes
        leaf = nodes["is_leaf"].astype(bool)
        roots.append(offset)
        feats.append(nodes["feature_idx"].astype(np.int32))
        thr.append(nodes["num_threshold"].astype(np.float64))
        left.append(np.where(leaf, -1, nodes["left"].astype(np.int64) + offset))
        right.append(np.where(leaf, -1, nodes["right"].astype(np.int64) + offset))
        value.append(np.where(leaf, nodes["value"], 0.0).astype(np.float64))
        depth = max(depth, int(nodes["depth"].max()))
        offset += len(nodes)
    return {f"{prefix}feature": np.concatenate(feats), f"{prefix}threshold": np.concatenate(thr),
            f"{prefix}left": np.concatenate(left).astype(np.int32),
            f"{prefix}right": np.concatenate(right).astype(np.int32),
            f"{prefix}value": np.concatenate(value), f"{prefix}roots": np.array(roots, np.int32),
            f"{prefix}max_depth": np.array([depth], np.int32),
            f"{prefix}baseline": np.array([float(np.ravel(est._baseline_prediction)[0])])}


@dataclass(frozen=True)
class Learner:
    build: Callable[[int, list[str]], Any]
    kind: str  # a MEMBER_KINDS name
    export: Callable[..., dict[str, np.ndarray]]  # (estimator, prefix, compact) -> arrays


LEARNERS: dict[str, Learner] = {
    "ridge": Learner(_ridge, "linear", _export_linear),
    "svr": Learner(_svr, "rbf_svr", _export_svr),
    "trees": Learner(_trees, "trees", _export_trees),
    "trees_monotone": Learner(lambda seed, names: _trees(seed, names, monotone=True), "trees", _export_trees),
}

#: Candidate name -> {learner name: weight}. A candidate with several learners is their weighted mean.
CANDIDATES: dict[str, dict[str, float]] = {
    "ridge": {"ridge": 1.0},
    "svr": {"svr": 1.0},
    "trees": {"trees": 1.0},
    "trees_monotone": {"trees_monotone": 1.0},
    "svr+trees": {"svr": 0.5, "trees": 0.5},
    "svr+trees_monotone": {"svr": 0.5, "trees_monotone": 0.5},
}


def _fit_candidate(candidate: str, x: np.ndarray, y: np.ndarray, names: list[str], seed: int):
    pre = Preprocess.fit(x)
    z = pre(x)
    fitted = {name: LEARNERS[name].build(seed, names).fit(z, y) for name in CANDIDATES[candidate]}
    return pre, fitted


def _predict_candidate(candidate: str, pre: Preprocess, fitted: dict, x: np.ndarray) -> np.ndarray:
    z = pre(x)
    return sum(w * fitted[name].predict(z) for name, w in CANDIDATES[candidate].items())


def _metrics(pred: np.ndarray, y: np.ndarray) -> dict[str, float]:
    from .metrics import quality_metrics

    return quality_metrics(pred, y)


def cross_validate(x: np.ndarray, y: np.ndarray, names: list[str], *, candidates: Sequence[str],
                   folds: int = 5, seed: int = 0, groups: np.ndarray | None = None,
                   progress: Callable[[str], None] | None = None) -> dict[str, dict[str, Any]]:
    """k-fold cross-validation (shuffled with ``seed``) of each candidate.

    Returns ``{candidate: {"srcc", "plcc", "plcc_raw", "krcc", "rmse", "srcc_folds": [...],
    "plcc_folds": [...]}}``, the pooled metrics computed on the out-of-fold predictions.
    """
    _sklearn()
    from sklearn.model_selection import KFold

    splits = list(KFold(n_splits=folds, shuffle=True, random_state=seed).split(x))
    out: dict[str, dict[str, Any]] = {}
    for cand in candidates:
        oof = np.empty(len(y))
        per_fold_s, per_fold_p = [], []
        for train, test in splits:
            pre, fitted = _fit_candidate(cand, x[train], y[train], names, seed)
            oof[test] = _predict_candidate(cand, pre, fitted, x[test])
            per_fold_s.append(float(spearmanr(oof[test], y[test]).statistic))
            per_fold_p.append(float(pearsonr(oof[test], y[test]).statistic))
        out[cand] = {**_metrics(oof, y), "srcc_folds": per_fold_s, "plcc_folds": per_fold_p}
        if progress:
            progress(f"{cand}: SRCC {out[cand]['srcc']:.3f}, PLCC {out[cand]['plcc']:.3f}")
    return out


def export(candidate: str, pre: Preprocess, fitted: dict, names: list[str], x: np.ndarray,
           meta: dict[str, Any]) -> QualityModel:
    """The fitted candidate as a `QualityModel`; refuses a model whose predictions differ from
    scikit-learn's by more than `EXPORT_TOLERANCE` on the training rows."""
    expected = _predict_candidate(candidate, pre, fitted, x)
    for compact in (True, False):  # half precision where it is enough, else float32
        arrays: dict[str, np.ndarray] = {"x_fill": pre.fill, "x_mean": pre.mean, "x_scale": pre.scale}
        members = []
        for i, (name, weight) in enumerate(CANDIDATES[candidate].items()):
            prefix = f"m{i}_"
            arrays.update(LEARNERS[name].export(fitted[name], prefix, compact))
            members.append({"kind": LEARNERS[name].kind, "weight": weight, "prefix": prefix, "learner": name})
        model = QualityModel({**meta, "format": FORMAT, "format_version": FORMAT_VERSION, "features": names,
                              "members": members, "candidate": candidate}, arrays)
        worst = float(np.max(np.abs(model.predict_raw(x) - expected)))
        if worst <= EXPORT_TOLERANCE:
            return model
    raise RuntimeError(f"exported model differs from scikit-learn by {worst:.3g}; not saved")


#: Largest difference (0-1 target scale: 1e-3 = 0.1 score points) allowed between the exported
#: model and scikit-learn's own prediction on the training rows.
EXPORT_TOLERANCE = 1e-3


@dataclass
class FitResult:
    model: QualityModel
    cv: dict[str, dict[str, Any]]
    chosen: str
    n: int
    failed: list[str] = field(default_factory=list)


def fit_quality(measures: list[dict[str, Any]], mos01: np.ndarray, *, trained_on: dict[str, Any],
                candidates: Sequence[str] | None = None, folds: int = 5, seed: int = 0,
                progress: Callable[[str], None] | None = None) -> FitResult:
    """Cross-validate the candidates on (measures, MOS in [0, 1]), refit the best on everything.

    The best candidate is the one with the highest cross-validated SRCC (ties: PLCC).
    """
    _sklearn()
    cands = list(candidates or CANDIDATES)
    unknown = [c for c in cands if c not in CANDIDATES]
    if unknown:
        raise ValueError(f"unknown candidates {unknown}; choose from {sorted(CANDIDATES)}")
    if len(measures) < 2 * folds:
        raise ValueError(f"{len(measures)} labelled photos are too few for {folds}-fold cross-validation")
    names = sorted(features(measures[0]))
    x = feature_matrix(measures, names)
    y = np.asarray(mos01, dtype=np.float64)
    cv = cross_validate(x, y, names, candidates=cands, folds=folds, seed=seed, progress=progress)
    chosen = max(cands, key=lambda c: (round(cv[c]["srcc"], 4), cv[c]["plcc"]))
    pre, fitted = _fit_candidate(chosen, x, y, names, seed)
    meta = {"trained_on": trained_on, "cv": {"folds": folds, "seed": seed, "results": cv, "chosen": chosen},
            "target": {"scale": "MOS mapped linearly to [0, 1]; score = 100 * prediction, clipped"},
            "picinspector_version": __version__, "seed": seed}
    return FitResult(export(chosen, pre, fitted, names, x, meta), cv, chosen, len(y))


def measure_dataset(paths: Sequence[str], cache: str | Path | None = None, *, jobs: int = 1,
                    progress: bool = True) -> tuple[dict[str, dict[str, Any]], dict[str, dict[str, str]]]:
    """Measures of every photo, through a resumable JSONL cache of analysis reports.

    The cache is the batch runner's own output file, so an interrupted measurement resumes and a
    refit with other learners reads it back in seconds. Returns ``({abspath: measures},
    {abspath: error})``. Refuses a cache written by another PicInspector version, whose measures
    may differ.
    """
    from ..batch import run_batch
    from ..measures import measure_units

    if cache is None:
        handle = tempfile.NamedTemporaryFile(prefix="picinspector-fit-", suffix=".jsonl", delete=False)
        handle.close()
        os.unlink(handle.name)
        cache = handle.name
    cache = Path(cache)
    summary = run_batch(list(paths), str(cache), jobs=jobs, inspector_options={"quality_model": "handmade"},
                        progress=progress)
    if summary.interrupted:  # never fit on a part of the data without saying so
        raise KeyboardInterrupt(f"measuring stopped; rerun with --cache {cache} to resume")
    wanted = set(measure_units())
    measures: dict[str, dict[str, Any]] = {}
    errors: dict[str, dict[str, str]] = {}
    with open(cache, encoding="utf-8") as f:
        for number, line in enumerate(f, 1):
            row = json.loads(line)
            key = os.path.abspath(row["path"])
            if "error" in row:
                errors[key] = row["error"]
                continue
            if row.get("version") != __version__ or set(row["measures"]) != wanted:
                raise ValueError(f"{cache} line {number} was written by PicInspector {row.get('version')} "
                                 f"with other measures; delete the cache (or pick another) and rerun")
            measures[key] = row["measures"]
    return measures, errors
