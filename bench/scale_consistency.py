"""Does a photo keep its quality score when it is enlarged? People see the same photo; the score should
barely move. BIQ2021 photos (512 px long side, from ../shared) are enlarged 2x (bicubic, 1024 px: the
working size) and both versions are analysed; the script prints the mean signed and absolute difference
of ``quality`` per engine.

    .venv/bin/python bench/scale_consistency.py [--n 40] [--factor 2] [--engine classic] [--engine effnet]
"""

from __future__ import annotations

import argparse

from _common import biq_images

import cv2
import numpy as np
from PIL import Image

from picinspector import Inspector


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=40)
    ap.add_argument("--factor", type=float, default=2.0)
    ap.add_argument("--engine", action="append", help="classic, effnet (default: both)")
    args = ap.parse_args()
    paths = biq_images(args.n, seed=0)
    if not paths:
        raise SystemExit("needs ../shared/data/biq2021_train (the BIQ2021 photos)")
    for engine in args.engine or ["classic", "effnet"]:
        with Inspector(engine=engine, threads=1) as ins:
            diffs = []
            for path in paths:
                img = np.asarray(Image.open(path).convert("RGB"))
                size = (int(round(img.shape[1] * args.factor)), int(round(img.shape[0] * args.factor)))
                big = cv2.resize(img, size, interpolation=cv2.INTER_CUBIC)
                diffs.append(ins.analyze(big).scores["quality"] - ins.analyze(img).scores["quality"])
        d = np.asarray(diffs)
        print(f"{engine}: {len(d)} photos, quality({args.factor:g}x) - quality(original): mean {d.mean():+.1f}, "
              f"mean |diff| {np.abs(d).mean():.1f}, max |diff| {np.abs(d).max():.1f} points")


if __name__ == "__main__":
    np.seterr(all="ignore")
    main()
