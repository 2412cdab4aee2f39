"""Shared parts of the peer benchmarks: the methods by name, the BRISQUE shim, agreement statistics.

The peers are third-party no-reference metrics installed only for benchmarking (``make bench-peers``
installs them into the project's .venv): BRISQUE from the ``brisque`` package and PIQE from ``pypiqe``.
Nothing in ``picinspector`` imports them.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any, Callable, Union

BENCH = Path(__file__).resolve().parents[1]
if str(BENCH) not in sys.path:
    sys.path.insert(1, str(BENCH))  # after bench/peers, so that `_common` (and through it src/) is found

import _common  # noqa: E402,F401  (puts src/ on sys.path for a checkout that is not installed)

import cv2  # noqa: E402
import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402

Source = Union[str, Path, Image.Image]
Scorer = Callable[[Source], float]

INSTALL_HINT = ("install the peer metrics with `make bench-peers` (pip install -r bench/peers/requirements.txt "
                "&& pip install --no-deps pypiqe==1.2)")


def rgb_array(source: Source) -> np.ndarray:
    """Decode ``source`` (a path or an open PIL image) to an 8-bit RGB array.

    Parameters
    ----------
    source : str, Path or PIL.Image.Image
        The photo.

    Returns
    -------
    numpy.ndarray
        ``(H, W, 3)`` uint8.

    Raises
    ------
    ValueError
        When the file cannot be read as an image; the message names the file.
    """
    try:
        img = source if isinstance(source, Image.Image) else Image.open(source)
        return np.asarray(img.convert("RGB"))
    except (OSError, Image.DecompressionBombError) as exc:
        raise ValueError(f"{source}: cannot read as an image ({exc})") from exc


def _picinspector(threads: int | None, engine: str = "classic") -> Scorer:
    from picinspector import Inspector

    inspector = Inspector(engine=engine, threads=threads)
    return lambda source: float(inspector.analyze(source).scores["quality"])


def _picinspector_effnet(threads: int | None) -> Scorer:
    return _picinspector(threads, "effnet")


def _flat_brisque_class() -> type:
    """``brisque.BRISQUE`` with its feature vector flattened to float64.

    brisque 0.2.0 builds its 36 features as an object array whose elements are partly 1-element
    arrays (``mean_squares_sum`` returns shape ``(1,)``); its ``scale_features`` then calls ``float`` on
    each element, which numpy >= 2.4 refuses for arrays with ndim > 0. The subclass hands
    ``scale_features`` a flat float vector instead; the features and the model are unchanged.
    """
    try:
        from brisque import BRISQUE
    except ImportError as exc:
        raise ImportError(f"BRISQUE needs the `brisque` package: {INSTALL_HINT}") from exc

    class FlatBRISQUE(BRISQUE):
        def calculate_brisque_features(self, *args: Any, **kwargs: Any) -> np.ndarray:
            features = super().calculate_brisque_features(*args, **kwargs)
            return np.concatenate([np.ravel(np.asarray(f, dtype=np.float64)) for f in features])

    return FlatBRISQUE


def _brisque(threads: int | None) -> Scorer:
    model = _flat_brisque_class()(url=False)
    return lambda source: float(model.score(rgb_array(source)))


def _piqe(threads: int | None) -> Scorer:
    try:
        from pypiqe import piqe
    except ImportError as exc:
        raise ImportError(f"PIQE needs the `pypiqe` package: {INSTALL_HINT}") from exc
    # pypiqe converts 3-channel input with COLOR_BGR2GRAY; giving it luma made from RGB avoids the swap.
    return lambda source: float(piqe(cv2.cvtColor(rgb_array(source), cv2.COLOR_RGB2GRAY))[0])


@dataclass(frozen=True)
class Method:
    """A quality method in the benchmark.

    Attributes
    ----------
    label : str
        Name shown in the tables.
    make : callable
        ``make(threads) -> scorer`` (``threads=None``: the method's default), where
        ``scorer(path_or_PIL_image) -> float``. Imports happen here, so a missing peer fails with an
        ImportError naming the install step.
    lower_better : bool
        True when a lower score means a better photo; the benchmarks flip its sign.
    package : str or None
        Distribution whose version is printed with the table.
    """

    label: str
    make: Callable[[int | None], Scorer]
    lower_better: bool
    package: str | None = None

    def title(self) -> str:
        """The label with the package version and whether the sign was flipped."""
        version = ""
        if self.package:
            try:
                version = f", {self.package} {metadata.version(self.package)}"
            except metadata.PackageNotFoundError:
                version = f", {self.package} not installed"
        return self.label + version + (", sign flipped" if self.lower_better else "")


#: Methods by name. References: BRISQUE, Mittal, Moorthy & Bovik 2012, doi:10.1109/TIP.2012.2214050
#: (the package's SVM was trained on LIVE IQA); PIQE, Venkatanath N et al. 2015,
#: doi:10.1109/NCC.2015.7084843 (training-free).
METHODS: dict[str, Method] = {
    "picinspector": Method("PicInspector quality (classic)", _picinspector, False, "picinspector"),
    "effnet": Method("PicInspector quality (effnet)", _picinspector_effnet, False, "picinspector"),
    "brisque": Method("BRISQUE", _brisque, True, "brisque"),
    "piqe": Method("PIQE", _piqe, True, "pypiqe"),
}


def parse_methods(text: str) -> list[str]:
    """Comma-separated method names, checked against `METHODS`.

    Parameters
    ----------
    text : str
        For example ``"picinspector,brisque"``.

    Returns
    -------
    list of str

    Raises
    ------
    ValueError
        For an unknown or empty name.
    """
    names = [t.strip() for t in text.split(",") if t.strip()]
    unknown = [n for n in names if n not in METHODS]
    if unknown or not names:
        raise ValueError(f"unknown methods {unknown or text!r}; choose from {sorted(METHODS)}")
    return names


def limit_threads(threads: int) -> None:
    """Limit this process's native thread pools (OpenCV, and BLAS/OpenMP of processes started after)."""
    cv2.setNumThreads(threads)
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = str(threads)


# --- agreement ------------------------------------------------------------------------------------

def agreement(scores: np.ndarray, mos: np.ndarray, lower_better: bool) -> dict[str, float]:
    """SRCC, PLCC (after the 4-parameter logistic) and KRCC between a method's scores and opinion scores.

    Parameters
    ----------
    scores : numpy.ndarray
        The method's raw scores.
    mos : numpy.ndarray
        Opinion scores, higher = better.
    lower_better : bool
        Flip the sign of ``scores`` first, so that a positive value always means agreement.

    Returns
    -------
    dict
        ``{"srcc", "plcc", "krcc", "fit"}``; ``fit`` is "logistic4", or "raw" when the logistic fit
        failed and PLCC is the linear one.

    Notes
    -----
    The statistics are the project's own, `picinspector.training.metrics.quality_metrics`
    (VQEG 4-parameter logistic before PLCC), so the peers are measured exactly as PicInspector is.
    """
    from picinspector.training.metrics import quality_metrics

    x = np.asarray(scores, np.float64)
    m = quality_metrics(-x if lower_better else x, np.asarray(mos, np.float64))
    return {k: m[k] for k in ("srcc", "plcc", "krcc", "fit")}
