"""The fitted quality model: a small .npz file read with NumPy only (no pickle, no scikit-learn).

File layout (``np.savez_compressed``; every entry a plain array, loaded with ``allow_pickle=False``):

- ``meta``: a 0-d unicode array holding JSON: ``{"format": "picinspector-quality-model",
  "format_version": 1, "features": [...], "members": [{"kind", "weight", "prefix"}, ...],
  "target": {...}, "trained_on": {...}, "cv": {...}, "picinspector_version", "seed"}``;
- ``x_fill`` (value for a missing feature: the training median), ``x_mean``, ``x_scale``
  (standardisation), one per feature;
- per member, arrays named ``<prefix><name>`` as its kind needs (see `MEMBER_KINDS`).

The prediction is the weighted sum of the members' outputs, on the target scale 0-1 (the
dataset's MOS mapped linearly to [0, 1]); the score is 100 times that, clipped to [0, 100].
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any, Callable

import cv2
import numpy as np

FORMAT = "picinspector-quality-model"
FORMAT_VERSION = 1

#: The model shipped inside the package (fitted by ``picinspector fit-quality``; see README).
DEFAULT_MODEL = Path(__file__).with_name("quality_model.npz")


def _linear(a: dict[str, np.ndarray], x: np.ndarray) -> np.ndarray:
    """``x @ coef + intercept`` on standardised features."""
    return x @ a["coef"] + a["intercept"][0]


def _rbf_svr(a: dict[str, np.ndarray], x: np.ndarray) -> np.ndarray:
    """Support-vector regression with an RBF kernel: sum_i c_i exp(-gamma |s_i - x|^2) + b."""
    sv = a["support_vectors"]
    sv_sq = a["sv_sq"] if "sv_sq" in a else (sv * sv).sum(1)
    # OpenCV's product, not NumPy's: a BLAS thread pool woken for one photo's 4,000 x 138 product
    # spends several times the product's own CPU (and competes with the measure threads).
    cross = cv2.gemm(np.ascontiguousarray(x, np.float64), sv, 1.0, None, 0.0, flags=cv2.GEMM_2_T)
    d2 = (x * x).sum(1)[:, None] + sv_sq[None, :] - 2.0 * cross
    return np.exp(-a["gamma"][0] * np.maximum(d2, 0.0)) @ a["dual_coef"] + a["intercept"][0]


def _trees(a: dict[str, np.ndarray], x: np.ndarray) -> np.ndarray:
    """Sum of regression trees (gradient boosting), all trees walked together one level a step.

    Nodes of every tree are concatenated: ``feature``, ``threshold`` (go left when x <= it),
    ``left``/``right`` (node indices; -1 at a leaf), ``value`` (leaf output, learning rate
    included); ``roots`` holds each tree's first node and ``baseline`` the constant start.
    """
    feature, threshold, left, right, value = a["feature"], a["threshold"], a["left"], a["right"], a["value"]
    out = np.empty(len(x))
    for i, row in enumerate(x):
        node = a["roots"].copy()
        for _ in range(int(a["max_depth"][0]) + 1):
            inner = left[node] >= 0
            if not inner.any():
                break
            go_left = row[feature[node]] <= threshold[node]
            node = np.where(inner, np.where(go_left, left[node], right[node]), node)
        out[i] = a["baseline"][0] + value[node].sum()
    return out


#: Member kind -> function(arrays without prefix, standardised features (n, d)) -> (n,) predictions.
MEMBER_KINDS: dict[str, Callable[[dict[str, np.ndarray], np.ndarray], np.ndarray]] = {
    "linear": _linear,
    "rbf_svr": _rbf_svr,
    "trees": _trees,
}


#: Standardised features are clipped to this many standard deviations (see `QualityModel.prepare`).
Z_CLIP = 6.0


class ModelFileError(ValueError):
    """A quality-model file that cannot be used, with the reason."""


@dataclass
class QualityModel:
    meta: dict[str, Any]
    arrays: dict[str, np.ndarray]

    @property
    def features(self) -> list[str]:
        return list(self.meta["features"])

    @classmethod
    def load(cls, path: str | Path = DEFAULT_MODEL) -> "QualityModel":
        path = Path(path)
        if not path.is_file():
            raise ModelFileError(
                f"{path}: quality model not found; refit it with "
                "`picinspector fit-quality --dataset DIR -o PATH` (see README)")
        try:
            with np.load(path, allow_pickle=False) as data:
                arrays = {k: data[k] for k in data.files}
            meta = json.loads(str(arrays.pop("meta")))
        except (OSError, ValueError, KeyError) as exc:
            raise ModelFileError(f"{path}: not a readable quality model ({exc})") from exc
        if meta.get("format") != FORMAT or meta.get("format_version") != FORMAT_VERSION:
            raise ModelFileError(f"{path}: not a {FORMAT} v{FORMAT_VERSION} file")
        for member in meta["members"]:
            if member["kind"] not in MEMBER_KINDS:
                raise ModelFileError(f"{path}: unknown member kind {member['kind']!r}")
        return cls(meta, arrays)

    def save(self, path: str | Path) -> None:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        np.savez_compressed(path, meta=np.array(json.dumps(self.meta, sort_keys=True)), **self.arrays)

    def prepare(self, x: np.ndarray) -> np.ndarray:
        """Fill missing values with the training medians, standardise, and clip to
        +-``Z_CLIP`` standard deviations: a value far outside the training photos (a quality-5
        JPEG, a PNG's missing tables) tells the learners nothing they were taught, and must not
        swamp an RBF kernel's distance (the guards judge such distortions)."""
        x = np.where(np.isfinite(x), x, self.arrays["x_fill"])
        return np.clip((x - self.arrays["x_mean"]) / self.arrays["x_scale"], -Z_CLIP, Z_CLIP)

    def predict_raw(self, x: np.ndarray) -> np.ndarray:
        """Predictions on the 0-1 target scale for a raw feature matrix (n, d) in `features` order."""
        z = self.prepare(np.atleast_2d(np.asarray(x, dtype=np.float64)))
        total = np.zeros(len(z))
        for predict, weight, arrays in self._members:
            total += weight * predict(arrays, z)
        return total

    @cached_property
    def _members(self) -> list[tuple[Callable, float, dict[str, np.ndarray]]]:
        """Each member's function, weight and arrays (prefix removed, half precision widened to
        float64), prepared once: `predict_raw` runs for every photo."""
        out = []
        for member in self.meta["members"]:
            prefix = member["prefix"]
            arrays = {k[len(prefix):]: v.astype(np.float64) if v.dtype == np.float16 else v
                      for k, v in self.arrays.items() if k.startswith(prefix)}
            if member["kind"] == "rbf_svr":  # contiguous float64 support vectors and their squared norms, once
                arrays["support_vectors"] = np.ascontiguousarray(arrays["support_vectors"], np.float64)
                arrays["sv_sq"] = (arrays["support_vectors"] ** 2).sum(1)
            out.append((MEMBER_KINDS[member["kind"]], float(member["weight"]), arrays))
        return out

    def score(self, features: dict[str, float]) -> float:
        """Quality 0-100 of one photo from its `~._features.features` dict."""
        try:
            x = np.array([features[n] for n in self.meta["features"]], dtype=np.float64)
        except KeyError as exc:
            raise ModelFileError(
                f"the quality model needs feature {exc.args[0]!r}, which this version does not compute; "
                "refit it with `picinspector fit-quality`") from None
        pred = float(self.predict_raw(x)[0])
        return 100.0 * min(1.0, max(0.0, pred)) if math.isfinite(pred) else 0.0
