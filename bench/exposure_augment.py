"""Can the effnet quality head learn over-exposure from brightened copies of the training photos?

An experiment towards issue 9's exposure target (the shipped head hardly reacts to a photo made 1-2 EV
brighter: SRCC -0.14 / -0.04 on the graded distortions, beside the classic engine's -0.10 / -0.11).
BIQ2021 holds no opinion scores of such copies, so their targets are made from the opinion scores it
does hold, in the manner of ranking-based augmentation (Liu et al., RankIQA, ICCV 2017): a copy scores
its photo's MOS plus ``scale`` times the change that BIQ2021's people give, on average, for that much
more clipped highlight area (the training fold's MOS against clipped share, fitted monotone
decreasing). A fraction of the training photos (seed 0, never the distortion benchmark's photos) get a
+1 EV and a +2 EV copy (linear light x2 / x4, saved as JPEG q75 like the originals), which join the
training folds only; the 5-fold CV (seed 0, the shipped head's recipe ``all@384+classic/pca512``) is on
the real photos alone. Then each configuration is refitted on every photo and run on the graded
distortions of bench/distortions.py (20 photos; the 8 package samples were never trained on).

    .venv/bin/python bench/exposure_augment.py [--scale 0 --scale 0.3] [--fraction 0.25]

Needs ../shared (BIQ2021). The head input rows (network at 384 px plus the classic measures) of the
5,000 photos and their copies are computed once (about 25 min of CPU on 2 cores) and kept in
bench/_work/exposure_augment/.
"""

from __future__ import annotations

import argparse
import io
import sys
from multiprocessing import Pool

import numpy as np
from _common import SHARED_BIQ, WORK, biq_images

OUT = WORK / "exposure_augment"
EVS = (1.0, 2.0)
CANDIDATE = "all@384+classic/pca512"
COLUMNS = ("over_exposure", "under_exposure", "contrast_reduction", "desaturation", "gaussian_blur",
           "gaussian_noise", "jpeg")

_state: dict = {}


def _init() -> None:
    import cv2

    from picinspector import Inspector

    cv2.setNumThreads(1)
    np.seterr(all="ignore")
    ins = Inspector(engine="effnet", threads=1)
    _state.update(ins=ins, spec=ins.engine.quality_head.spec)


def _row(photo) -> tuple[np.ndarray, float, float]:
    """The quality head's input row, the clipped-highlight share and the guard factor of one photo."""
    from picinspector.measures import measure_all
    from picinspector.models.effnet._heads import assemble, classic_values
    from picinspector.scoring import attribute_scores
    from picinspector.scoring._quality import guard_factor

    ins, spec = _state["ins"], _state["spec"]
    m = measure_all(photo)
    x = assemble(spec, ins.engine.prepare(photo), classic_values(spec, m))
    return x, float(m["highlights_clipped_pct"]), guard_factor(m, attribute_scores(m))


def brightened(data: bytes, ev: float) -> bytes:
    """The photo ``ev`` stops brighter in linear light (the distortion benchmark's over-exposure),
    re-saved as JPEG q75 (BIQ2021's own quality)."""
    from distortions import _exposure
    from PIL import Image

    rgb = np.asarray(Image.open(io.BytesIO(data)).convert("RGB"), np.float32) / 255.0
    u8 = (np.clip(_exposure(rgb, ev), 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
    buf = io.BytesIO()
    Image.fromarray(u8).save(buf, format="JPEG", quality=75)
    return buf.getvalue()


def _photo_rows(path: str) -> dict:
    from picinspector.io import load_photo_bytes

    data = open(path, "rb").read()
    out: dict = {}
    for i, blob in enumerate([data, *(brightened(data, ev) for ev in EVS)]):
        out[f"x{i}"], out[f"clip{i}"], _ = _row(load_photo_bytes(blob, path=path))
    return out


def training_rows(paths: list[str]) -> dict[str, np.ndarray]:
    cache = OUT / "rows.npz"
    if cache.exists():
        got = np.load(cache)
        if [str(p) for p in got["paths"]] == paths:
            return dict(got)
    OUT.mkdir(parents=True, exist_ok=True)
    with Pool(2, initializer=_init) as pool:
        res = pool.map(_photo_rows, paths, chunksize=20)
    rows = {k: np.array([r[k] for r in res]) for k in res[0]}
    np.savez(cache, paths=np.array(paths), **rows)
    return rows


def _distortion_rows(item) -> list:
    from distortions import DISTORTIONS, distorted

    from picinspector.io import photo_from_pil

    name, base = item
    out = []
    for dname in COLUMNS:
        d = DISTORTIONS[dname]
        for container in ("jpeg", "png"):
            for level in d.levels:
                x, _, g = _row(photo_from_pil(distorted(base, d, level, container)))
                out.append((name, dname, container, x, g))
    return out


def distortion_rows(n_biq: int) -> list:
    from distortions import photos

    cache = OUT / f"distortions_{n_biq}.npz"
    if cache.exists():
        got = np.load(cache)
        return list(zip(got["name"], got["dname"], got["container"], got["x"], got["g"]))
    with Pool(2, initializer=_init) as pool:
        rows = [r for part in pool.map(_distortion_rows, list(photos(n_biq).items())) for r in part]
    np.savez(cache, **{k: np.array([r[i] for r in rows]) for i, k in enumerate(("name", "dname", "container", "x", "g"))})
    return rows


def fit(rows, y, train: np.ndarray, pick: np.ndarray, scale: float):
    """The head fitted on the ``train`` photos plus the copies of those among them in ``pick``."""
    from sklearn.isotonic import IsotonicRegression

    from picinspector.training.effnet import QUALITY_CANDIDATES, _fit_kernel_ridge

    xs, ys = [rows["x0"][train]], [y[train]]
    if scale > 0:
        curve = IsotonicRegression(increasing=False, out_of_bounds="clip").fit(rows["clip0"][train], y[train]).predict
        sel = train[pick[train]]
        base = curve(rows["clip0"][sel])
        for i in range(1, len(EVS) + 1):
            xs.append(rows[f"x{i}"][sel])
            ys.append(y[sel] + scale * np.minimum(0.0, curve(rows[f"clip{i}"][sel]) - base))
    return _fit_kernel_ridge(QUALITY_CANDIDATES[CANDIDATE], np.concatenate(xs), np.concatenate(ys), 0)


def main() -> None:
    from scipy.stats import pearsonr, spearmanr
    from sklearn.model_selection import KFold

    from picinspector.datasets import load_dataset
    from picinspector.samples import SAMPLES

    ap = argparse.ArgumentParser()
    ap.add_argument("--scale", type=float, action="append", help="target scale(s) of the copies (0: none)")
    ap.add_argument("--fraction", type=float, default=0.25, help="share of the training photos given copies")
    ap.add_argument("--biq", type=int, default=12, help="BIQ2021 photos in the distortion set")
    args = ap.parse_args()
    scales = args.scale or [0.0, 0.3]
    if not SHARED_BIQ.is_dir():
        sys.exit(f"needs BIQ2021 at {SHARED_BIQ}")
    samples = [s for s in load_dataset(str(SHARED_BIQ))[1] if s.mos01 is not None]
    paths = [str(s.path) for s in samples]
    y = np.array([s.mos01 for s in samples])
    rows = training_rows(paths)
    held = {str(p) for p in biq_images(args.biq)}
    allowed = np.array([p not in held for p in paths])
    pick = allowed & (np.random.default_rng(0).random(len(y)) < args.fraction)
    dist = distortion_rows(args.biq)
    x_dist = np.array([r[3] for r in dist])
    g_dist = np.array([r[4] for r in dist])
    print(f"{len(y)} photos, {int(pick.sum())} with +1 / +2 EV copies; CV 5-fold seed 0 on the real photos")
    print()
    print("| copies' target scale | CV SRCC | CV PLCC | " + " | ".join(f"{c} (jpeg / png)" for c in COLUMNS)
          + " | over_exposure, package samples only |")
    print("|---|---|---|" + "---|" * (len(COLUMNS) + 1))
    for scale in scales:
        oof = np.empty(len(y))
        for train, test in KFold(5, shuffle=True, random_state=0).split(y):
            pre, est = fit(rows, y, train, pick, scale)
            oof[test] = est.predict(pre(rows["x0"][test]))
        pre, est = fit(rows, y, np.arange(len(y)), pick, scale)
        q = 100.0 * np.clip(est.predict(pre(x_dist)), 0.0, 1.0) * g_dist
        rho: dict = {}
        for i in range(0, len(dist), 5):
            name, dname, container = dist[i][:3]
            qq = q[i:i + 5]
            r = 0.0 if np.ptp(qq) < 1e-9 else float(spearmanr(range(5), qq).statistic)
            rho.setdefault((dname, container), []).append(r)
            if name in SAMPLES:
                rho.setdefault((dname, container, "samples"), []).append(r)
        cells = [f"{np.mean(rho[c, 'jpeg']):+.2f} / {np.mean(rho[c, 'png']):+.2f}" for c in COLUMNS]
        samples_over = (f"{np.mean(rho['over_exposure', 'jpeg', 'samples']):+.2f} / "
                        f"{np.mean(rho['over_exposure', 'png', 'samples']):+.2f}")
        print(f"| {scale:g} | {spearmanr(oof, y).statistic:.4f} | {pearsonr(oof, y).statistic:.4f} | "
              + " | ".join(cells) + f" | {samples_over} |", flush=True)


if __name__ == "__main__":
    main()
