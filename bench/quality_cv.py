"""Cross-validated agreement with people of the quality model *with its guards*, overall and per subset.

``picinspector fit-quality`` prints each candidate's 5-fold CV; what ``analyze`` reports is the chosen
candidate times the guards (`scoring/_quality.py::GUARDS`). This script reads the same measures cache,
repeats the CV of one candidate with the same folds (seed), multiplies the out-of-fold predictions by
the guard factor of each photo, and prints the metrics, overall and per subset.

    .venv/bin/python bench/quality_cv.py --dataset ../shared/data/biq2021_train --cache CACHE.jsonl \\
        [--candidate svr+trees_monotone] [--folds 5] [--seed 0] [--clipping]

``--clipping`` adds, by share of clipped highlights, the mean opinion, the mean guarded out-of-fold
prediction and their difference, and the CV of a candidate guard on clipping (factor
``min(1, (100 - clipped %) / knee) ** power``): is the over-exposure that the graded-distortion
benchmark shows the models shrug off something the opinion scores would reward a guard for?
"""

from __future__ import annotations

import argparse
import os

from _common import ROOT  # noqa: F401  (puts src/ on sys.path)

import numpy as np

from picinspector.datasets import load_dataset
from picinspector.scoring._attributes import attribute_scores
from picinspector.scoring._features import feature_matrix, features
from picinspector.scoring._quality import guard_factor
from picinspector.training.fit_quality import CANDIDATES, _fit_candidate, _predict_candidate, measure_dataset
from picinspector.training.metrics import quality_metrics


def out_of_fold(x: np.ndarray, y: np.ndarray, names: list[str], candidate: str, folds: int, seed: int) -> np.ndarray:
    """Out-of-fold predictions of ``candidate`` with fit-quality's folds (KFold, shuffled with ``seed``)."""
    from sklearn.model_selection import KFold

    oof = np.empty(len(y))
    for train, test in KFold(n_splits=folds, shuffle=True, random_state=seed).split(x):
        pre, fitted = _fit_candidate(candidate, x[train], y[train], names, seed)
        oof[test] = _predict_candidate(candidate, pre, fitted, x[test])
    return oof


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--dataset", required=True)
    ap.add_argument("--format", default=None)
    ap.add_argument("--cache", required=True, help="the measures cache of fit-quality (--cache)")
    ap.add_argument("--candidate", default="svr+trees_monotone", choices=sorted(CANDIDATES))
    ap.add_argument("--folds", type=int, default=5)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("-j", "--jobs", type=int, default=1)
    ap.add_argument("--clipping", action="store_true", help="residuals by clipped share; candidate clipping guards")
    args = ap.parse_args()
    fmt, samples = load_dataset(args.dataset, args.format)
    samples = [s for s in samples if s.mos is not None]
    measures, _ = measure_dataset([s.path for s in samples], args.cache, jobs=args.jobs, progress=False)
    kept = [s for s in samples if os.path.abspath(s.path) in measures]
    rows = [measures[os.path.abspath(s.path)] for s in kept]
    y = np.array([s.mos01 for s in kept])
    names = sorted(features(rows[0]))
    x = feature_matrix(rows, names)
    oof = out_of_fold(x, y, names, args.candidate, args.folds, args.seed)
    guards = np.array([guard_factor(m, attribute_scores(m)) for m in rows])
    guarded = 100.0 * np.clip(oof, 0.0, 1.0) * guards
    subsets = np.array([s.subset or "" for s in kept])
    print(f"{args.folds}-fold CV, seed {args.seed}, {args.candidate}, n = {len(y)} ({fmt}); "
          f"guards below 1 on {np.mean(guards < 1):.1%} of the photos")
    print()
    print("| predictions | SRCC | PLCC | PLCC raw | KRCC |")
    print("|---|---|---|---|---|")
    for label, pred in (("model alone", oof), ("model + guards (what `analyze` reports)", guarded)):
        m = quality_metrics(pred, y)
        print(f"| {label} | {m['srcc']:.3f} | {m['plcc']:.3f} | {m['plcc_raw']:.3f} | {m['krcc']:.3f} |")
    print()
    print("| subset | n | SRCC | PLCC |")
    print("|---|---|---|---|")
    for name in sorted(set(subsets)):
        sel = subsets == name
        m = quality_metrics(guarded[sel], y[sel])
        print(f"| {name or '-'} | {int(sel.sum())} | {m['srcc']:.3f} | {m['plcc']:.3f} |")
    if args.clipping:
        clipping_table(rows, y, guarded)


def clipping_table(rows: list[dict], y: np.ndarray, guarded: np.ndarray) -> None:
    clip = np.array([float(m["highlights_clipped_pct"]) for m in rows])
    print()
    print("| clipped highlights | n | mean MOS | mean prediction | prediction - MOS |")
    print("|---|---|---|---|---|")
    for lo, hi in ((0, 1), (1, 5), (5, 15), (15, 30), (30, 50), (50, 101)):
        sel = (clip >= lo) & (clip < hi)
        if sel.any():
            print(f"| {lo}-{min(hi, 100)}% | {int(sel.sum())} | {y[sel].mean():.3f} | {guarded[sel].mean() / 100:.3f} | "
                  f"{guarded[sel].mean() / 100 - y[sel].mean():+.3f} |")
    base = quality_metrics(guarded, y)["srcc"]
    print()
    print(f"| clipping guard knee, power | SRCC (guards now: {base:.4f}) | photos lowered | factor at 50% clipped |")
    print("|---|---|---|---|")
    for knee in (90, 80, 70, 60):
        for power in (0.2, 0.5):
            f = np.minimum(1.0, np.maximum(100.0 - clip, 1.0) / knee) ** power
            srcc = quality_metrics(guarded * f, y)["srcc"]
            print(f"| {knee}, {power} | {srcc:.4f} | {np.mean(f < 1):.1%} | {min(1.0, 50 / knee) ** power:.2f} |")


if __name__ == "__main__":
    main()
