"""Exploration behind the effnet quality head (docs/effnet.md): kernel ridge on all 9 maps at 384 + the
classic features, projected on k principal components fitted inside each fold; 5-fold CV
(KFold(shuffle=True, random_state=0) over the photos sorted by path) over a grid of k, gamma multiplier
and lambda, in one pass per fold (the eigendecomposition is shared by every k).

    OMP_NUM_THREADS=1 .venv/bin/python bench/effnet_pca_cv.py 128,256,512,1024 1,2,4 0.1,0.3,1 \
        --measures /work/cache/biq.handmade.jsonl --features /tmp/effnet2/feat/efficientnet-lite0-s384.npz

(about 13 min on the shared 2-core machine). ``--measures``: a classic measures cache (``fit-quality
--cache``); ``--features``: the 384 px file of a ``--features-cache`` folder.
"""
import argparse
import csv
import json
import os
import time

from _common import SHARED_BIQ

import numpy as np
from scipy.linalg import eigh, cho_factor, cho_solve
from sklearn.model_selection import KFold
from picinspector.scoring._features import features, feature_matrix
from picinspector.training.metrics import quality_metrics

ap = argparse.ArgumentParser()
ap.add_argument("ks"); ap.add_argument("gammas"); ap.add_argument("lams")
ap.add_argument("--measures", required=True); ap.add_argument("--features", required=True)
args = ap.parse_args()
root = os.path.realpath(SHARED_BIQ)  # keys: real paths (../shared may be a link)
labels = {f"{root}/images/" + r["image"]: float(r["mos"]) for r in csv.DictReader(open(root + "/labels.csv"))}
measures = {}
for line in open(args.measures):
    r = json.loads(line)
    if "measures" in r: measures[os.path.realpath(r["path"])] = r["measures"]
f = np.load(args.features)
idx = {os.path.realpath(str(p)): i for i, p in enumerate(f["paths"])}
common = sorted(set(idx) & set(measures) & set(labels))
y = np.array([labels[p] for p in common])
names = sorted(features(measures[common[0]]))
Xc = feature_matrix([measures[p] for p in common], names)
X = np.concatenate([f["stats"][[idx[p] for p in common]].astype(np.float64), Xc], 1)
d = X.shape[1]
print(len(y), d, flush=True)
KS = [int(k) for k in args.ks.split(",")]
GMS = [float(g) for g in args.gammas.split(",")]
LAMS = [float(v) for v in args.lams.split(",")]
splits = list(KFold(5, shuffle=True, random_state=0).split(y))
oof = {(k, g, l): np.empty(len(y)) for k in KS for g in GMS for l in LAMS}
t0 = time.time()
for fi, (tr, te) in enumerate(splits):
    A = X[tr]
    fill = np.nanmedian(A, 0); fill = np.where(np.isfinite(fill), fill, 0)
    Xf = np.where(np.isfinite(X), X, fill); mu = Xf[tr].mean(0); sd = Xf[tr].std(0); sd[sd < 1e-12] = 1
    Z = (Xf - mu) / sd
    kmax = max(KS)
    w, V = eigh(Z[tr].T @ Z[tr] / len(tr), subset_by_index=[d - kmax, d - 1])
    V = V[:, ::-1]; w = w[::-1]
    print(f"fold {fi}: eigh {time.time()-t0:.0f}s, var kept {[round(float(w[:k].sum()) / d, 3) for k in KS]}", flush=True)
    m = y[tr].mean()
    for k in KS:
        P = Z @ V[:, :k]
        n2 = (P * P).sum(1)
        D = np.maximum(n2[:, None] + n2[None] - 2 * P @ P.T, 0)
        for g in GMS:
            K = np.exp(-(g / d) * D)
            Ktr = K[np.ix_(tr, tr)]; Kte = K[np.ix_(te, tr)]
            for l in LAMS:
                a = cho_solve(cho_factor(Ktr + l * np.eye(len(tr))), y[tr] - m)
                oof[(k, g, l)][te] = Kte @ a + m
    print(f"  fold {fi} done {time.time()-t0:.0f}s", flush=True)
res = []
for key, o in oof.items():
    met = quality_metrics(o, y); res.append((met["srcc"], met["plcc"], key))
for s, p, key in sorted(res, reverse=True):
    print(f"k={key[0]} g*{key[1]} lam {key[2]}: SRCC {s:.4f} PLCC {p:.4f}", flush=True)
