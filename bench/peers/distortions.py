"""Graded distortions for the peer metrics: does BRISQUE / PIQE fall with each distortion's level?

Uses bench/distortions.py's photo set and `DISTORTIONS` (8 types x 5 levels, every level saved as JPEG).
For every photo and type we take the Spearman correlation (SRCC) between the level and each method's
score, sign flipped for lower-is-better metrics so that -1 means "quality falls as the distortion
grows" for every column, then average over photos. PicInspector's `quality` is computed on the same
images for reference (it matches the quality column of bench/distortions.py's first table).

    .venv/bin/python bench/peers/distortions.py [--biq 12] [-j 2]
"""

from __future__ import annotations

import argparse
import importlib.util
import multiprocessing
import sys
import time
from concurrent.futures import ProcessPoolExecutor

from _peers import BENCH, METHODS, limit_threads, parse_methods

import numpy as np
from scipy.stats import spearmanr


def _load_bench_distortions():
    """bench/distortions.py as a module (its file name is the same as this one's, so import by path)."""
    name = "_bench_distortions"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, BENCH / "distortions.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up while the class is built
    spec.loader.exec_module(module)
    return module


bd = _load_bench_distortions()

_PHOTOS: dict[str, np.ndarray] = {}
_SCORERS: dict = {}


def _init_worker(n_biq: int, names: list[str], threads: int | None) -> None:
    if threads is not None:
        limit_threads(threads)
    _PHOTOS.update(bd.photos(n_biq))
    _SCORERS.update({n: METHODS[n].make(threads) for n in names})


def _score_unit(unit: tuple[str, str]) -> dict[str, list[float]]:
    photo, dist = unit
    d = bd.DISTORTIONS[dist]
    out: dict[str, list[float]] = {n: [] for n in _SCORERS}
    for level in d.levels:
        img = bd.distorted(_PHOTOS[photo], d, level)
        img.load()
        for n, scorer in _SCORERS.items():
            out[n].append(scorer(img))
    return out


def level_srcc(values: list[float], lower_better: bool) -> float:
    """SRCC between level index and a method's (sign-flipped if lower is better) score; 0 if constant.

    Parameters
    ----------
    values : list of float
        Scores at increasing distortion levels.
    lower_better : bool
        Flip the sign first.

    Returns
    -------
    float
        In [-1, 1]; -1 means the quality falls at every step.
    """
    v = -np.asarray(values, np.float64) if lower_better else np.asarray(values, np.float64)
    if np.ptp(v) == 0:
        return 0.0
    return float(spearmanr(np.arange(len(v)), v).statistic)


def run(n_biq: int, names: list[str], jobs: int, max_photos: int | None = None) -> tuple[dict, int]:
    """Mean per-photo SRCC(level, score) of each method for each distortion.

    Parameters
    ----------
    n_biq : int
        BIQ2021 photos added to the package samples, as in bench/distortions.py.
    names : list of str
        Methods from `METHODS`.
    jobs : int
        Worker processes (1: in this process with default threads).
    max_photos : int, optional
        Use only the first photos of the set (fewer photos, shorter run).

    Returns
    -------
    table : dict
        ``table[distortion][method]`` = mean SRCC.
    n_photos : int
    """
    keys = list(bd.photos(n_biq))[:max_photos]
    units = [(k, d) for k in keys for d in bd.DISTORTIONS]
    if jobs <= 1:
        _init_worker(n_biq, names, None)
        results = [_score_unit(u) for u in units]
    else:
        with ProcessPoolExecutor(jobs, mp_context=multiprocessing.get_context("spawn"),
                                 initializer=_init_worker, initargs=(n_biq, names, 1)) as pool:
            results = list(pool.map(_score_unit, units))
    rhos: dict[str, dict[str, list[float]]] = {d: {n: [] for n in names} for d in bd.DISTORTIONS}
    for (_, dist), res in zip(units, results):
        for n in names:
            rhos[dist][n].append(level_srcc(res[n], METHODS[n].lower_better))
    return {d: {n: float(np.mean(v)) for n, v in row.items()} for d, row in rhos.items()}, len(keys)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--biq", type=int, default=12, help="BIQ2021 photos to add from ../shared (default 12)")
    ap.add_argument("--photos", type=int, default=None, help="use only the first N photos of the set")
    ap.add_argument("-j", "--jobs", type=int, default=2, help="worker processes (default 2)")
    ap.add_argument("--methods", default=",".join(METHODS), help=f"comma-separated, from {list(METHODS)}")
    args = ap.parse_args(argv)
    names = parse_methods(args.methods)
    t0 = time.perf_counter()
    table, n_photos = run(args.biq, names, args.jobs, args.photos)
    elapsed = time.perf_counter() - t0
    print(f"{n_photos} photos x {len(bd.DISTORTIONS)} distortions x 5 levels; mean per-photo SRCC(level, score),"
          " signs flipped for lower-is-better metrics: -1 = quality falls at every step")
    print("| distortion | " + " | ".join(METHODS[n].title() for n in names) + " | <= -0.90 met by |")
    print("|---|" + "---|" * (len(names) + 1))
    for dist, row in table.items():
        met = [n for n in names if row[n] <= -0.9]
        print(f"| {dist} | " + " | ".join(f"{row[n]:+.2f}" for n in names) + f" | {', '.join(met) or 'none'} |")
    print()
    print(f"Run time {elapsed:.0f} s with -j {args.jobs}.")


if __name__ == "__main__":
    main()
