"""Speed: `analyze` per 12-MP JPEG on varied content, beside a plain full Pillow decode of the same
file, interleaved in one run. Target: analyze / decode <= 0.8 on every kind of content.

The 12-MP JPEGs (4000x3000, quality 90) are made from real photos, the packages' sample photos plus
BIQ2021 photos from ../shared when present, in five kinds of content that load a decoder and the
measures differently:

- ``smooth``: the photo upscaled (bicubic) and nothing else: smooth, few DCT coefficients;
- ``grainy``: upscaled, plus fine film-like grain (luma sigma 4 levels, a little chroma): many
  coefficients, the slowest entropy decoding for a given size;
- ``flat``: a large flat sky gradient with the photo small in one corner, light grain: most blocks
  hold a DC value alone, so a full decode is cheap and the fixed costs of the measures weigh most;
- ``detailed``: a 4x4 mosaic of photos at close to their native scale, sharpened, light grain:
  dense edges everywhere (the most work for the edge-based measures);
- ``night``: the photo 3 EV darker with shot-like noise that grows in the shadows, plus small bright
  lights.

Times are the best of ``--repeat`` runs per file. Each step runs its ``--repeat`` runs in a row, so
that it is timed in its own steady state, as in a batch (an analysis follows an analysis, a decode a
decode), and the steps follow each other file by file, so that all see the same machine state; the
ratio is taken per file and its median and maximum reported per kind. One more column times the
2-thread analysis right after a full decode instead (each of its runs follows one): the decode leaves
freed memory that the analysis then has to fault back in, a cost a batch does not pay. CPU time
(user + system of the process, all threads) is reported beside the wall-clock time. "load alone" is the loader by itself (the DCT-domain
decode to the working size, its conversion and orientation): a step the analysis cannot skip and that
no second core can share (entropy decoding is sequential), so ``load / decode`` is the floor under the
analysis's ratio. ``--profile`` adds per-group timings of the measures (each group run alone,
single-threaded).

    .venv/bin/python bench/speed.py [--per-kind 4] [--repeat 3] [--profile]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time
from pathlib import Path
from typing import Callable

from _common import WORK, biq_images, peak_rss_mb

import cv2
import numpy as np
from PIL import Image

from picinspector import Inspector, __version__
from picinspector.samples import SAMPLES, load_sample

SIZE = (4000, 3000)
QUALITY = 90


def _sources(n: int) -> list[tuple[str, np.ndarray]]:
    """``n`` real photos (uint8 RGB): the package samples first, then BIQ2021 photos (seed 0)."""
    out = [(name, np.asarray(load_sample(name))) for name in SAMPLES]
    for path in biq_images(max(0, n - len(out)) + 8, seed=0):
        out.append((path.stem, np.asarray(Image.open(path).convert("RGB"))))
    rng = np.random.default_rng(0)
    order = rng.permutation(len(out))
    picked = [out[i] for i in order[:n]]
    return [(k, v if v.ndim == 3 else np.repeat(v[..., None], 3, 2)) for k, v in picked]


def _upscale(rgb: np.ndarray, size=SIZE) -> np.ndarray:
    return cv2.resize(rgb.astype(np.float32) / 255.0, size, interpolation=cv2.INTER_CUBIC)


def _grain(img: np.ndarray, sigma_levels: float, chroma: float, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    h, w = img.shape[:2]
    luma = rng.standard_normal((h, w), dtype=np.float32) * (sigma_levels / 255.0)
    out = img + luma[..., None]
    if chroma > 0:
        out += rng.standard_normal((h, w, 3), dtype=np.float32) * (chroma / 255.0)
    return out


def smooth(rgb: np.ndarray, seed: int) -> np.ndarray:
    return _upscale(rgb)


def grainy(rgb: np.ndarray, seed: int) -> np.ndarray:
    return _grain(_upscale(rgb), 4.0, 1.5, seed)


def flat(rgb: np.ndarray, seed: int) -> np.ndarray:
    w, h = SIZE
    top = np.array([0.45, 0.62, 0.86], np.float32)
    bottom = np.array([0.80, 0.86, 0.93], np.float32)
    t = np.linspace(0.0, 1.0, h, dtype=np.float32)[:, None, None]
    img = np.broadcast_to(top * (1 - t) + bottom * t, (h, w, 3)).copy()
    small = _upscale(rgb, (w // 4, round(w // 4 * rgb.shape[0] / rgb.shape[1])))
    img[h - small.shape[0] - 200:h - 200, w - small.shape[1] - 300:w - 300] = small
    return _grain(img, 1.0, 0.0, seed)


def detailed(rgb: np.ndarray, seed: int, others: list[np.ndarray] | None = None) -> np.ndarray:
    tiles = [rgb] + list(others or [])
    w, h = SIZE
    tw, th = w // 4, h // 4
    img = np.empty((h, w, 3), np.float32)
    for k in range(16):
        src = tiles[k % len(tiles)]
        i, j = divmod(k, 4)
        img[i * th:(i + 1) * th, j * tw:(j + 1) * tw] = cv2.resize(
            src.astype(np.float32) / 255.0, (tw, th), interpolation=cv2.INTER_CUBIC)
    blurred = cv2.GaussianBlur(img, (0, 0), 1.0)
    img = img + 0.8 * (img - blurred)  # unsharp mask, as a camera's sharpening does
    return _grain(img, 2.0, 0.5, seed)


def night(rgb: np.ndarray, seed: int) -> np.ndarray:
    img = _upscale(rgb)
    lin = np.where(img <= 0.04045, img / 12.92, ((np.clip(img, 0, 1) + 0.055) / 1.055) ** 2.4) / 8.0
    rng = np.random.default_rng(seed)
    lin = lin + rng.standard_normal(lin.shape, dtype=np.float32) * np.sqrt(lin * 2e-4 + 1e-6)
    out = np.where(lin <= 0.0031308, 12.92 * lin, 1.055 * np.clip(lin, 0.0031308, None) ** (1 / 2.4) - 0.055)
    for _ in range(40):  # lamps and lit windows
        x, y = int(rng.uniform(0, SIZE[0])), int(rng.uniform(0, SIZE[1] * 0.7))
        cv2.circle(out, (x, y), int(rng.uniform(4, 18)), (1.0, 0.9, 0.7), -1, cv2.LINE_AA)
    return out.astype(np.float32)


KINDS: dict[str, Callable[..., np.ndarray]] = {
    "smooth": smooth, "grainy": grainy, "flat": flat, "detailed": detailed, "night": night,
}


def make_files(per_kind: int) -> dict[str, list[str]]:
    """Write (once) ``per_kind`` 12-MP JPEGs of every kind; returns kind -> paths."""
    out_dir = WORK / "12mp_varied"
    out_dir.mkdir(parents=True, exist_ok=True)
    sources = _sources(max(per_kind, 4) + 3)
    files: dict[str, list[str]] = {}
    for kind, make in KINDS.items():
        files[kind] = []
        for i in range(per_kind):
            name, rgb = sources[i]
            path = out_dir / f"{kind}_{name}_4000x3000_q{QUALITY}.jpg"
            if not path.exists():
                kw = {"others": [s[1] for s in sources[i + 1:i + 4]]} if kind == "detailed" else {}
                img = make(rgb, seed=i, **kw)
                u8 = (np.clip(img, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
                Image.fromarray(u8).save(path, quality=QUALITY)
            files[kind].append(str(path))
    return files


def full_decode(path: str) -> None:
    with Image.open(path) as im:
        im.convert("RGB").load()


def _timed(func: Callable[[], object]) -> tuple[float, float]:
    """(wall s, CPU s of the whole process) of one call."""
    c, t = time.process_time(), time.perf_counter()
    func()
    return time.perf_counter() - t, time.process_time() - c


def profile_groups(paths: list[str], repeat: int) -> tuple[dict[str, float], float]:
    """Median CPU ms per step, each run alone on one thread (OpenCV on one thread too, so that a
    step's CPU is all on its own thread), and the modelled wall time on two free cores: the
    serial steps plus the longest-processing-time-first schedule of the groups on two threads."""
    import cv2

    from picinspector.measures import MEASURE_GROUPS

    threads = cv2.getNumThreads()
    cv2.setNumThreads(1)
    try:
        ins = Inspector(engine="classic", threads=1)
        stats = "statistics copy (<= 512 px: RGB, luma, Lab)"
        steps = ["load (DCT-domain decode)", "luma", stats, *MEASURE_GROUPS, "scores + scene + feedback"]
        times: dict[str, list[float]] = {k: [] for k in steps}
        for path in paths:
            best: dict[str, float] = {k: 1e9 for k in steps}
            for _ in range(repeat):
                t = time.thread_time(); photo = ins.load(path); best[steps[0]] = min(best[steps[0]], time.thread_time() - t)
                t = time.thread_time(); _ = photo.gray; best["luma"] = min(best["luma"], time.thread_time() - t)
                t = time.thread_time(); _ = (photo.stats_rgb, photo.stats_gray, photo.stats_lab)
                best[stats] = min(best[stats], time.thread_time() - t)
                measures: dict = {}
                for name, group in MEASURE_GROUPS.items():
                    t = time.thread_time(); measures.update(group.func(photo))
                    best[name] = min(best[name], time.thread_time() - t)
                t = time.thread_time()
                scores, scene = ins.engine.predict(photo, measures)
                ins.write_feedback(photo, measures, scores, scene)
                best[steps[-1]] = min(best[steps[-1]], time.thread_time() - t)
            for k, v in best.items():
                times[k].append(v)
    finally:
        cv2.setNumThreads(threads)
    med = {k: statistics.median(v) * 1e3 for k, v in times.items()}
    # Two threads, costliest group first (as measure_all orders them); the statistics copy goes with
    # the costliest of the groups that read it (nss, exposure, color).
    lanes = [0.0, 0.0]
    copy = steps[2]
    jobs = sorted(((med[g] + (med[copy] if g == "nss" else 0.0), g) for g in MEASURE_GROUPS), reverse=True)
    for cost, _ in jobs:
        lanes[lanes.index(min(lanes))] += cost
    serial = med[steps[0]] + med["luma"] + med[steps[-1]]
    return med, serial + max(lanes)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--per-kind", type=int, default=4, help="12-MP JPEGs per kind of content")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--profile", action="store_true", help="add per-measure-group timings")
    args = ap.parse_args()
    files = make_files(args.per_kind)
    # The classic engine: its target is a share of one decode (the effnet engine: bench/effnet_speed.py).
    inspectors = {"2 threads (default)": Inspector(engine="classic"), "1 thread": Inspector(engine="classic", threads=1)}
    first = next(iter(files.values()))[0]
    for ins in inspectors.values():
        ins.analyze(first)  # warm-up: cascades, caches, thread pool
    full_decode(first)

    rows = []
    for kind, paths in files.items():
        per_file = []
        for path in paths:
            loader, default = inspectors["1 thread"], inspectors["2 threads (default)"]
            decodes = [_timed(lambda: full_decode(path)) for _ in range(args.repeat)]
            ld = [_timed(lambda: loader.load(path))[0] for _ in range(args.repeat)]
            a = {name: [_timed(lambda: ins.analyze(path)) for _ in range(args.repeat)]
                 for name, ins in inspectors.items()}
            after_decode = []
            for _ in range(args.repeat):
                full_decode(path)
                after_decode.append(_timed(lambda: default.analyze(path))[0])
            per_file.append({"decode": min(w for w, _ in decodes), "decode_cpu": min(c for _, c in decodes),
                             "load": min(ld), "after decode": min(after_decode),
                             "size_mb": os.path.getsize(path) / 1e6,
                             **{n: min(w for w, _ in v) for n, v in a.items()},
                             **{n + " cpu": min(c for _, c in v) for n, v in a.items()}})
        rows.append((kind, per_file))

    print(f"picinspector {__version__}, Python {platform.python_version()}, {os.cpu_count()} CPUs; "
          f"{sum(len(p) for p in files.values())} JPEGs {SIZE[0]}x{SIZE[1]} q{QUALITY} "
          f"({args.per_kind} per kind), best of {args.repeat} each, each step's runs in a row")
    names = list(inspectors)
    print("| content | file MB | full decode ms | load alone ms (x decode) | "
          + " | ".join(f"`analyze` {n} ms" for n in names)
          + " | " + " | ".join(f"ratio {n}: median (max)" for n in names)
          + " | ratio 2 threads right after a full decode: median (max) | CPU ratio, 2 threads |")
    print("|---|---|---|---|" + "---|" * (2 * len(names) + 2))
    worst = 0.0
    for kind, per_file in rows:
        med = lambda key: statistics.median(r[key] for r in per_file)  # noqa: E731
        ratios = {n: [r[n] / r["decode"] for r in per_file] for n in names}
        cpu_ratio = statistics.median(r[names[0] + " cpu"] / max(r["decode_cpu"], 1e-9) for r in per_file)
        worst = max(worst, max(ratios[names[0]]))
        load_ratio = statistics.median(r["load"] / r["decode"] for r in per_file)
        after = [r["after decode"] / r["decode"] for r in per_file]
        print(f"| {kind} | {med('size_mb'):.1f} | {med('decode') * 1e3:.1f} | {med('load') * 1e3:.1f} ({load_ratio:.2f}) | "
              + " | ".join(f"{med(n) * 1e3:.1f}" for n in names) + " | "
              + " | ".join(f"{statistics.median(ratios[n]):.2f} ({max(ratios[n]):.2f})" for n in names)
              + f" | {statistics.median(after):.2f} ({max(after):.2f}) | {cpu_ratio:.2f} |")
    print(f"worst file, 2 threads: {worst:.2f} x a full decode (target <= 0.8)")
    peak_mb = peak_rss_mb()
    print(f"peak resident memory of this process: {peak_mb:.0f} MB")
    if args.profile:
        print()
        all_paths = [p for ps in files.values() for p in ps]
        prof, model = profile_groups(all_paths, args.repeat)
        decode_cpu = statistics.median(r["decode_cpu"] for _, per_file in rows for r in per_file) * 1e3
        print("Per step: thread CPU ms, each step alone on one thread with OpenCV on one thread (median over")
        print("all files, best of the repeats):")
        print()
        print("| step | CPU ms | share of a full decode's CPU |")
        print("|---|---|---|")
        for k, v in prof.items():
            print(f"| {k} | {v:.1f} | {v / decode_cpu:.2f} |")
        print(f"| modelled wall on two free cores (serial steps + groups scheduled on 2 threads) | {model:.1f} | "
              f"{model / decode_cpu:.2f} |")


if __name__ == "__main__":
    np.seterr(all="ignore")
    main()
