"""How firm are the effnet scene head's CV figures? The same candidates over several fold seeds, and
refitted on inputs with tiny noise (the size by which recomputed backbone outputs differ).

    .venv/bin/python bench/scene_robustness.py --labels ../shared/data/biq2021_train/scenes.csv \
        --labels data/scene_labels/biq2021_scenes_extra.csv --cache biq.jsonl --features-cache biq.effnet-features \
        [--candidates NAME,NAME] [--seeds 0,1,2,3,4] [--noise 2e-6 --draws 3]

Prints, per candidate, top-1, any-label hit and the lowest class recall (with night's) for each fold
seed, then for each noisy refit at seed 0 (inputs times 1 + noise x N(0, 1)). Reads the caches that
`picinspector fit-scene` writes (and fills them if needed). Needs ../shared (BIQ2021).
"""

from __future__ import annotations

import argparse
import os

import numpy as np

DEFAULT = "embedding+stem+groups+cues+night@384/night3,embedding+stem+groups+cues+night@384/night3/cues3"


def main() -> None:
    from picinspector.training.effnet import SCENE_CANDIDATES, fit_scene_head, head_sides, read_scene_labels
    from picinspector.training.effnet_features import backbone_features
    from picinspector.training.fit_quality import measure_dataset

    ap = argparse.ArgumentParser()
    ap.add_argument("--labels", action="append", required=True, help="label files (the first one is scored)")
    ap.add_argument("--images", default=None, help="folder of the images (default: beside each CSV)")
    ap.add_argument("--cache", required=True, help="classic measures cache (JSONL)")
    ap.add_argument("--features-cache", required=True, help="backbone outputs cache folder")
    ap.add_argument("--candidates", default=DEFAULT)
    ap.add_argument("--seeds", default="0,1,2,3,4")
    ap.add_argument("--noise", type=float, default=2e-6)
    ap.add_argument("--draws", type=int, default=3)
    args = ap.parse_args()
    cands = args.candidates.split(",")
    table = read_scene_labels(args.labels, args.images)
    paths = [p for p in table if os.path.isfile(p)]
    measures, _ = measure_dataset(paths, args.cache, jobs=2, progress=False)
    feats = backbone_features(paths, args.features_cache, sides=head_sides(*(SCENE_CANDIDATES[c] for c in cands)))
    have = [set(f.paths) for f in feats.values()]
    keep = [p for p in paths if p in measures and all(p in h for h in have)]
    base = {s: {k: getattr(f, k)[f.rows(keep)] for k in ("stats", "embedding", "logits")} for s, f in feats.items()}
    labels, rows = [table[p] for p in keep], [measures[p] for p in keep]
    print(f"{len(keep)} photos; CV on {os.path.basename(args.labels[0])}; labels: "
          + ", ".join(os.path.basename(f) for f in args.labels))
    print()
    print("| candidate | run | top-1 | any-label hit | night recall | lowest class recall |")
    print("|---|---|---|---|---|---|")
    runs = [(f"fold seed {s}", int(s), None) for s in args.seeds.split(",")]
    runs += [(f"seed 0, noise {args.noise:g} draw {d}", 0, d) for d in range(1, args.draws + 1)]
    for label, seed, draw in runs:
        inputs = base
        if draw is not None:
            rng = np.random.default_rng(draw)
            inputs = {s: {k: (v * (1 + args.noise * rng.standard_normal(v.shape))).astype(v.dtype) for k, v in o.items()}
                      for s, o in base.items()}
        res = fit_scene_head(inputs, rows, labels, trained_on={}, candidates=cands, seed=seed)
        for c in cands:
            cv = res.cv[c]
            rec = {k: v for k, v in cv["recall"].items() if v is not None}
            low = min(rec, key=rec.get)
            print(f"| {c} | {label} | {cv['top1']:.3f} | {cv['any_label_hit']:.3f} | {rec['night']:.2f} | "
                  f"{rec[low]:.2f} ({low}) |", flush=True)


if __name__ == "__main__":
    main()
