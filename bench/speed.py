"""Speed: median time of the whole `analyze` per 12-MP JPEG, beside a plain full-resolution Pillow
decode of the same files in the same run. Target: ratio analyze / decode < 1.0.

    .venv/bin/python bench/speed.py [--n 8] [--repeat 3]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time

from _common import WORK

import numpy as np
from PIL import Image

from picinspector import Inspector, __version__
from picinspector.samples import SAMPLES, load_sample


def make_12mp(n: int) -> list[str]:
    """Upscale real sample photos to 4000x3000 and save them at JPEG quality 90."""
    out = WORK / "12mp"
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for name in list(SAMPLES)[:n]:
        path = out / f"{name}_4000x3000_q90.jpg"
        if not path.exists():
            img = Image.fromarray(load_sample(name)).resize((4000, 3000), Image.Resampling.BICUBIC)
            img.save(path, quality=90)
        paths.append(str(path))
    return paths


def full_decode(path: str) -> None:
    with Image.open(path) as im:
        im.convert("RGB").load()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=8)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    paths = make_12mp(args.n)
    inspector = Inspector()
    inspector.analyze(paths[0])  # warm-up: cascades, caches
    full_decode(paths[0])
    dec, ana = [], []
    for path in paths:
        d, a = [], []
        for _ in range(args.repeat):  # interleaved, so both see the same machine state
            t = time.perf_counter(); full_decode(path); d.append(time.perf_counter() - t)
            t = time.perf_counter(); inspector.analyze(path); a.append(time.perf_counter() - t)
        dec.append(min(d)); ana.append(min(a))
    md, ma = statistics.median(dec) * 1e3, statistics.median(ana) * 1e3
    print(f"picinspector {__version__}, Python {platform.python_version()}, {os.cpu_count()} CPUs, "
          f"{len(paths)} JPEGs 4000x3000 q90, best of {args.repeat} each, median over files")
    print("| step | median ms per 12-MP JPEG |")
    print("|---|---|")
    print(f"| Pillow full decode (`Image.open(p).convert('RGB')`) | {md:.1f} |")
    print(f"| PicInspector `analyze` (decode + all measures + scores + scene + feedback) | {ma:.1f} |")
    print(f"| ratio analyze / full decode | {ma / md:.2f} |")
    print("per-file analyze ms:", " ".join(f"{x * 1e3:.0f}" for x in ana))


if __name__ == "__main__":
    np.seterr(all="ignore")
    main()
