"""The fitted quality model: a small .npz file read with NumPy only (no pickle, no scikit-learn).

File layout (``np.savez_compressed``; every entry a plain array, loaded with ``allow_pickle=False``):

- ``meta``: a 0-d unicode array holding JSON: ``{"format": "picinspector-quality-model",
  "format_version": 1, "features": [...], "members": [{"kind", "weight", "prefix"}, ...],
  "target": {...}, "trained_on": {...}, "cv": {...}, "picinspector_version", "seed"}``;
- ``x_fill`` (value for a missing feature: the training median), ``x_mean``, ``x_scale``
  (standardisation), one per feature;
- optionally ``x_proj`` (features x k): a linear projection applied after standardisation (e.g. the
  leading principal components), so that the members work on k inputs;
- per member, arrays named ``<prefix><name>`` as its kind needs (see `MEMBER_KINDS`).

The prediction is the weighted sum of the members' outputs, on the target scale 0-1 (the
dataset's MOS mapped linearly to [0, 1]); the score is 100 times that, clipped to [0, 100].
"""

from __future__ import annotations

import contextlib
import json
import math
import struct
import zipfile
import zlib
from dataclasses import dataclass
from functools import cached_property, lru_cache
from pathlib import Path
from typing import Any, Callable

import cv2
import numpy as np

FORMAT = "picinspector-quality-model"
FORMAT_VERSION = 1

#: The model shipped inside the package (fitted by ``picinspector fit-quality``; see README).
DEFAULT_MODEL = Path(__file__).with_name("quality_model.npz")


#: Up to this many rows, `QualityModel.predict_raw` of a model with at least `LARGE_MODEL` numbers in
#: its arrays (the effnet head: 4.8 M) runs its matrix products on one BLAS thread. Smaller models
#: (the classic one) stay below OpenBLAS's threading threshold anyway, and switching the thread count
#: costs about half a millisecond.
SMALL_BATCH = 8
LARGE_MODEL = 2_000_000


@lru_cache(maxsize=1)
def _blas_controller() -> Any:
    try:
        from threadpoolctl import ThreadpoolController
    except ImportError:  # a core dependency; without it the products just run as BLAS pleases
        return None
    return ThreadpoolController()


def one_blas_thread() -> contextlib.AbstractContextManager:
    """A context in which BLAS (NumPy's OpenBLAS) uses one thread.

    For the per-photo products of a model (one row against a few thousand support vectors): on two
    threads OpenBLAS saves under a millisecond there, and its idle threads then spin for about 0.1 s,
    taking a core from the next photo's decode (measured: a 12-MP decode used 2x its wall time in CPU
    right after an effnet analysis, 1x with one BLAS thread).
    """
    controller = _blas_controller()
    return contextlib.nullcontext() if controller is None else controller.limit(limits=1, user_api="blas")


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


#: Limits on a model file, checked before anything is read into memory: its size on disk, the size
#: of all its arrays as the zip directory and each .npy header declare them, and its member count.
#: (The shipped model is 1.3 MB on disk and 1.8 MB of arrays.)
MAX_FILE_BYTES = 64 << 20
MAX_ARRAY_BYTES = 64 << 20
MAX_MEMBERS = 256
MAX_TREE_DEPTH = 64

_READ_ERRORS = (OSError, EOFError, ValueError, KeyError, IndexError, TypeError, struct.error, zlib.error,
                zipfile.BadZipFile, zipfile.LargeZipFile, NotImplementedError, RuntimeError)


def save_npz(path: str | Path, meta: dict[str, Any], arrays: dict[str, np.ndarray]) -> None:
    """Write a model file: the arrays and the JSON ``meta`` as a text array, compressed."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(path, meta=np.array(json.dumps(meta, sort_keys=True)), **arrays)


def _read_npz(path: Path) -> dict[str, np.ndarray]:
    """The arrays of an ``.npz`` file, read with every size checked before it is allocated.

    Each member must be a ``.npy`` file (stored or deflated, not encrypted) of a plain numeric,
    boolean or text dtype (never an object: nothing is unpickled), whose header's shape matches the
    bytes the zip directory declares; the declared sizes together stay under `MAX_ARRAY_BYTES`.
    """
    size = path.stat().st_size
    if size > MAX_FILE_BYTES:
        raise ModelFileError(f"{path}: {size / 2**20:.1f} MB, larger than any quality model (at most "
                             f"{MAX_FILE_BYTES >> 20} MB)")
    try:
        archive = zipfile.ZipFile(path)
    except _READ_ERRORS as exc:
        raise ModelFileError(f"{path}: not a quality model (not a readable .npz archive: {exc})") from None
    arrays: dict[str, np.ndarray] = {}
    with archive:
        infos = archive.infolist()
        names = [i.filename for i in infos]
        if not infos or len(infos) > MAX_MEMBERS or len(set(names)) != len(names):
            raise ModelFileError(f"{path}: not a quality model ({len(infos)} members"
                                 f"{', some twice' if len(set(names)) != len(names) else ''})")
        declared = sum(i.file_size for i in infos)
        if declared > MAX_ARRAY_BYTES:
            raise ModelFileError(f"{path}: its arrays would take {declared / 2**20:,.0f} MB once unpacked, more "
                                 f"than any quality model (at most {MAX_ARRAY_BYTES >> 20} MB): refused unread")
        for info in infos:
            name = info.filename
            if not name.endswith(".npy") or "/" in name or "\\" in name:
                raise ModelFileError(f"{path}: unexpected member {name!r} (a model holds .npy arrays only)")
            if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED) or info.flag_bits & 0x1:
                raise ModelFileError(f"{path}: member {name!r} is encrypted or uses an unsupported compression")
            try:
                with archive.open(info) as fh:
                    version = np.lib.format.read_magic(fh)
                    if version == (1, 0):
                        shape, fortran, dtype = np.lib.format.read_array_header_1_0(fh, max_header_size=10000)
                    elif version == (2, 0):
                        shape, fortran, dtype = np.lib.format.read_array_header_2_0(fh, max_header_size=10000)
                    else:
                        raise ValueError(f"unsupported .npy version {version}")
                    if dtype.hasobject or dtype.kind not in "biufU" or dtype.fields is not None:
                        raise ValueError(f"dtype {dtype} is not a plain number or text")
                    count = math.prod(shape)
                    nbytes = count * dtype.itemsize
                    header = fh.tell()
                    if nbytes != info.file_size - header:
                        raise ValueError(f"its header declares {nbytes:,} bytes of data, the archive {info.file_size - header:,}")
                    data = fh.read(nbytes)
                    if len(data) != nbytes:
                        raise ValueError("truncated")
            except _READ_ERRORS as exc:
                raise ModelFileError(f"{path}: damaged member {name!r} ({exc})") from None
            array = np.frombuffer(data, dtype=dtype, count=count)
            arrays[name[:-4]] = array.reshape(shape, order="F" if fortran else "C")
    return arrays


def _need(arrays: dict[str, np.ndarray], name: str, kinds: str, shape: tuple, where: str,
          allow_inf: bool = False) -> np.ndarray:
    """``arrays[name]``, checked: dtype kind in ``kinds``, shape (None = any length), finite floats
    (or +inf too, with ``allow_inf``)."""
    if name not in arrays:
        raise ModelFileError(f"{where}: array {name!r} is missing")
    value = arrays[name]
    if value.dtype.kind not in kinds:
        raise ModelFileError(f"{where}: array {name!r} has dtype {value.dtype}, expected "
                             f"{'floating point' if kinds == 'f' else 'integers'}")
    if value.ndim != len(shape) or any(s is not None and s != v for s, v in zip(shape, value.shape)):
        want = "(" + ", ".join("n" if s is None else str(s) for s in shape) + ("," if len(shape) == 1 else "") + ")"
        raise ModelFileError(f"{where}: array {name!r} has shape {value.shape}, expected {want}")
    if value.dtype.kind == "f" and not (np.isfinite(value) | (allow_inf & (value == np.inf))).all():
        raise ModelFileError(f"{where}: array {name!r} holds NaN or infinity")
    return value


def _check_linear(a: dict[str, np.ndarray], d: int, where: str) -> None:
    _need(a, "coef", "f", (d,), where)
    _need(a, "intercept", "f", (1,), where)


def _check_rbf_svr(a: dict[str, np.ndarray], d: int, where: str) -> None:
    vectors = _need(a, "support_vectors", "f", (None, d), where)
    _need(a, "dual_coef", "f", (vectors.shape[0],), where)
    if not _need(a, "gamma", "f", (1,), where)[0] > 0:
        raise ModelFileError(f"{where}: gamma must be positive")
    _need(a, "intercept", "f", (1,), where)


def _check_trees(a: dict[str, np.ndarray], d: int, where: str) -> None:
    feature = _need(a, "feature", "iu", (None,), where)
    n = len(feature)
    left, right = _need(a, "left", "iu", (n,), where), _need(a, "right", "iu", (n,), where)
    _need(a, "threshold", "f", (n,), where)
    _need(a, "value", "f", (n,), where)
    roots = _need(a, "roots", "iu", (None,), where)
    depth = _need(a, "max_depth", "iu", (1,), where)
    _need(a, "baseline", "f", (1,), where)
    if n == 0 or len(roots) == 0:
        raise ModelFileError(f"{where}: no trees")
    index = np.arange(n)
    leaf = left < 0
    if not np.array_equal(leaf, right < 0) or ((left < -1) | (right < -1)).any():
        raise ModelFileError(f"{where}: a node has one child (left and right must both be -1 at a leaf)")
    inner = ~leaf
    # children after their parent, inside the arrays: every walk ends, in at most n steps
    if ((left[inner] <= index[inner]) | (right[inner] <= index[inner]) | (left[inner] >= n)
            | (right[inner] >= n)).any():
        raise ModelFileError(f"{where}: a node's child is not a later node (a cycle, or out of range)")
    if ((feature[inner] < 0) | (feature[inner] >= d)).any():
        raise ModelFileError(f"{where}: a node splits on a feature outside 0..{d - 1}")
    if ((roots < 0) | (roots >= n)).any():
        raise ModelFileError(f"{where}: a tree root outside the nodes")
    if not 0 <= int(depth[0]) <= MAX_TREE_DEPTH:
        raise ModelFileError(f"{where}: max_depth {int(depth[0])} outside 0..{MAX_TREE_DEPTH}")


#: Member kind -> check(arrays without prefix, number of features, where) of the arrays it needs.
MEMBER_CHECKS: dict[str, Callable[[dict[str, np.ndarray], int, str], None]] = {
    "linear": _check_linear,
    "rbf_svr": _check_rbf_svr,
    "trees": _check_trees,
}


def _check_meta(meta: Any, path: Path) -> None:
    if not isinstance(meta, dict):
        raise ModelFileError(f"{path}: its meta is a JSON {type(meta).__name__}, not an object")
    if meta.get("format") != FORMAT or meta.get("format_version") != FORMAT_VERSION:
        raise ModelFileError(f"{path}: not a {FORMAT} v{FORMAT_VERSION} file")
    names = meta.get("features")
    if not isinstance(names, list) or not names or not all(isinstance(n, str) for n in names):
        raise ModelFileError(f"{path}: meta 'features' must be a non-empty list of names")
    if len(set(names)) != len(names):
        raise ModelFileError(f"{path}: meta 'features' names a feature twice")
    members = meta.get("members")
    if not isinstance(members, list) or not members:
        raise ModelFileError(f"{path}: meta 'members' must be a non-empty list")
    prefixes = []
    for i, member in enumerate(members):
        if not isinstance(member, dict):
            raise ModelFileError(f"{path}: member {i} is not an object")
        kind, weight, prefix = member.get("kind"), member.get("weight"), member.get("prefix")
        if kind not in MEMBER_KINDS:
            raise ModelFileError(f"{path}: unknown member kind {kind!r}; known: {', '.join(sorted(MEMBER_KINDS))}")
        if isinstance(weight, bool) or not isinstance(weight, (int, float)) or not math.isfinite(weight):
            raise ModelFileError(f"{path}: member {i} weight must be a finite number, got {weight!r}")
        if not isinstance(prefix, str) or not prefix or prefix.startswith("x_") or prefix == "meta":
            raise ModelFileError(f"{path}: member {i} prefix must be a name, got {prefix!r}")
        prefixes.append(prefix)
    if any(a != b and b.startswith(a) for a in prefixes for b in prefixes) or len(set(prefixes)) != len(prefixes):
        raise ModelFileError(f"{path}: member prefixes overlap: {prefixes}")


@dataclass
class QualityModel:
    meta: dict[str, Any]
    arrays: dict[str, np.ndarray]

    @property
    def features(self) -> list[str]:
        return list(self.meta["features"])

    @classmethod
    def load(cls, path: str | Path = DEFAULT_MODEL, *,
             known: Callable[[dict[str, Any]], frozenset[str]] | None = None) -> "QualityModel":
        """Read and check a model file: everything a prediction needs is validated here, once.

        ``known`` gives, from the file's meta, the feature names its user can compute (by default
        the classic engine's, `known_feature_names`); another engine whose inputs are not classic
        features (the effnet quality head) passes its own.

        Raises
        ------
        ModelFileError
            (a ValueError) naming the file and the first problem: missing, too large (on disk or
            unpacked, checked before reading), not an .npz, a damaged member, an array of the
            wrong dtype or shape, meta that is not this format, features this version does not
            compute, trees that do not end.
        """
        from ._features import known_feature_names

        path = Path(path)
        if not path.is_file():
            raise ModelFileError(
                f"{path}: quality model not found; refit it with "
                "`picinspector fit-quality --dataset DIR -o PATH` (see README)")
        arrays = dict(_read_npz(path))
        meta_array = arrays.pop("meta", None)
        if meta_array is None or meta_array.dtype.kind != "U" or meta_array.shape != ():
            raise ModelFileError(f"{path}: not a quality model (no 'meta' text array)")
        try:
            meta = json.loads(str(meta_array))
        except ValueError as exc:
            raise ModelFileError(f"{path}: its meta is not JSON ({exc})") from None
        _check_meta(meta, path)
        names = meta["features"]
        try:
            valid = known_feature_names() if known is None else known(meta)
        except (KeyError, TypeError, ValueError) as exc:
            raise ModelFileError(f"{path}: its meta does not describe its inputs ({exc})") from None
        unknown = sorted(set(names) - valid)
        if unknown:
            raise ModelFileError(
                f"{path}: the model needs {len(unknown)} feature(s) this version does not compute "
                f"({', '.join(unknown[:5])}{', ...' if len(unknown) > 5 else ''}); refit it with "
                "`picinspector fit-quality`")
        d = len(names)
        for name in ("x_fill", "x_mean"):
            _need(arrays, name, "f", (d,), str(path))
        # +inf marks a feature that was constant on the training photos: it taught nothing, and
        # standardises to 0 whatever a new photo's value (`training.fit_quality.Preprocess`).
        scale = arrays["x_scale"] = _need(arrays, "x_scale", "f", (d,), str(path), allow_inf=True)
        if not (scale > 0).all():
            raise ModelFileError(f"{path}: x_scale must be positive (a zero, a negative or NaN)")
        used = {"x_fill", "x_mean", "x_scale"}
        if "x_proj" in arrays:  # the members then read the k projected values
            d = _need(arrays, "x_proj", "f", (d, None), str(path)).shape[1]
            if d == 0:
                raise ModelFileError(f"{path}: x_proj projects onto no dimension")
            used.add("x_proj")
        for member in meta["members"]:
            prefix = member["prefix"]
            own = {k[len(prefix):]: v for k, v in arrays.items() if k.startswith(prefix)}
            MEMBER_CHECKS[member["kind"]](own, d, f"{path} member {prefix!r} ({member['kind']})")
            used |= {prefix + k for k in own}
        extra = sorted(set(arrays) - used)
        if extra:
            raise ModelFileError(f"{path}: arrays no member uses: {', '.join(extra[:5])}")
        return cls(meta, arrays)

    def save(self, path: str | Path) -> None:
        save_npz(path, self.meta, self.arrays)

    def prepare(self, x: np.ndarray) -> np.ndarray:
        """Fill missing values with the training medians, standardise, clip to +-``Z_CLIP`` standard
        deviations, and project (``x_proj``). A value far outside the training photos (a quality-5
        JPEG, a PNG's missing tables) tells the learners nothing they were taught, and must not swamp
        an RBF kernel's distance (the guards judge such distortions)."""
        x = np.where(np.isfinite(x), x, self.arrays["x_fill"])
        z = np.clip((x - self.arrays["x_mean"]) / self.arrays["x_scale"], -Z_CLIP, Z_CLIP)
        return z if self._projection is None else z @ self._projection

    @cached_property
    def _projection(self) -> np.ndarray | None:
        proj = self.arrays.get("x_proj")
        return None if proj is None else proj.astype(np.float64)

    def predict_raw(self, x: np.ndarray) -> np.ndarray:
        """Predictions on the 0-1 target scale for a raw feature matrix (n, d) in `features` order."""
        x = np.atleast_2d(np.asarray(x, dtype=np.float64))
        with one_blas_thread() if len(x) <= SMALL_BATCH and self._large else contextlib.nullcontext():
            z = self.prepare(x)
            total = np.zeros(len(z))
            for predict, weight, arrays in self._members:
                total += weight * predict(arrays, z)
        return total

    @cached_property
    def _large(self) -> bool:
        return sum(a.size for a in self.arrays.values()) >= LARGE_MODEL

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
