"""Speed of the effnet engine beside the classic one, in one run: per 12-MP JPEG, the median time of
`analyze` with each engine, a plain full Pillow decode as the reference, the network alone, the peak
resident memory of a process that runs only the effnet engine, and batch throughput with ``-j 2``.

    .venv/bin/python bench/effnet_speed.py [--n 8] [--repeat 3] [--batch 16]

The 12-MP JPEGs (4000x3000, quality 90) are made from the sample photos in four kinds of content, in
turn: ``grainy`` (fine grain added after upscaling), ``flat`` (smoothed), ``detailed`` (the photo
tiled 4x4, so it is busy at full resolution) and ``night`` (darkened 3 EV, with grain). Timings are
interleaved (each file: decode, classic, effnet, in turn), so all see the same machine state; CPU
seconds are printed too, since wall time on a shared machine is noisy.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time

from _common import WORK, peak_rss_mb

import numpy as np
from PIL import Image

from picinspector import Inspector, __version__
from picinspector.samples import SAMPLES, load_sample

CONTENT = ("grainy", "flat", "detailed", "night")


def _content(img: np.ndarray, kind: str, rng: np.random.Generator) -> np.ndarray:
    """A 4000x3000 image of ``kind`` from a sample photo (uint8 RGB)."""
    import cv2

    if kind == "detailed":
        tile = cv2.resize(img, (1000, 750), interpolation=cv2.INTER_AREA)
        big = np.tile(tile, (4, 4, 1))
    else:
        big = cv2.resize(img, (4000, 3000), interpolation=cv2.INTER_CUBIC)
    big = big.astype(np.float32)
    if kind == "flat":
        big = cv2.GaussianBlur(big, (0, 0), 6.0)
    if kind == "night":
        big *= 0.125
    if kind in ("grainy", "night"):
        big += rng.normal(0, 6.0, big.shape[:2])[..., None].astype(np.float32)
    return np.clip(big, 0, 255).astype(np.uint8)


def make_12mp(n: int) -> list[str]:
    out = WORK / "12mp"
    out.mkdir(parents=True, exist_ok=True)
    names = list(SAMPLES)
    paths = []
    for i in range(n):
        name, kind = names[i % len(names)], CONTENT[i % len(CONTENT)]
        path = out / f"{name}_{kind}_4000x3000_q90.jpg"
        if not path.exists():
            img = _content(load_sample(name), kind, np.random.default_rng(i))
            Image.fromarray(img).save(path, quality=90)
        paths.append(str(path))
    return paths


def peak_rss(paths: list[str], engine: str) -> float:
    """Peak resident memory (MB) of a fresh process that analyses ``paths`` with ``engine``."""
    code = (f"import sys\nsys.path.insert(0, {os.path.dirname(os.path.abspath(__file__))!r})\n"
            f"from _common import peak_rss_mb\nfrom picinspector import Inspector\nins = Inspector(engine={engine!r})\n"
            "for p in sys.argv[1:]:\n    ins.analyze(p)\nprint(peak_rss_mb())")
    out = subprocess.run([sys.executable, "-c", code, *paths], capture_output=True, text=True, check=True)
    return float(out.stdout.strip().splitlines()[-1])


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
    from picinspector.measures import measure_all
    from picinspector.models.effnet._heads import classic_values

    outs, measures = net.outputs(photo), measure_all(photo)
    qv, sv = classic_values(net.quality_head.spec, measures), classic_values(net.scene_head.spec, measures)
    rows: dict[str, list[tuple[float, float]]] = {"decode": [], "classic": [], "effnet": [], "network": [],
                                                  "quality_head": [], "scene_head": []}
    for path in paths:
        best: dict[str, tuple[float, float]] = {}
        for _ in range(args.repeat):
            trial = {"decode": timed(lambda: full_decode(path)),
                     **{k: timed(lambda ins=ins: ins.analyze(path)) for k, ins in inspectors.items()},
                     "network": timed(lambda: net.outputs(photo)),
                     "quality_head": timed(lambda: [net.quality_head.predict(outs, qv) for _ in range(10)]),
                     "scene_head": timed(lambda: [net.scene_head.predict(outs, sv) for _ in range(10)])}
            best = {k: min(best.get(k, v), v) for k, v in trial.items()}
        for k, v in best.items():
            rows[k].append(v)
    med = {k: (statistics.median(w for w, _ in v) * 1e3, statistics.median(c for _, c in v) * 1e3) for k, v in rows.items()}
    print(f"picinspector {__version__}, {os.cpu_count()} CPUs, {len(paths)} JPEGs 4000x3000 q90 "
          f"({', '.join(CONTENT[:len(paths)])} content, in turn), best of "
          f"{args.repeat}, median over files; effnet runs {net.backbone.cfg.name} at shorter sides {net.sides}")
    print("| step | wall ms | CPU ms | wall / full decode |")
    print("|---|---|---|---|")
    for k in ("quality_head", "scene_head"):  # timed over 10 calls
        med[k] = (med[k][0] / 10, med[k][1] / 10)
    for k, label in (("decode", "Pillow full decode"), ("classic", "analyze, classic engine"),
                     ("effnet", "analyze, effnet engine"), ("network", "effnet network alone (ONNX, 2 threads)"),
                     ("quality_head", "quality head alone (given the network outputs)"),
                     ("scene_head", "scene head alone (given the network outputs)")):
        print(f"| {label} | {med[k][0]:.2f} | {med[k][1]:.2f} | {med[k][0] / med['decode'][0]:.3f} |")
    print(f"effnet adds {med['effnet'][0] - med['classic'][0]:.1f} ms wall ({med['effnet'][1] - med['classic'][1]:.1f} "
          "ms CPU) per photo at the median")
    print(f"peak resident memory of this process (both engines loaded): "
          f"{peak_rss_mb():.0f} MB; of a fresh process analysing these "
          f"files with one engine: effnet {peak_rss(paths, 'effnet'):.0f} MB, classic {peak_rss(paths, 'classic'):.0f} MB")
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
