"""Shared helpers of the benchmark scripts: sample photos and where to put generated files."""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))  # run from a checkout without installing
WORK = ROOT / "bench" / "_work"
SHARED_BIQ = ROOT.parent / "shared" / "data" / "biq2021_train"


def biq_images(n: int, seed: int = 0) -> list[Path]:
    """``n`` BIQ2021 photos chosen with a fixed seed, or [] when ../shared is not there."""
    import numpy as np

    folder = SHARED_BIQ / "images"
    if not folder.is_dir():
        return []
    files = sorted(folder.glob("*.jpg"))
    idx = np.random.default_rng(seed).choice(len(files), size=min(n, len(files)), replace=False)
    return [files[i] for i in sorted(idx)]


def peak_rss_mb() -> float:
    """Peak resident memory (MB) of this process's own address space: ``VmHWM`` from /proc, which,
    unlike ``ru_maxrss``, does not carry over the parent's peak into a child started by fork + exec."""
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM in /proc/self/status (Linux only)")
