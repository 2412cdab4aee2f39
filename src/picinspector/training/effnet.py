"""Fitting the effnet engine's heads (``picinspector fit-quality --engine effnet``, ``picinspector fit-scene``).

Training-only: needs scikit-learn. Inference reads the results with NumPy alone
(`picinspector.models.effnet._heads`).

Both heads read the backbone's outputs through a resumable feature cache
(`~.effnet_features.backbone_features`, computed exactly as inference computes them) and the classic
measures through the classic engine's cache (`~.fit_quality.measure_dataset`). Candidates are compared
by k-fold cross-validation with a fixed seed; the best is refit on everything and exported.

- **Quality** candidates (`QUALITY_CANDIDATES`) differ in which feature maps are pooled, at which
  shorter sides, whether the classic features join them, the projection, and whether brighter and
  darker copies of some training photos join each training fold (`~.exposure_copies`; the CV is on
  the real photos alone). Chosen by CV SRCC (ties: PLCC).
- **Scene**: multinomial logistic regression over ImageNet class groups, the pooled embedding (and
  the stem's statistics) and the classic scene cues. Chosen by CV top-1 among the candidates that keep
  every class at recall >= `MIN_RECALL` (if none does, among all). Trained on photos whose annotators agree (``scene`` column of a SCENES.md-style
  CSV); any number of label files can be given, and the cross-validation is reported on the photos of
  the first file only, the others always training.
"""

from __future__ import annotations

import csv
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from .._version import __version__
from ..models.effnet._heads import (SCENE_FORMAT, SCENE_FORMAT_VERSION, InputSpec, SceneHead, assemble_batch,
                                    needed_sides)
from ..scene import SCENES
from .exposure_copies import PRICED_BY, CopyList, ExposureCopies, copy_targets


def _sklearn():
    try:
        import sklearn  # noqa: F401
    except ImportError as exc:
        raise ImportError('fitting the effnet heads needs scikit-learn: pip install "picinspector[fit]"') from exc


BACKBONE = "efficientnet-lite0"
ALL_TAPS = ("stem", "stage1", "stage2", "stage3", "stage4", "stage5", "stage6", "stage7", "head")


def _blocks(taps: Sequence[str], kinds: Sequence[str] = ("mean", "std")) -> tuple[str, ...]:
    return tuple(f"{t}.{k}" for t in taps for k in kinds)


# --------------------------------------------------------------------------------------------------
# Quality


@dataclass(frozen=True)
class QualityCandidate:
    """What a quality head reads and how it is fitted: kernel ridge regression with an RBF kernel on
    standardised inputs, optionally projected on their ``pca`` leading principal components (so that
    the shipped head holds one short vector per training photo), or restricted to ``landmarks``
    training photos (Nystrom)."""

    sides: tuple[int, ...]
    blocks: tuple[str, ...]
    classic: bool  # add the classic engine's quality features
    pca: int | None = 256  # principal components kept (None: all inputs)
    landmarks: int | None = None  # Nystrom landmarks (None: every training photo)
    gamma_mult: float = 1.0  # gamma = gamma_mult / inputs (before projection)
    lam: float = 0.3  # ridge strength
    guards: bool = True  # multiply by the classic guards (scoring._quality.GUARDS) at inference
    exposure: ExposureCopies | None = None  # brighter / darker copies join each training fold

    def spec(self, classic_names: Sequence[str], backbone: str = BACKBONE) -> InputSpec:
        return InputSpec(backbone, self.sides, self.blocks, tuple(classic_names) if self.classic else (), "features")


#: Candidate name -> candidate (docs/effnet.md reports the cross-validation of each).
QUALITY_CANDIDATES: dict[str, QualityCandidate] = {
    "head@384": QualityCandidate((384,), _blocks(["head"]), False),
    "all@224": QualityCandidate((224,), _blocks(ALL_TAPS), False),
    "all@384": QualityCandidate((384,), _blocks(ALL_TAPS), False),
    "all@384+classic": QualityCandidate((384,), _blocks(ALL_TAPS), True),
    "all@384+classic/pca512": QualityCandidate((384,), _blocks(ALL_TAPS), True, pca=512),
    "all@384+classic/nystrom1000": QualityCandidate((384,), _blocks(ALL_TAPS), True, pca=None, landmarks=1000),
    "all@384+classic/pca512+exposure": QualityCandidate((384,), _blocks(ALL_TAPS), True, pca=512,
                                                        exposure=ExposureCopies()),
}


class KernelRidge:
    """Kernel ridge regression with an RBF kernel: ``(K + lam I) a = y - b`` over every training row,
    or with ``m`` landmark rows drawn with ``seed``, minimise |K_nm a - y|^2 + lam a' K_mm a (Nystrom:
    Williams & Seeger 2001; Rudi et al. 2015). The prediction ``K(x, S) a + b`` is exactly a
    `picinspector.scoring._model` ``rbf_svr`` member.

    References
    ----------
    B. Schoelkopf and A. Smola, "Learning with Kernels", MIT Press 2002 (kernel ridge regression).
    C. Williams and M. Seeger, "Using the Nystrom method to speed up kernel machines", NIPS 2001.
    A. Rudi, R. Camoriano and L. Rosasco, "Less is more: Nystrom computational regularization", NIPS 2015.
    """

    def __init__(self, m: int | None, gamma: float, lam: float, seed: int) -> None:
        self.m, self.gamma, self.lam, self.seed = m, gamma, lam, seed

    def _k(self, x: np.ndarray) -> np.ndarray:
        sv = self.support_vectors_
        d2 = (x * x).sum(1)[:, None] + (sv * sv).sum(1)[None, :] - 2.0 * x @ sv.T
        return np.exp(-self.gamma * np.maximum(d2, 0.0))

    def fit(self, z: np.ndarray, y: np.ndarray) -> "KernelRidge":
        y = np.asarray(y, np.float64)
        self.intercept_ = float(np.mean(y))
        if self.m is None or self.m >= len(z):
            self.support_vectors_ = np.asarray(z, np.float64)
            k = self._k(self.support_vectors_)
            self.dual_coef_ = np.linalg.solve(k + self.lam * np.eye(len(z)), y - self.intercept_)
            return self
        rng = np.random.default_rng(self.seed)
        self.support_vectors_ = z[np.sort(rng.choice(len(z), self.m, replace=False))].astype(np.float64)
        k_nm, k_mm = self._k(z), self._k(self.support_vectors_)
        a = k_nm.T @ k_nm + self.lam * k_mm + 1e-8 * np.trace(k_mm) / self.m * np.eye(self.m)
        self.dual_coef_ = np.linalg.solve(a, k_nm.T @ (y - self.intercept_))
        return self

    def predict(self, z: np.ndarray) -> np.ndarray:
        return self._k(z) @ self.dual_coef_ + self.intercept_


@dataclass
class _Prep:
    """Standardisation (`~.fit_quality.Preprocess`) then an optional projection, as
    `QualityModel.prepare` applies them."""

    pre: Any
    proj: np.ndarray | None

    def __call__(self, x: np.ndarray) -> np.ndarray:
        z = self.pre(x)
        return z if self.proj is None else z @ self.proj


def _fit_kernel_ridge(cand: QualityCandidate, x: np.ndarray, y: np.ndarray, seed: int, basis: int | None = None):
    """Standardise, project on the leading principal components of the training rows, fit.

    With ``basis``, only the first ``basis`` rows (the real photos, ahead of their exposure copies)
    fit the standardisation and the projection, so that the copies are learnt in the photos' own
    coordinates instead of spending components on their exposure shifts; every row fits the regression."""
    from .fit_quality import Preprocess

    real = x if basis is None else x[:basis]
    pre = Preprocess.fit(real)
    z = pre(x)
    proj = None
    if cand.pca is not None and cand.pca < z.shape[1]:
        from scipy.linalg import eigh

        d = z.shape[1]  # leading eigenvectors of the covariance of the standardised (zero-mean) rows
        zb = z if basis is None else z[:basis]
        w, v = eigh(zb.T @ zb / len(zb), subset_by_index=[d - cand.pca, d - 1])
        proj = v[:, ::-1].copy()
        proj *= np.where(proj[np.abs(proj).argmax(0), np.arange(cand.pca)] < 0, -1.0, 1.0)  # fixed signs
        z = z @ proj
    prep = _Prep(pre, proj)
    return prep, KernelRidge(cand.landmarks, cand.gamma_mult / x.shape[1], cand.lam, seed).fit(z, y)


def _export_quality(prep: _Prep, est: KernelRidge, names: list[str], x: np.ndarray, meta: dict[str, Any]):
    """A `QualityModel` with one ``rbf_svr`` member; support vectors and projection in half precision
    when that moves no prediction on the training rows by more than `~.fit_quality.EXPORT_TOLERANCE`,
    else float32."""
    from ..scoring._model import FORMAT, FORMAT_VERSION, QualityModel
    from .fit_quality import EXPORT_TOLERANCE

    pre = prep.pre
    expected = est.predict(prep(x))
    for dtype in (np.float16, np.float32):
        arrays = {"x_fill": pre.fill, "x_mean": pre.mean, "x_scale": pre.scale,
                  **({} if prep.proj is None else {"x_proj": prep.proj.astype(dtype)}),
                  "m0_support_vectors": est.support_vectors_.astype(dtype),
                  "m0_dual_coef": est.dual_coef_.astype(np.float64), "m0_intercept": np.array([est.intercept_]),
                  "m0_gamma": np.array([est.gamma])}
        model = QualityModel({**meta, "format": FORMAT, "format_version": FORMAT_VERSION, "features": names,
                              "members": [{"kind": "rbf_svr", "weight": 1.0, "prefix": "m0_", "learner": "kernel_ridge"}]},
                             arrays)
        worst = float(np.max(np.abs(model.predict_raw(x) - expected)))
        if worst <= EXPORT_TOLERANCE:
            return model
    raise RuntimeError(f"exported quality head differs from the fitted one by {worst:.3g}; not saved")


def _quality_matrix(cand: QualityCandidate, feats: dict[int, Any], classic_x: np.ndarray | None,
                    classic_names: Sequence[str]) -> tuple[InputSpec, np.ndarray]:
    spec = cand.spec(classic_names)
    return spec, assemble_batch(spec, {s: feats[s] for s in cand.sides}, classic_x if cand.classic else None)


@dataclass
class HeadFit:
    """A fitted head, the cross-validation of every candidate, and the chosen one."""

    head: Any
    cv: dict[str, dict[str, Any]]
    chosen: str
    n: int
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class QualityCopies:
    """Exposure copies for `fit_quality_head`: how they were made, which photo and shift each one is,
    their backbone outputs (as ``feats``) and their classic measures, rows in ``copies.paths`` order."""

    rule: ExposureCopies
    copies: CopyList
    feats: dict[int, Any]
    measures: list[dict[str, Any]]


class _Copies:
    """A candidate's copy rows and the measures that price them, ready for each fold."""

    def __init__(self, cand: QualityCandidate, extra: QualityCopies, classic_measures: list[dict[str, Any]],
                 classic_names: Sequence[str]) -> None:
        from ..scoring._features import feature_matrix

        if extra.rule != cand.exposure:
            raise ValueError(f"the copies were made with {extra.rule}, the candidate asks for {cand.exposure}")
        self.rule, self.copies = extra.rule, extra.copies
        _, self.x = _quality_matrix(cand, extra.feats, feature_matrix(extra.measures, classic_names), classic_names)
        self.real = {k: np.array([float(m[k]) for m in classic_measures]) for k in PRICED_BY.values()}
        self.copied = {k: np.array([float(m[k]) for m in extra.measures]) for k in PRICED_BY.values()}

    def training_rows(self, x: np.ndarray, y: np.ndarray, train: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The ``train`` photos' rows followed by their copies' rows; targets alike."""
        rows, targets = copy_targets(self.rule, y, self.real, train, self.copies, self.copied)
        return np.concatenate([x[train], self.x[rows]]), np.concatenate([y[train], targets])


def fit_quality_head(feats: dict[int, Any], classic_measures: list[dict[str, Any]], mos01: np.ndarray, *,
                     trained_on: dict[str, Any], candidates: Sequence[str] | None = None, folds: int = 5,
                     seed: int = 0, progress: Callable[[str], None] | None = None,
                     copies: QualityCopies | None = None) -> HeadFit:
    """Cross-validate the quality candidates (k-fold, shuffled with ``seed``) and refit the best
    (highest SRCC; ties: PLCC) on every photo.

    Parameters
    ----------
    feats : {side: mapping with "stats", "embedding", "logits"}
        Backbone outputs, rows aligned with ``classic_measures`` and ``mos01``.
    classic_measures : list of dict
        Each photo's classic measures (a report's ``measures``).
    mos01 : array
        MOS mapped to [0, 1].
    copies : QualityCopies, optional
        Exposure copies of some of the photos, needed by candidates with ``exposure``: each fold trains
        on its photos and their copies, and is scored on its held-out real photos alone.
    """
    _sklearn()
    from scipy.stats import pearsonr, spearmanr
    from sklearn.model_selection import KFold

    from ..models.effnet._heads import QualityHead
    from ..scoring._features import feature_matrix, features
    from .metrics import quality_metrics

    names = list(candidates or QUALITY_CANDIDATES)
    unknown = [c for c in names if c not in QUALITY_CANDIDATES]
    if unknown:
        raise ValueError(f"unknown candidates {unknown}; choose from {', '.join(QUALITY_CANDIDATES)}")
    missing_sides = sorted({s for c in names for s in QUALITY_CANDIDATES[c].sides} - set(feats))
    if missing_sides:
        raise ValueError(f"no backbone features at shorter sides {missing_sides}")
    y = np.asarray(mos01, dtype=np.float64)
    if len(y) < 2 * folds:
        raise ValueError(f"{len(y)} labelled photos are too few for {folds}-fold cross-validation")
    classic_names = sorted(features(classic_measures[0]))
    classic_x = feature_matrix(classic_measures, classic_names)
    needs_copies = [c for c in names if QUALITY_CANDIDATES[c].exposure is not None]
    if needs_copies and copies is None:
        raise ValueError(f"candidates {needs_copies} train on exposure copies; none were given")

    prepared: dict[str, _Copies | None] = {}

    def copies_for(name: str) -> _Copies | None:
        """The candidate's copy rows, assembled once (for its CV and, if chosen, its final fit)."""
        if name not in prepared:
            cand = QUALITY_CANDIDATES[name]
            prepared[name] = None if cand.exposure is None else _Copies(cand, copies, classic_measures,
                                                                        classic_names)
        return prepared[name]

    def fit_on(cand: QualityCandidate, extra: _Copies | None, x: np.ndarray, train: np.ndarray):
        """(preprocessing, estimator, training rows): the ``train`` photos, then their copies if any."""
        xt, yt = (x[train], y[train]) if extra is None else extra.training_rows(x, y, train)
        return (*_fit_kernel_ridge(cand, xt, yt, seed, basis=None if extra is None else len(train)), xt)

    splits = list(KFold(n_splits=folds, shuffle=True, random_state=seed).split(y))
    cv: dict[str, dict[str, Any]] = {}
    for name in names:
        cand = QUALITY_CANDIDATES[name]
        spec, x = _quality_matrix(cand, feats, classic_x, classic_names)
        extra = copies_for(name)
        oof = np.empty(len(y))
        srcc_folds, plcc_folds = [], []
        for train, test in splits:
            pre, est, _ = fit_on(cand, extra, x, train)
            oof[test] = est.predict(pre(x[test]))
            srcc_folds.append(float(spearmanr(oof[test], y[test]).statistic))
            plcc_folds.append(float(pearsonr(oof[test], y[test]).statistic))
        cv[name] = {**quality_metrics(oof, y), "srcc_folds": srcc_folds, "plcc_folds": plcc_folds,
                    "dims": int(x.shape[1]), "oof": oof.tolist()}
        if progress:
            progress(f"{name}: SRCC {cv[name]['srcc']:.3f}, PLCC {cv[name]['plcc']:.3f} ({x.shape[1]} inputs)")
    chosen = max(names, key=lambda c: (round(cv[c]["srcc"], 4), cv[c]["plcc"]))
    cand = QUALITY_CANDIDATES[chosen]
    spec, x = _quality_matrix(cand, feats, classic_x, classic_names)
    pre, est, x_fit = fit_on(cand, copies_for(chosen), x, np.arange(len(y)))
    oof = {name: cv[name].pop("oof") for name in names}
    meta = {"trained_on": trained_on, "inputs": spec.to_json(), "guards": cand.guards, "engine": "effnet",
            "cv": {"folds": folds, "seed": seed, "results": cv, "chosen": chosen},
            "learner": {"kind": "kernel ridge regression (rbf)", "pca": cand.pca, "landmarks": cand.landmarks,
                        "gamma_mult": cand.gamma_mult, "lam": cand.lam},
            **({} if cand.exposure is None else {"exposure_copies": {**cand.exposure.to_json(),
                                                                     "n": int(len(x_fit) - len(y))}}),
            "target": {"scale": "MOS mapped linearly to [0, 1]; score = 100 * prediction, clipped"},
            "picinspector_version": __version__, "seed": seed}
    model = _export_quality(pre, est, spec.names(), x_fit, meta)
    return HeadFit(QualityHead(model), cv, chosen, len(y), extra={"oof": oof})


# --------------------------------------------------------------------------------------------------
# Scene labels


@dataclass(frozen=True)
class SceneLabel:
    """One photo's scene labels from one or more label files."""

    agreed: str | None  # the primary label both annotators gave (None where they disagree)
    accepted: frozenset[str]  # every label a person gave (primaries and secondaries)
    source: int  # index of the first label file that named the photo


def read_scene_labels(files: Sequence[str | os.PathLike[str]], images: str | os.PathLike[str] | None = None
                      ) -> dict[str, SceneLabel]:
    """Scene labels from CSV files in the ``scenes.csv`` format (``image, scene, annotator_1,
    annotator_2, also``; see ../shared/data/biq2021_train/SCENES.md), keyed by absolute image path.

    Images are looked up in ``images``, else in the CSV's folder's ``images/`` sub-folder, else in the
    CSV's folder. A photo named in several files keeps an agreed label only where every file agrees on
    it; the accepted labels are the union.
    """
    from ..datasets._base import DatasetError, cell, column_index, read_csv_table, scene_name

    out: dict[str, SceneLabel] = {}
    for k, f in enumerate(files):
        path = Path(f)
        header, rows = read_csv_table(path)
        cols = column_index(header, path, {"image": ("image",), "scene": ("scene",)},
                            {"a1": ("annotator_1",), "a2": ("annotator_2",), "also": ("also",)})
        folder = Path(images) if images else (path.parent / "images" if (path.parent / "images").is_dir()
                                              else path.parent)

        def name(text: Any, line: int) -> str:
            s = scene_name(text)
            if s is None:
                raise DatasetError(f"{path} row {line}: {text!r} is not a scene; expected one of {', '.join(SCENES)}")
            return s

        for line, row in enumerate(rows, start=2):
            image = cell(row, cols["image"])
            if image is None:
                continue
            agreed = cell(row, cols["scene"])
            agreed = name(agreed, line) if agreed else None
            accepted = {name(v, line) for key in ("a1", "a2") if (v := cell(row, cols.get(key)))}
            also = cell(row, cols.get("also"))
            accepted |= {name(v, line) for v in str(also).split(";") if v.strip()} if also else set()
            if agreed:
                accepted.add(agreed)
            key = os.path.abspath(folder / str(image))
            if key in out:
                old = out[key]
                agreed = agreed if old.agreed == agreed else None
                accepted |= old.accepted
                k_first = old.source
            else:
                k_first = k
            out[key] = SceneLabel(agreed, frozenset(accepted), k_first)
    return out


# --------------------------------------------------------------------------------------------------
# Scene head

#: The classic measures the scene head may read: what ImageNet does not teach (faces, people, night).
SCENE_CUES = ("face_count", "face_area_fraction", "point_lights", "dark_fraction", "mean_lightness",
              "sky_fraction", "green_fraction")


@dataclass(frozen=True)
class SceneCandidate:
    sides: tuple[int, ...]
    blocks: tuple[str, ...]  # e.g. ("embedding",), or () for groups and cues only
    groups: tuple[str, ...]
    cues: tuple[str, ...]
    C: float = 1.0  # inverse L2 strength of the logistic regression (on standardised inputs)
    balanced: bool = True  # class weights inversely proportional to class frequency
    # Inputs scaled up after standardisation, so that the L2 penalty holds them back less: a few
    # cues and group probabilities next to 1280 embedding values would otherwise hardly count.
    group_weight: float = 1.0
    cue_weight: float = 1.0
    # Classes whose weight is multiplied further (after balancing), e.g. (("others", 3.0),): a rare,
    # heterogeneous class that the balanced weights alone leave under-predicted.
    boost: tuple[tuple[str, float], ...] = ()

    def spec(self, backbone: str = BACKBONE) -> InputSpec:
        return InputSpec(backbone, self.sides, self.blocks, self.cues, "measures", self.groups)


def _groups() -> tuple[str, ...]:
    from ..models.effnet._imagenet import GROUPS

    return tuple(GROUPS)


#: More classic measures for telling night from dusk, dim interiors and dark cityscapes.
NIGHT_CUES = ("exposure_ev", "lightness_median", "highlights_clipped_pct", "shadows_crushed_pct",
              "dynamic_range_ev", "saturation_mean")

#: The stem's pooled statistics: colour and brightness, which the L2-normalised embedding keeps little of.
_STEM = ("stem.mean", "stem.std")

SCENE_CANDIDATES: dict[str, SceneCandidate] = {
    "groups+cues@224": SceneCandidate((224,), (), _groups(), SCENE_CUES, C=1.0),
    "groups+cues@384": SceneCandidate((384,), (), _groups(), SCENE_CUES, C=1.0),
    "embedding@224": SceneCandidate((224,), ("embedding",), (), (), C=0.05),
    "embedding@384": SceneCandidate((384,), ("embedding",), (), (), C=0.05),
    "embedding+groups+cues@224": SceneCandidate((224,), ("embedding",), _groups(), SCENE_CUES, C=0.05),
    "embedding+groups+cues@384": SceneCandidate((384,), ("embedding",), _groups(), SCENE_CUES, C=0.05),
    "embedding+groups+cues@224,384": SceneCandidate((224, 384), ("embedding",), _groups(), SCENE_CUES, C=0.03),
    "embedding+stem+groups+cues@384": SceneCandidate((384,), ("embedding", *_STEM), _groups(), SCENE_CUES, C=0.05),
    "embedding+stem+groups+cues+night@384": SceneCandidate((384,), ("embedding", *_STEM), _groups(),
                                                           SCENE_CUES + NIGHT_CUES, C=0.05),
    "embedding+stem+groups+cues+night@384/night3": SceneCandidate(
        (384,), ("embedding", *_STEM), _groups(), SCENE_CUES + NIGHT_CUES, C=0.05, boost=(("night", 3.0),)),
    "embedding+stem+groups+cues+night@384/night3/cues3": SceneCandidate(
        (384,), ("embedding", *_STEM), _groups(), SCENE_CUES + NIGHT_CUES, C=0.05, boost=(("night", 3.0),),
        cue_weight=3.0),
}

#: Per-class recall the scene head should keep (issue 9): candidates that keep every class at or
#: above it are preferred, then the highest top-1.
MIN_RECALL = 0.6


def _fit_logistic(x: np.ndarray, y: np.ndarray, cand: SceneCandidate, seed: int):
    from sklearn.linear_model import LogisticRegression

    from .fit_quality import Preprocess

    pre = Preprocess.fit(x)
    kinds = [n.split(".")[1] if not n.startswith("classic.") else "cue" for n in cand.spec().names()]
    weight = np.array([cand.group_weight if k == "group" else cand.cue_weight if k == "cue" else 1.0 for k in kinds])
    pre.scale = pre.scale / weight  # exported with the head: the weight lives in x_scale
    classes, counts = np.unique(y, return_counts=True)
    base = len(y) / (len(classes) * counts) if cand.balanced else np.ones(len(classes))
    boost = dict(cand.boost)
    unknown = set(boost) - set(SCENES)
    if unknown:
        raise ValueError(f"unknown scene classes to boost: {sorted(unknown)}")
    weights = {int(c): float(w) * boost.get(SCENES[c], 1.0) for c, w in zip(classes, base)}
    clf = LogisticRegression(C=cand.C, max_iter=5000, class_weight=weights, random_state=seed)
    clf.fit(pre(x), y)
    return pre, clf


def _probs(pre, clf, x: np.ndarray) -> np.ndarray:
    """Probabilities over all of SCENES (a class absent from the training rows gets 0)."""
    p = clf.predict_proba(pre(x))
    out = np.zeros((len(x), len(SCENES)))
    out[:, clf.classes_] = p
    return out


def scene_report(probs: np.ndarray, labels: Sequence[SceneLabel]) -> dict[str, Any]:
    """Top-1 on agreed labels, the hit rate on any label a person gave, per-class recall, confusion."""
    top = probs.argmax(1)
    agreed = [i for i, lab in enumerate(labels) if lab.agreed]
    truth = np.array([SCENES.index(labels[i].agreed) for i in agreed], dtype=int)
    conf = np.zeros((len(SCENES), len(SCENES)), dtype=int)
    for t, p in zip(truth, top[agreed]):
        conf[t, p] += 1
    recall = {s: (float(conf[i, i] / conf[i].sum()) if conf[i].sum() else None) for i, s in enumerate(SCENES)}
    hit_any = float(np.mean([SCENES[top[i]] in lab.accepted for i, lab in enumerate(labels)]))
    return {"top1": float(np.mean(top[agreed] == truth)), "any_label_hit": hit_any, "n_agreed": len(agreed),
            "n": len(labels), "recall": recall, "confusion": conf.tolist(), "classes": list(SCENES)}


def fit_scene_head(feats: dict[int, Any], measures: list[dict[str, Any]], labels: Sequence[SceneLabel], *,
                   trained_on: dict[str, Any], candidates: Sequence[str] | None = None, folds: int = 5,
                   seed: int = 0, cv_all: bool = False, progress: Callable[[str], None] | None = None) -> HeadFit:
    """Cross-validate the scene candidates and refit the best on every agreed label.

    Rows of ``feats``, ``measures`` and ``labels`` are aligned. Folds (stratified on the agreed label,
    shuffled with ``seed``) are drawn over the photos of the first label file (``source == 0``); the
    other files' agreed photos join every training fold. With ``cv_all``, folds are drawn over the
    photos of every file instead. A photo without an agreed label never trains, and counts only in
    the any-label hit rate.
    """
    _sklearn()
    from sklearn.model_selection import StratifiedKFold

    names = list(candidates or SCENE_CANDIDATES)
    unknown = [c for c in names if c not in SCENE_CANDIDATES]
    if unknown:
        raise ValueError(f"unknown candidates {unknown}; choose from {', '.join(SCENE_CANDIDATES)}")
    y = np.array([SCENES.index(lab.agreed) if lab.agreed else -1 for lab in labels])
    first = np.array([cv_all or lab.source == 0 for lab in labels])
    cv_rows = np.flatnonzero(first)
    cv_agreed = cv_rows[y[cv_rows] >= 0]
    extra_train = np.flatnonzero(~first & (y >= 0))
    if len(cv_agreed) < 2 * folds:
        raise ValueError(f"{len(cv_agreed)} photos with agreed labels are too few for {folds}-fold cross-validation")
    # Stratify on the agreed label; a class with fewer photos than folds is merged into "others" for
    # drawing the folds only. Disagreed photos of the first file are spread over the folds too.
    counts = np.bincount(y[cv_agreed], minlength=len(SCENES))
    strata = np.where(counts[y[cv_agreed]] >= folds, y[cv_agreed], len(SCENES))
    skf = StratifiedKFold(folds, shuffle=True, random_state=seed)
    test_of = np.full(len(labels), -1)
    for k, (_, te) in enumerate(skf.split(cv_agreed, strata)):
        test_of[cv_agreed[te]] = k
    disagreed = cv_rows[y[cv_rows] < 0]
    test_of[disagreed] = np.random.default_rng(seed).permutation(len(disagreed)) % folds
    cv: dict[str, dict[str, Any]] = {}
    for name in names:
        cand = SCENE_CANDIDATES[name]
        spec = cand.spec()
        x = assemble_batch(spec, feats, _cue_matrix(measures, spec.classic))
        oof = np.zeros((len(labels), len(SCENES)))
        for k in range(folds):
            train = np.concatenate([cv_agreed[test_of[cv_agreed] != k], extra_train])
            pre, clf = _fit_logistic(x[train], y[train], cand, seed)
            test = cv_rows[test_of[cv_rows] == k]
            oof[test] = _probs(pre, clf, x[test])
        rep = scene_report(oof[cv_rows], [labels[i] for i in cv_rows])
        cv[name] = {**rep, "dims": int(x.shape[1])}
        if progress:
            worst = _lowest_recall(rep)
            progress(f"{name}: top-1 {rep['top1']:.3f}, any-label hit {rep['any_label_hit']:.3f}, "
                     f"lowest class recall {worst:.2f} ({x.shape[1]} inputs)")
    chosen = max(names, key=lambda c: (_lowest_recall(cv[c]) >= MIN_RECALL, round(cv[c]["top1"], 4),
                                       cv[c]["any_label_hit"]))
    cand = SCENE_CANDIDATES[chosen]
    spec = cand.spec()
    x = assemble_batch(spec, feats, _cue_matrix(measures, spec.classic))
    train = np.flatnonzero(y >= 0)
    pre, clf = _fit_logistic(x[train], y[train], cand, seed)
    coef = np.zeros((x.shape[1], len(SCENES)))
    intercept = np.full(len(SCENES), -30.0)  # a class never seen in training: (almost) never predicted
    if len(clf.classes_) == 2:  # binary case: sklearn keeps one coefficient row
        raise ValueError("the labels hold only two scene classes; a scene head needs more")
    coef[:, clf.classes_] = clf.coef_.T
    intercept[clf.classes_] = clf.intercept_
    meta = {"format": SCENE_FORMAT, "format_version": SCENE_FORMAT_VERSION, "classes": list(SCENES),
            "inputs": spec.to_json(), "features": spec.names(), "trained_on": trained_on,
            "cv": {"folds": folds, "seed": seed, "results": cv, "chosen": chosen,
                   "evaluated_on": "photos of every label file" if cv_all else "photos of the first label file"},
            "learner": {"kind": "multinomial logistic regression", "C": cand.C, "balanced": cand.balanced,
                        "boost": dict(cand.boost)},
            "n_train": int(len(train)), "picinspector_version": __version__, "seed": seed}
    head = SceneHead(meta, {"x_fill": pre.fill, "x_mean": pre.mean, "x_scale": pre.scale,
                            "coef": coef.astype(np.float32), "intercept": intercept})
    worst = float(np.max(np.abs(head.predict_x(x[train]) - _probs(pre, clf, x[train]))))
    if worst > 1e-4:
        raise RuntimeError(f"exported scene head differs from scikit-learn by {worst:.3g}; not saved")
    return HeadFit(head, cv, chosen, int(len(train)))


def _lowest_recall(rep: dict[str, Any]) -> float:
    return min((v for v in rep["recall"].values() if v is not None), default=float("nan"))


def _cue_matrix(measures: list[dict[str, Any]], names: Sequence[str]) -> np.ndarray | None:
    if not names:
        return None
    return np.array([[np.nan if m.get(n) is None else float(m[n]) for n in names] for m in measures])


def head_sides(*candidates: QualityCandidate | SceneCandidate) -> list[int]:
    return needed_sides(*(c.spec([]) if isinstance(c, QualityCandidate) else c.spec() for c in candidates))


def write_csv_report(path: str | Path, rows: list[dict[str, Any]]) -> None:
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
