"""Speed of the effnet engine beside the classic one, in one run: per 12-MP JPEG, the median time of
`analyze` with each engine, a plain full Pillow decode as the reference, the network alone, the peak
resident memory of this process, and batch throughput with ``-j 2``.

    .venv/bin/python bench/effnet_speed.py [--n 8] [--repeat 3] [--batch 16]

Timings are interleaved (each file: decode, classic, effnet, in turn), so all see the same machine
state; CPU seconds are printed too, since wall time on a shared machine is noisy.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import tempfile
import time

from _common import WORK

import numpy as np
from PIL import Image

from picinspector import Inspector, __version__
from picinspector.samples import SAMPLES, load_sample


def make_12mp(n: int) -> list[str]:
    out = WORK / "12mp"
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for name in list(SAMPLES)[:n]:
        path = out / f"{name}_4000x3000_q90.jpg"
        if not path.exists():
            Image.fromarray(load_sample(name)).resize((4000, 3000), Image.Resampling.BICUBIC).save(path, quality=90)
        paths.append(str(path))
    return paths


def full_decode(path: str) -> None:
    with Image.open(path) as im:
        im.convert("RGB").load()


def timed(fn) -> tuple[float, float]:
    t, c = time.perf_counter(), time.process_time()
    fn()
    return time.perf_counter() - t, time.process_time() - c


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=8)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--batch", type=int, default=16, help="photos for the -j 2 batch runs (0: skip)")
    args = ap.parse_args()
    paths = make_12mp(args.n)
    inspectors = {"classic": Inspector(engine="classic"), "effnet": Inspector(engine="effnet")}
    for ins in inspectors.values():
        ins.analyze(paths[0])  # warm-up: cascades, sessions, thread pool
    net = inspectors["effnet"].engine
    photo = inspectors["effnet"].load(paths[0])
    rows: dict[str, list[tuple[float, float]]] = {"decode": [], "classic": [], "effnet": [], "network": []}
    for path in paths:
        best: dict[str, tuple[float, float]] = {}
        for _ in range(args.repeat):
            trial = {"decode": timed(lambda: full_decode(path)),
                     **{k: timed(lambda ins=ins: ins.analyze(path)) for k, ins in inspectors.items()},
                     "network": timed(lambda: net.outputs(photo))}
            best = {k: min(best.get(k, v), v) for k, v in trial.items()}
        for k, v in best.items():
            rows[k].append(v)
    med = {k: (statistics.median(w for w, _ in v) * 1e3, statistics.median(c for _, c in v) * 1e3) for k, v in rows.items()}
    print(f"picinspector {__version__}, {os.cpu_count()} CPUs, {len(paths)} JPEGs 4000x3000 q90, best of "
          f"{args.repeat}, median over files; effnet runs {net.backbone.cfg.name} at shorter sides {net.sides}")
    print("| step | wall ms | CPU ms | wall / full decode |")
    print("|---|---|---|---|")
    for k, label in (("decode", "Pillow full decode"), ("classic", "analyze, classic engine"),
                     ("effnet", "analyze, effnet engine"), ("network", "effnet network alone (ONNX, 2 threads)")):
        print(f"| {label} | {med[k][0]:.1f} | {med[k][1]:.1f} | {med[k][0] / med['decode'][0]:.2f} |")
    print(f"effnet adds {med['effnet'][0] - med['classic'][0]:.1f} ms wall ({med['effnet'][1] - med['classic'][1]:.1f} "
          "ms CPU) per photo at the median")
    print(f"peak resident memory of this process: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB")
    if args.batch:
        from picinspector.batch import run_batch

        batch = (paths * (args.batch // len(paths) + 1))[:args.batch]
        with tempfile.TemporaryDirectory() as tmp:
            for engine in ("classic", "effnet"):
                copies = []
                for i, p in enumerate(batch):
                    dst = os.path.join(tmp, f"{engine}_{i}.jpg")
                    os.link(p, dst) if not os.path.exists(dst) else None
                    copies.append(dst)
                t = time.perf_counter()
                run_batch(copies, os.path.join(tmp, f"{engine}.jsonl"), jobs=2, inspector_options={"engine": engine},
                          progress=False)
                dt = time.perf_counter() - t
                print(f"batch -j 2, {engine}: {len(copies) / dt:.2f} photos/s ({len(copies)} photos, start-up included)")


if __name__ == "__main__":
    np.seterr(all="ignore")
    main()
