"""Cross-validated agreement with people of the quality model *with its guards*, overall and per subset.

``picinspector fit-quality`` prints each candidate's 5-fold CV; what ``analyze`` reports is the chosen
candidate times the guards (`scoring/_quality.py::GUARDS`). This script reads the same measures cache,
repeats the CV of one candidate with the same folds (seed), multiplies the out-of-fold predictions by
the guard factor of each photo, and prints the metrics, overall and per subset.

    .venv/bin/python bench/quality_cv.py --dataset ../shared/data/biq2021_train --cache CACHE.jsonl \\
        [--candidate svr+trees_monotone] [--folds 5] [--seed 0]
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


if __name__ == "__main__":
    main()
