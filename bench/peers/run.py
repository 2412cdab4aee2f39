"""PicInspector's quality next to peer no-reference metrics (BRISQUE, PIQE) on labelled photos.

A seeded random subset of a labelled dataset (any format `picinspector.datasets` reads, such as
BIQ2021's ``labels.csv`` + ``images/``: Ahmed et al. 2022, doi:10.1117/1.JEI.31.5.053010; the subset
is drawn by `picinspector.datasets.subsample`) is scored by each method, one method at a time.
Printed: one markdown table with SRCC, PLCC (after a 4-parameter logistic fit) and KRCC against the
opinion scores, signs flipped for lower-is-better metrics so that higher always means better
agreement, and the median wall time per image of each method (decode included, one image at a time
in one process).

    make bench-peers          # installs the peers into .venv, then runs this
    .venv/bin/python bench/peers/run.py --dataset ../shared/data/biq2021_train --n 500 --seed 0 -j 2

With ``-j N > 1`` each method runs in N worker processes, each limited to one thread (PicInspector
with ``threads=1``, as its batch workers); with ``-j 1`` it runs in this process with the libraries'
default threads (PicInspector: 2 measure threads).
"""

from __future__ import annotations

import argparse
import multiprocessing
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from _peers import METHODS, agreement, limit_threads, parse_methods

import numpy as np

from picinspector.datasets import CITATIONS, load_dataset, subsample


_SCORER = None


def _init_worker(method: str, threads: int) -> None:
    global _SCORER
    limit_threads(threads)
    _SCORER = METHODS[method].make(threads)


def _score_chunk(paths: list[Path]) -> list[tuple[float, float]]:
    out = []
    for path in paths:
        t0 = time.perf_counter()
        try:
            value = _SCORER(path)
        except Exception as exc:
            raise RuntimeError(f"{path}: scoring failed ({type(exc).__name__}: {exc})") from exc
        out.append((value, time.perf_counter() - t0))
    return out


def score_method(method: str, paths: list[Path], jobs: int) -> tuple[np.ndarray, np.ndarray, float]:
    """Score ``paths`` with one method.

    Parameters
    ----------
    method : str
        Name in `METHODS`.
    paths : list of Path
        Photos.
    jobs : int
        Worker processes (1: in this process, default threads).

    Returns
    -------
    scores, seconds : numpy.ndarray
        Raw score and wall time of each photo, in order.
    total : float
        Wall time of the whole pass, workers' start-up included.
    """
    t0 = time.perf_counter()
    if jobs <= 1:
        global _SCORER
        _SCORER = METHODS[method].make(None)  # None: the method's default threads
        pairs = _score_chunk(paths)
    else:
        chunks = [paths[i:i + 8] for i in range(0, len(paths), 8)]
        with ProcessPoolExecutor(jobs, mp_context=multiprocessing.get_context("spawn"),
                                 initializer=_init_worker, initargs=(method, 1)) as pool:
            pairs = [p for chunk in pool.map(_score_chunk, chunks) for p in chunk]
    total = time.perf_counter() - t0
    return np.array([p[0] for p in pairs]), np.array([p[1] for p in pairs]), total


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--dataset", type=Path, required=True, help="folder with labels.csv and images/")
    ap.add_argument("--n", type=int, default=500, help="photos in the random subset (default 500)")
    ap.add_argument("--seed", type=int, default=0, help="seed of the subset (default 0)")
    ap.add_argument("-j", "--jobs", type=int, default=1, help="worker processes per method (default 1)")
    ap.add_argument("--methods", default=",".join(METHODS),
                    help=f"comma-separated, from {list(METHODS)}; empty (\"\") with --oof for its rows alone")
    ap.add_argument("--oof", type=Path, action="append", default=[], metavar="REPORT.json",
                    help="a `picinspector fit-quality --engine effnet --report` file: adds its chosen candidate's "
                         "out-of-fold predictions on the same photos as a row (the shipped head was trained on "
                         "them, so its own scores would not be fair); repeatable")
    args = ap.parse_args(argv)
    names = parse_methods(args.methods) if args.methods or not args.oof else []

    if args.n < 5:
        ap.error(f"--n must be >= 5, got {args.n}")
    fmt, samples = load_dataset(args.dataset)
    samples = subsample([s for s in samples if s.mos is not None], args.n, args.seed)
    missing = [s.path for s in samples if not Path(s.path).is_file()]
    if missing:
        raise FileNotFoundError(f"{missing[0]}: listed in the labels but missing ({len(missing)} missing)")
    paths = [Path(s.path) for s in samples]
    mos = np.array([s.mos for s in samples], dtype=np.float64)

    results = []
    for name in names:
        scores, seconds, total = score_method(name, paths, args.jobs)
        stats = agreement(scores, mos, METHODS[name].lower_better)
        results.append((name, stats, float(np.median(seconds)) * 1e3, total))
        print(f"  {name}: {total:.1f} s for {len(paths)} photos", file=sys.stderr, flush=True)

    for report in args.oof:
        results.append(oof_row(report, paths, mos))

    threads = "1 thread per process" if args.jobs > 1 else "default threads"
    print(f"{args.dataset.name}: {len(paths)} photos (seed {args.seed}), -j {args.jobs} ({threads}). "
          "PLCC after a 4-parameter logistic fit; signs flipped for lower-is-better metrics, so higher = "
          "better agreement. ms per image: median wall time per photo in one process, decode included.")
    print("| method | SRCC | PLCC | KRCC | ms per image |")
    print("|---|---|---|---|---|")
    for name, s, ms, _ in results:
        title = METHODS[name].title() if name in METHODS else name
        print(f"| {title} | {s['srcc']:.3f} | {s['plcc']:.3f} | {s['krcc']:.3f} | "
              f"{'-' if ms != ms else f'{ms:.0f}'} |")
    if any(s["fit"] != "logistic4" for _, s, _, _ in results):
        print("(a logistic fit failed: that PLCC is linear)")
    print()
    if fmt in CITATIONS:
        print(f"Data: {CITATIONS[fmt]}.")
    print("Wall time of each pass: " + ", ".join(f"{n} {t:.1f} s" for n, _, _, t in results if n in METHODS))


def oof_row(report: Path, paths: list[Path], mos: np.ndarray) -> tuple[str, dict[str, float], float, float]:
    """A results row from the out-of-fold predictions of a fit-quality report, on ``paths``."""
    import json
    import os

    with open(report, encoding="utf-8") as f:
        rep = json.load(f)
    oof = {os.path.abspath(p): v for p, v in rep["oof"][rep["chosen"]].items()}
    missing = [p for p in paths if os.path.abspath(p) not in oof]
    if missing:
        raise KeyError(f"{report}: no out-of-fold prediction for {missing[0]} ({len(missing)} missing)")
    scores = np.array([oof[os.path.abspath(p)] for p in paths])
    folds = rep["cv"][rep["chosen"]].get("srcc_folds", [])
    label = f"PicInspector effnet head {rep['chosen']}, out-of-fold ({len(folds)}-fold CV)"
    return label, agreement(scores, mos, False), float("nan"), 0.0


if __name__ == "__main__":
    main()
