"""Contact sheets for the second scene-labelling round (made as ../shared's scenes.csv was made).

Usage: python data/scene_labels/make_sheets.py [DATA_DIR] [OUT_DIR]

Draws 1,440 of the photos that scenes.csv does not label (seed 12) and 48 it does label (hidden
controls, to compare the new annotators with the first ones), shuffles them, and writes sheets of 16
thumbnails (longest side 290 px) numbered 1-16, plus OUT_DIR/index.csv mapping sheet and cell to the
image. Each annotator labels the sheets by eye, independently (see README.md beside this file).
"""

from __future__ import annotations

import csv
import os
import random
import sys

from PIL import Image, ImageDraw, ImageFont

CELL, THUMB, PER_SHEET, COLS = 300, 290, 16, 4


def main(root: str, out: str) -> None:
    os.makedirs(out, exist_ok=True)
    with open(os.path.join(root, "scenes.csv"), newline="") as fh:
        labelled = [r["image"] for r in csv.DictReader(fh)]
    with open(os.path.join(root, "labels.csv"), newline="") as fh:
        everything = [r["image"] for r in csv.DictReader(fh)]
    rng = random.Random(12)
    new = rng.sample(sorted(set(everything) - set(labelled)), 1440)
    control_list = rng.sample(sorted(labelled), 48)
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
         sys.argv[2] if len(sys.argv) > 2 else "sheets")
