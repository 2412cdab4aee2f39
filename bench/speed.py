"""Speed: median time of the whole `analyze` per 12-MP JPEG, beside a plain full-resolution Pillow
decode of the same files in the same run. Target: ratio analyze / decode < 1.0.

    .venv/bin/python bench/speed.py [--n 8] [--repeat 3]
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
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
    inspectors = {"threads=2 (default)": Inspector(), "threads=1": Inspector(threads=1)}
    for ins in inspectors.values():
        ins.analyze(paths[0])  # warm-up: cascades, caches, thread pool
    full_decode(paths[0])
    dec: list[float] = []
    ana: dict[str, list[float]] = {k: [] for k in inspectors}
    for path in paths:
        d: list[float] = []
        a: dict[str, list[float]] = {k: [] for k in inspectors}
        for _ in range(args.repeat):  # interleaved, so all see the same machine state
            t = time.perf_counter(); full_decode(path); d.append(time.perf_counter() - t)
            for name, ins in inspectors.items():
                t = time.perf_counter(); ins.analyze(path); a[name].append(time.perf_counter() - t)
        dec.append(min(d))
        for name in inspectors:
            ana[name].append(min(a[name]))
    md = statistics.median(dec) * 1e3
    print(f"picinspector {__version__}, Python {platform.python_version()}, {os.cpu_count()} CPUs, "
          f"{len(paths)} JPEGs 4000x3000 q90, best of {args.repeat} each, median over files")
    print("| step | median ms per 12-MP JPEG | ratio to full decode |")
    print("|---|---|---|")
    print(f"| Pillow full decode (`Image.open(p).convert('RGB')`) | {md:.1f} | 1.00 |")
    for name, times in ana.items():
        ma = statistics.median(times) * 1e3
        print(f"| PicInspector `analyze`, {name} (decode + all measures + scores + scene + feedback) "
              f"| {ma:.1f} | {ma / md:.2f} |")
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak resident memory of this process: {peak_mb:.0f} MB")


if __name__ == "__main__":
    np.seterr(all="ignore")
    main()
