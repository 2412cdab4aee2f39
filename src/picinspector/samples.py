"""Real sample photos that installed packages ship (no download), for the demo, tests and benchmarks.

Needs the ``samples`` extra (scikit-image, scikit-learn, matplotlib): ``pip install "picinspector[samples]"``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import numpy as np


def _skimage(name: str) -> Callable[[], np.ndarray]:
    def load() -> np.ndarray:
        from skimage import data

        return getattr(data, name)()

    return load


def _sklearn(name: str) -> Callable[[], np.ndarray]:
    def load() -> np.ndarray:
        from sklearn.datasets import load_sample_image

        return load_sample_image(name)

    return load


def _grace_hopper() -> np.ndarray:
    from matplotlib import cbook
    from PIL import Image

    with cbook.get_sample_data("grace_hopper.jpg") as f:
        return np.asarray(Image.open(f).convert("RGB"))


#: Name -> loader returning uint8 RGB (or grey) pixels. All ship inside the packages.
SAMPLES: dict[str, Callable[[], np.ndarray]] = {
    "astronaut": _skimage("astronaut"),      # portrait, 512x512
    "chelsea": _skimage("chelsea"),          # cat, 451x300
    "coffee": _skimage("coffee"),            # still life, 600x400
    "rocket": _skimage("rocket"),            # launch at dusk, 640x427
    "motorcycle": lambda: _skimage("stereo_motorcycle")()[0],  # indoor, 740x500
    "china": _sklearn("china.jpg"),          # temple and sky, 640x427
    "flower": _sklearn("flower.jpg"),        # flower close-up, 640x427
    "grace_hopper": _grace_hopper,           # portrait, 512x600
}


def load_sample(name: str) -> np.ndarray:
    """Pixels of one sample photo (uint8, HxWx3)."""
    if name not in SAMPLES:
        raise ValueError(f"unknown sample {name!r}; choose from {sorted(SAMPLES)}")
    try:
        arr = np.asarray(SAMPLES[name]())
    except ImportError as exc:
        raise ImportError(
            f"sample photo {name!r} needs the 'samples' extra: pip install \"picinspector[samples]\" ({exc})"
        ) from exc
    if arr.ndim == 2:
        arr = np.repeat(arr[..., None], 3, axis=2)
    return np.ascontiguousarray(arr[..., :3])


def write_samples(folder: str | Path, degraded: bool = True) -> list[Path]:
    """Write the sample photos as JPEG (quality 95) into ``folder``; with ``degraded``, also a few
    versions with one clear problem each (motion blur, defocus, noise, under-exposure, heavy JPEG)."""
    import cv2
    from PIL import Image

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for name in SAMPLES:
        path = folder / f"{name}.jpg"
        Image.fromarray(load_sample(name)).save(path, quality=95)
        written.append(path)
    if degraded:
        base = load_sample("china").astype(np.float32) / 255
        rng = np.random.default_rng(0)
        kernel = np.zeros((15, 15), np.float32)
        kernel[7, :] = 1 / 15  # horizontal streaks
        variants = {
            "china_motion_blur": cv2.filter2D(base, -1, kernel),
            "china_defocus": cv2.GaussianBlur(base, (0, 0), 3.0),
            "china_noisy": base + rng.normal(0, 18 / 255, base.shape).astype(np.float32),
            "china_dark": base * 0.18,
        }
        for name, img in variants.items():
            path = folder / f"{name}.jpg"
            Image.fromarray((np.clip(img, 0, 1) * 255 + 0.5).astype(np.uint8)).save(path, quality=95)
            written.append(path)
        path = folder / "china_heavy_jpeg.jpg"
        Image.fromarray(load_sample("china")).save(path, quality=12)
        written.append(path)
    return written
