"""Held-out quality of a fine-tuned EfficientNet-Lite run next to the frozen-feature head, on the same photos.

A run of ``picinspector train --backbone efficientnet-liteN`` records its train/validation split in
``RUN_DIR/split.json``. This script scores the run's validation photos three ways and prints SRCC,
PLCC (raw) and PLCC after the 4-parameter logistic (what the README's tables use):

- ``finetuned``: the run's ``model.onnx`` on onnxruntime (exactly what ``--engine effnet --model RUN_DIR``
  serves);
- ``frozen-krr@S``: the shipped quality head's approach (pooled mean and std of all 9 feature maps of
  the stock Lite0 graph at shorter side S, standardised, kernel ridge regression with an RBF kernel,
  gamma 1/d, lambda 0.3; `picinspector.training.effnet.KernelRidge`), fitted on the run's *training*
  photos only, for each ``--sides`` value; with ``--classic-cache FILE.jsonl`` (the classic measures of
  the same photos, from ``picinspector fit-quality --cache``) also ``+classic`` rows, as the shipped head;
- ``frozen-run``: with ``--frozen-run DIR``, a ``--freeze frozen`` run of the trainer on the same split
  (heads trained on the frozen backbone's pooled features), served through its ONNX graph, and
  ``frozen-krr@run`` the kernel ridge on that run's cached features (``features.safetensors``: the same
  statistics as the stock graph's at the run's input size, no second extraction);
- ``run-metrics``: the run's own best epoch from ``metrics.json`` (computed by the trainer).

    python bench/train_heldout.py --run bench/_work/train/RUN [--frozen-run DIR] --sides 384 [--json out.json]

Features of the stock graph are cached in ``--features-cache`` (default ``bench/_work/effnet-features``).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from picinspector.training.metrics import logistic4, logistic4_fit, plcc, srcc  # noqa: E402


def _scores(pred: np.ndarray, mos: np.ndarray) -> dict[str, float]:
    params = logistic4_fit(pred, mos)
    return {"srcc": round(srcc(pred, mos), 4), "plcc": round(plcc(pred, mos), 4),
            "plcc_logistic": round(plcc(logistic4(pred, *params), mos), 4), "n": int(len(mos))}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--run", required=True, help="a train run folder (split.json, config.json, model.onnx)")
    ap.add_argument("--sides", type=int, nargs="*", default=[384], help="frozen-head shorter sides (stock graph)")
    ap.add_argument("--frozen-run", help="a --freeze frozen run on the same split (adds its rows)")
    ap.add_argument("--features-cache", default=str(Path(__file__).resolve().parent / "_work" / "effnet-features"))
    ap.add_argument("--classic-cache", help="classic measures JSONL of the same photos (adds +classic rows)")
    ap.add_argument("--lam", type=float, default=0.3)
    ap.add_argument("--json", help="also write the results here")
    args = ap.parse_args()

    from picinspector.datasets import load_dataset
    from picinspector.io import load_photo
    from picinspector.models.effnet.engine import FineTuned
    from picinspector.training.effnet import KernelRidge
    from picinspector.training.effnet_features import backbone_features
    from picinspector.training.fit_quality import Preprocess

    run = Path(args.run)
    split = json.loads((run / "split.json").read_text())
    record = json.loads((run / "run.json").read_text())
    _, samples = load_dataset(record["dataset"]["root"], record["dataset"].get("format"))
    mos = {os.path.abspath(s.path): s.mos01 for s in samples}
    train, val = split["train"], split["val"]  # as the trainer saw them (relative to where it ran)
    y_train = np.array([mos[os.path.abspath(p)] for p in train])
    y_val = np.array([mos[os.path.abspath(p)] for p in val])
    out: dict[str, dict] = {"_split": {"train": len(train), "val": len(val), "run": str(run)}}

    t0 = time.perf_counter()
    model = FineTuned(run, threads=1)
    pred = np.array([float(model.forward(load_photo(p).rgb)[0][0]) for p in val])
    out["finetuned"] = {**_scores(pred, y_val), "seconds": round(time.perf_counter() - t0, 1)}
    print("finetuned", out["finetuned"], flush=True)

    def krr(xt: np.ndarray, xv: np.ndarray) -> np.ndarray:
        pre = Preprocess.fit(xt)
        return KernelRidge(None, 1.0 / xt.shape[1], args.lam, 0).fit(pre(xt), y_train).predict(pre(xv))

    if args.frozen_run:
        from safetensors.numpy import load_file

        frun = Path(args.frozen_run)
        if json.loads((frun / "split.json").read_text()) != split:
            raise SystemExit(f"{frun} was trained on another split")
        t0 = time.perf_counter()
        fmodel = FineTuned(frun, threads=1)
        fpred = np.array([float(fmodel.forward(load_photo(p).rgb)[0][0]) for p in val])
        out["frozen-run"] = {**_scores(fpred, y_val), "seconds": round(time.perf_counter() - t0, 1)}
        print("frozen-run", out["frozen-run"], flush=True)
        t0 = time.perf_counter()
        names = json.loads((frun / "features.safetensors.json").read_text())
        stored = load_file(str(frun / "features.safetensors"))["features"].astype(np.float64)
        row = {n: stored[i] for i, n in enumerate(names)}  # the same paths as split.json
        side = json.loads((frun / "config.json").read_text())["preprocessing"]["short_side"]
        out[f"frozen-krr@{side} (run features)"] = {
            **_scores(krr(np.stack([row[p] for p in train]), np.stack([row[p] for p in val])), y_val),
            "inputs": int(stored.shape[1]), "seconds": round(time.perf_counter() - t0, 1)}
        print(out[f"frozen-krr@{side} (run features)"], flush=True)

    classic = None
    if args.classic_cache:
        from picinspector.scoring._features import features
        from picinspector.training.fit_quality import measure_dataset

        measures, errors = measure_dataset(train + val, args.classic_cache, progress=False)
        rows = {p: features(measures[os.path.abspath(p)]) for p in train + val if os.path.abspath(p) in measures}
        names = sorted(next(iter(rows.values())))
        classic = {p: np.array([r.get(n, np.nan) for n in names], np.float64) for p, r in rows.items()}

    for side in args.sides:
        t0 = time.perf_counter()
        feats = backbone_features(train + val, args.features_cache, sides=(side,))[side]
        index = {p: i for i, p in enumerate(feats.paths)}
        xs = {p: feats.stats[index[os.path.abspath(p)]].astype(np.float64) for p in train + val}
        for with_classic in ([False, True] if classic else [False]):
            def x(paths):
                return np.stack([np.concatenate([xs[p], classic[p]]) if with_classic else xs[p] for p in paths])

            xt, xv = x(train), x(val)
            name = f"frozen-krr@{side}" + ("+classic" if with_classic else "")
            out[name] = {**_scores(krr(xt, xv), y_val), "inputs": int(xt.shape[1]),
                         "seconds": round(time.perf_counter() - t0, 1)}
            print(name, out[name], flush=True)

    metrics = json.loads((run / "config.json").read_text())["metrics"]
    out["run-metrics"] = {k: metrics.get(k) for k in ("epoch", "quality_srcc", "quality_plcc")}
    print(json.dumps(out, indent=2))
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
