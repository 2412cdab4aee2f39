"""Merge two independent labelling passes into a scenes.csv-style file, and check the controls.

Usage: python data/scene_labels/merge_passes.py INDEX.csv PASS_A.csv PASS_B.csv [DATA_DIR] > biq2021_scenes_extra.csv

Each pass is a CSV ``sheet,cell,primary,also`` (``also``: secondary labels joined with ";"). The output
has the columns of ../shared's scenes.csv: ``scene`` is the primary label where both annotators agree
(empty where they disagree), ``annotator_1``/``annotator_2`` their primaries, ``also`` every other label
either gave (and both primaries where they disagree). Control photos (already in scenes.csv) are left
out of the output; their agreement with the first annotators goes to stderr.
"""

from __future__ import annotations

import csv
import os
import sys
from collections import Counter

SCENES = ("animal", "cityscape", "human", "indoor", "landscape", "night", "plant", "still_life", "others")


def _read_pass(path: str) -> dict[tuple[int, int], tuple[str, set[str]]]:
    out = {}
    with open(path, newline="") as fh:
        for row in csv.DictReader(fh):
            key = (int(str(row["sheet"]).replace("sheet_", "")), int(row["cell"]))
            labels = {x.strip() for x in (row["also"] or "").split(";") if x.strip()}
            primary = row["primary"].strip()
            bad = ({primary} | labels) - set(SCENES)
            if bad or key in out:
                raise SystemExit(f"{path}: bad or repeated row {row}")
            out[key] = (primary, labels)
    return out


def main(index_csv: str, pass_a: str, pass_b: str, root: str) -> None:
    with open(index_csv, newline="") as fh:
        index = {(int(r["sheet"]), int(r["cell"])): r for r in csv.DictReader(fh)}
    a, b = _read_pass(pass_a), _read_pass(pass_b)
    if not set(a) == set(b) == set(index):
        raise SystemExit("the passes do not cover the same photos as the index")
    with open(os.path.join(root, "scenes.csv"), newline="") as fh:
        first = {r["image"]: r for r in csv.DictReader(fh)}
    rows, controls = [], Counter()
    for key in sorted(index):
        image = index[key]["image"]
        (pa, sa), (pb, sb) = a[key], b[key]
        scene = pa if pa == pb else ""
        also = (sa | sb | ({pa, pb} if pa != pb else set())) - {scene}
        if index[key]["control"] == "1":
            old = first[image]
            controls["photos"] += 1
            if old["scene"] and scene:
                controls["agreed by both rounds"] += 1
                controls["same label"] += old["scene"] == scene
            accepted = {old["scene"], old["annotator_1"], old["annotator_2"], *old["also"].split(";")} - {""}
            controls["pass A within the first round's labels"] += pa in accepted
            controls["pass B within the first round's labels"] += pb in accepted
            continue
        rows.append({"image": image, "scene": scene, "annotator_1": pa, "annotator_2": pb,
                     "also": ";".join(sorted(also))})
    writer = csv.DictWriter(sys.stdout, fieldnames=["image", "scene", "annotator_1", "annotator_2", "also"],
                            lineterminator="\n")
    writer.writeheader()
    writer.writerows(sorted(rows, key=lambda r: r["image"]))
    agreed = Counter(r["scene"] for r in rows if r["scene"])
    print(f"{len(rows)} photos, {sum(agreed.values())} agreed: {dict(agreed.most_common())}", file=sys.stderr)
    print(f"controls: {dict(controls)}", file=sys.stderr)


if __name__ == "__main__":
    main(*sys.argv[1:4], sys.argv[4] if len(sys.argv) > 4 else "../shared/data/biq2021_train")
