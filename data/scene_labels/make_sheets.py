"""Contact sheets for the scene-labelling rounds after ../shared's scenes.csv (made as it was made).

Usage: python data/scene_labels/make_sheets.py [DATA_DIR] [OUT_DIR] [ROUND]

ROUND (default ``random``) says which photos go on the sheets:

- ``random`` (the second round, ``biq2021_scenes_extra.csv``): 1,440 of the photos that scenes.csv
  does not label, drawn at random (seed 12), and 48 it does label as hidden controls.
- ``dark`` (the third round, ``biq2021_scenes_dark.csv``): the 400 darkest photos (lowest median
  luma of a 64-px thumbnail) that no label file covers yet, and as hidden controls the 32 darkest
  photos of scenes.csv, so that the new annotators' night calls can be compared with the first
  round's on the photos where night is at stake. Darkness is a pixel statistic: no model chooses.

The photos are shuffled and drawn on sheets of 16 thumbnails (longest side 290 px) numbered 1-16;
OUT_DIR/index.csv maps sheet and cell to the image. Each annotator labels the sheets by eye,
independently (see README.md beside this file).
"""

from __future__ import annotations

import csv
import os
import random
import sys

import numpy as np
from PIL import Image, ImageDraw, ImageFont

CELL, THUMB, PER_SHEET, COLS = 300, 290, 16, 4
HERE = os.path.dirname(os.path.abspath(__file__))


def _images(path: str) -> list[str]:
    with open(path, newline="") as fh:
        return [r["image"] for r in csv.DictReader(fh)]


def _median_luma(root: str, name: str) -> float:
    with Image.open(os.path.join(root, "images", name)) as im:
        im.draft("L", (64, 64))
        grey = im.convert("L")
    grey.thumbnail((64, 64))
    return float(np.median(np.asarray(grey)))


def _random_round(root: str, labelled: list[str]) -> tuple[list[str], list[str], random.Random]:
    rng = random.Random(12)
    new = rng.sample(sorted(set(_images(os.path.join(root, "labels.csv"))) - set(labelled)), 1440)
    return new, rng.sample(sorted(labelled), 48), rng


def _dark_round(root: str, labelled: list[str]) -> tuple[list[str], list[str], random.Random]:
    covered = set(labelled) | set(_images(os.path.join(HERE, "sheets_index.csv")))
    free = sorted(set(_images(os.path.join(root, "labels.csv"))) - covered)
    new = sorted(free, key=lambda name: (_median_luma(root, name), name))[:400]
    controls = sorted(labelled, key=lambda name: (_median_luma(root, name), name))[:32]
    return new, controls, random.Random(13)


ROUNDS = {"random": _random_round, "dark": _dark_round}


def main(root: str, out: str, round_name: str = "random") -> None:
    os.makedirs(out, exist_ok=True)
    labelled = _images(os.path.join(root, "scenes.csv"))
    new, control_list, rng = ROUNDS[round_name](root, labelled)
    controls = set(control_list)
    items = new + control_list
    rng.shuffle(items)
    font = ImageFont.load_default(size=22)
    with open(os.path.join(out, "index.csv"), "w", newline="") as fh:
        index = csv.writer(fh)
        index.writerow(["sheet", "cell", "image", "control"])
        for start in range(0, len(items), PER_SHEET):
            number = start // PER_SHEET + 1
            sheet = Image.new("RGB", (COLS * CELL + 10, COLS * CELL + 40), "white")
            draw = ImageDraw.Draw(sheet)
            draw.text((10, 8), f"sheet {number:03d}", fill="black", font=font)
            for i, name in enumerate(items[start:start + PER_SHEET]):
                with Image.open(os.path.join(root, "images", name)) as im:
                    thumb = im.convert("RGB")
                thumb.thumbnail((THUMB, THUMB))
                x, y = 10 + (i % COLS) * CELL, 40 + (i // COLS) * CELL
                sheet.paste(thumb, (x + (THUMB - thumb.width) // 2, y + (THUMB - thumb.height) // 2))
                draw.rectangle([x, y, x + 40, y + 30], fill="yellow")
                draw.text((x + 6, y + 3), str(i + 1), fill="black", font=font)
                index.writerow([number, i + 1, name, int(name in controls)])
            sheet.save(os.path.join(out, f"sheet_{number:03d}.png"))
    print(f"{len(items)} photos on {(len(items) + PER_SHEET - 1) // PER_SHEET} sheets in {out}")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "../shared/data/biq2021_train",
         sys.argv[2] if len(sys.argv) > 2 else "sheets",
         sys.argv[3] if len(sys.argv) > 3 else "random")
