"""A/B of the classic-speed changes of 2026-12-02 (second stop), in one process: the three switched
off (OpenCV's own pool left on during the pooled measures, faces searched from 8.5% of the long side,
every JPEG decoded by Pillow) against the code as it is, on the files of bench/speed.py.

Each analysis follows a full decode of the same file (so both sides pay the same page faults) and
the two sides alternate; best of ``--repeat`` per file and side, median ratio to the decode per kind.

    .venv/bin/python bench/speed_ab.py [--repeat 7]
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import time

from _common import WORK  # noqa: F401 - puts src/ on the path

import numpy as np

from picinspector import Inspector
from picinspector.io import _load
from picinspector.measures import _registry
from picinspector.scene import _cues
from speed import full_decode, make_files

NOW = {"_opencv_jpeg": _load._opencv_jpeg, "pool_switch": _registry.opencv_single_threaded,
       "face": _cues.FACE_MIN_FRACTION}


def before() -> None:
    _load._opencv_jpeg = lambda *a, **k: None
    _registry.opencv_single_threaded = contextlib.nullcontext
    _cues.FACE_MIN_FRACTION = 0.085


def after() -> None:
    _load._opencv_jpeg = NOW["_opencv_jpeg"]
    _registry.opencv_single_threaded = NOW["pool_switch"]
    _cues.FACE_MIN_FRACTION = NOW["face"]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--per-kind", type=int, default=3)
    ap.add_argument("--repeat", type=int, default=7)
    args = ap.parse_args()
    np.seterr(all="ignore")
    files = make_files(args.per_kind)
    ins = Inspector(engine="classic")
    first = next(iter(files.values()))[0]
    for side in (before, after):
        side()
        ins.analyze(first)
    print("| content | full decode ms | before ms | now ms | ratio before | ratio now |")
    print("|---|---|---|---|---|---|")
    for kind, paths in files.items():
        rows = []
        for path in paths:
            best = {"decode": 1e9, "before": 1e9, "now": 1e9}
            for _ in range(args.repeat):
                t = time.perf_counter(); full_decode(path); best["decode"] = min(best["decode"], time.perf_counter() - t)
                for name, side in (("before", before), ("now", after)):
                    side()
                    full_decode(path)
                    t = time.perf_counter(); ins.analyze(path); best[name] = min(best[name], time.perf_counter() - t)
            rows.append(best)
        med = {k: statistics.median(r[k] for r in rows) * 1e3 for k in rows[0]}
        ratio = {k: statistics.median(r[k] / r["decode"] for r in rows) for k in ("before", "now")}
        print(f"| {kind} | {med['decode']:.1f} | {med['before']:.1f} | {med['now']:.1f} | "
              f"{ratio['before']:.2f} | {ratio['now']:.2f} |")
    after()


if __name__ == "__main__":
    main()
