"""JPEG quality read from the pixels (`jpeg_quality_pixels`) of Pillow JPEGs of the eight sample photos,
as a lossless copy would hold them (the decoded pixels, no tables). Prints one markdown table.

    .venv/bin/python bench/jpeg_pixels.py
"""

from __future__ import annotations

import io

from _common import ROOT  # noqa: F401  (puts src/ on sys.path)

import numpy as np
from PIL import Image

from picinspector.measures._compression import jpeg_quality_from_pixels
from picinspector.samples import SAMPLES, load_sample

QUALITIES = [5, 10, 20, 35, 50, 70, 85, 90, 95]


def main() -> None:
    print("| photo | " + " | ".join(f"q{q}" for q in QUALITIES) + " | the sample as shipped |")
    print("|---|" + "---|" * (len(QUALITIES) + 1))
    for name in SAMPLES:
        u8 = np.asarray(load_sample(name))
        if u8.ndim == 2:
            u8 = np.repeat(u8[..., None], 3, 2)
        cells = []
        for q in QUALITIES:
            buf = io.BytesIO()
            Image.fromarray(u8).save(buf, format="JPEG", quality=q)
            buf.seek(0)
            px = np.asarray(Image.open(buf).convert("RGB"), np.float32) / 255.0
            cells.append(str(jpeg_quality_from_pixels(px)))
        print(f"| {name} | " + " | ".join(cells) + f" | {jpeg_quality_from_pixels(u8.astype(np.float32) / 255.0)} |")


if __name__ == "__main__":
    main()
