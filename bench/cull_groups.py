"""Grouping, picks and speed of `picinspector cull` on burst-like variants of real photos.

From BIQ2021 photos (../shared/data/biq2021_train) the script builds a shoot in a work folder
outside the repository. Each source photo is a *scene*, and every frame is made from it by one
"camera" pipeline (a reduction to 87.5% and JPEG quality 92), as a camera makes every frame of a
burst the same way: for each of ``--groups`` scenes, the undistorted frame and six burst-like
variants (a small zoom-in, a shift of the framing, +0.7 EV, -0.7 EV, a Gaussian blur, a heavy JPEG
re-save at quality 30), mixed with frames of ``--unrelated`` other scenes. It analyses them once with
`picinspector analyze` (resumable; cached in the work folder), then reports:

- pairwise precision and recall of "same group" against the true groups (target >= 0.95 each),
  without capture times (visual similarity alone) and with synthetic burst times;
- picks: how often the undistorted frame is the pick of its group (target >= 90%), end to end and
  given the true groups;
- the culling step's time for all photos (grouping, ranking, rating: `picinspector.cull.cull`), and
  beside it the signatures and the XMP sidecars (planned in memory, and written), median of
  ``--repeat`` runs, wall and CPU.

    .venv/bin/python bench/cull_groups.py --photos ../shared/data/biq2021_train/images \\
        --groups 200 --unrelated 600 --work /tmp/picinspector-cull-bench -j 2
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "src"))

#: Variant name -> what it does to the photo (the undistorted frame is "orig").
VARIANTS = ("orig", "crop", "shift", "ev_up", "ev_down", "blur", "jpeg")


def _srgb_to_linear(x: np.ndarray) -> np.ndarray:
    return np.where(x <= 0.04045, x / 12.92, ((x + 0.055) / 1.055) ** 2.4)


def _linear_to_srgb(x: np.ndarray) -> np.ndarray:
    return np.where(x <= 0.0031308, x * 12.92, 1.055 * np.power(np.clip(x, 0, None), 1 / 2.4) - 0.055)


#: Every frame is made by one "camera" pipeline: the scene (the source photo) reduced to this share of
#: its size and saved at `FRAME_QUALITY`, as a camera makes every frame of a burst the same way.
FRAME_SCALE, FRAME_QUALITY = 0.875, 92


def _frame(scene: Image.Image, box: tuple[float, float, float, float] | None = None) -> Image.Image:
    """The frame the pipeline makes of ``scene`` (or of the part ``box`` = (x0, y0, x1, y1) in 0-1)."""
    w, h = scene.size
    size = (round(w * FRAME_SCALE), round(h * FRAME_SCALE))
    if box is not None:
        scene = scene.crop((round(box[0] * w), round(box[1] * h), round(box[2] * w), round(box[3] * h)))
    return scene.resize(size, Image.LANCZOS)  # always a reduction: no frame is enlarged


def make_variant(scene: Image.Image, name: str, rng: random.Random) -> tuple[Image.Image, int]:
    """(frame, JPEG quality) of one variant; "orig" is the undistorted frame of the whole scene.

    Crops and shifts frame a part of the scene (the camera zoomed in or moved) through the same
    reduction, so they are as sharp as the undistorted frame, give or take the reduction's factor;
    the exposure steps, the blur and the heavy JPEG start from the undistorted frame.
    """
    import cv2

    if name == "orig":
        return _frame(scene), FRAME_QUALITY
    if name == "crop":  # zoom in a little: 4-7% off each side
        f = rng.uniform(0.04, 0.07)
        return _frame(scene, (f, f, 1 - f, 1 - f)), FRAME_QUALITY
    if name == "shift":  # the camera moved: a window of 92% of the scene against its left or right edge
        x0, y0 = rng.choice((0.0, 0.08)), rng.uniform(0.0, 0.08)
        return _frame(scene, (x0, y0, x0 + 0.92, y0 + 0.92)), FRAME_QUALITY
    frame = _frame(scene)
    if name in ("ev_up", "ev_down"):
        ev = 0.7 if name == "ev_up" else -0.7
        lin = _srgb_to_linear(np.asarray(frame, dtype=np.float64) / 255.0) * 2.0 ** ev
        return Image.fromarray(np.clip(_linear_to_srgb(np.clip(lin, 0, 1)) * 255 + 0.5, 0, 255).astype(np.uint8)), \
            FRAME_QUALITY
    if name == "blur":
        return Image.fromarray(cv2.GaussianBlur(np.asarray(frame), (0, 0), 1.6)), FRAME_QUALITY
    if name == "jpeg":
        return frame, 30
    raise ValueError(name)


def _thumb(path: Path) -> np.ndarray:
    img = Image.open(path)
    img.draft("L", (64, 64))
    a = np.asarray(ImageOps.exif_transpose(img).convert("L").resize((32, 32), Image.BOX), dtype=np.float64).ravel()
    a -= a.mean()
    return a / max(np.linalg.norm(a), 1e-9)


def distinct_sources(photos: list[Path], n: int, rng: random.Random) -> list[Path]:
    """``n`` photos drawn at random, none of them a copy or a sibling of another: BIQ2021 holds
    sequences of one scene (consecutive numbers of one subset, shot at several settings) and a few
    photos twice. A photo is skipped when one drawn already has the same subset and a number within 8,
    or the same pixels (correlation of 32 x 32 grey thumbnails above 0.97)."""
    order = list(photos)
    rng.shuffle(order)
    chosen: list[Path] = []
    taken: dict[str, list[int]] = {}
    thumbs: list[np.ndarray] = []
    for path in order:
        subset, _, number = path.stem.partition("_")
        num = int(number) if number.isdigit() else -10**9
        if any(abs(num - k) <= 8 for k in taken.get(subset, ())):
            continue
        t = _thumb(path)
        if thumbs and float(np.max(np.stack(thumbs) @ t)) > 0.97:
            continue
        chosen.append(path)
        taken.setdefault(subset, []).append(num)
        thumbs.append(t)
        if len(chosen) == n:
            return chosen
    raise SystemExit(f"only {len(chosen)} distinct photos found, {n} needed")


def build(photos: list[Path], groups: int, unrelated: int, work: Path, seed: int) -> list[dict]:
    """Write the shoot into ``work/shoot`` (once) and return its manifest."""
    manifest_path = work / "manifest.json"
    if manifest_path.is_file():
        return json.loads(manifest_path.read_text())
    rng = random.Random(seed)
    chosen = distinct_sources(photos, groups + unrelated, rng)
    shoot = work / "shoot"
    shoot.mkdir(parents=True, exist_ok=True)
    manifest = []
    for g, src in enumerate(chosen[:groups]):
        img = ImageOps.exif_transpose(Image.open(src)).convert("RGB")  # as displayed, like the copy of the photo
        for v in VARIANTS:
            out = shoot / f"g{g:03d}_{v}.jpg"
            var, q = make_variant(img, v, rng)
            var.save(out, quality=q)
            manifest.append({"path": str(out), "group": g, "variant": v, "source": src.name})
    for u, src in enumerate(chosen[groups:]):
        out = shoot / f"u{u:03d}.jpg"
        _frame(ImageOps.exif_transpose(Image.open(src)).convert("RGB")).save(out, quality=FRAME_QUALITY)
        manifest.append({"path": str(out), "group": groups + u, "variant": "unrelated", "source": src.name})
    manifest_path.write_text(json.dumps(manifest))
    return manifest


def analyse(manifest: list[dict], work: Path, jobs: int) -> Path:
    results = work / "results.jsonl"
    cli = [sys.executable, "-m", "picinspector", "analyze", str(work / "shoot"), "-o", str(results), "-j", str(jobs),
           "--no-progress"]
    t = time.perf_counter()
    subprocess.run(cli, check=True)
    print(f"analysis (resumable; cached): {time.perf_counter() - t:.0f} s wall", file=sys.stderr)
    return results


def pairwise(true: np.ndarray, pred: np.ndarray) -> tuple[float, float, int, int, int]:
    """Precision and recall of "same group" over all pairs (and TP, FP, FN)."""
    def pairs(labels):
        _, counts = np.unique(labels, return_counts=True)
        return int((counts * (counts - 1) // 2).sum())
    joint = pairs(true.astype(np.int64) * (pred.max() + 1) + pred)
    same_pred, same_true = pairs(pred), pairs(true)
    tp = joint
    fp, fn = same_pred - tp, same_true - tp
    return (tp / same_pred if same_pred else 1.0), (tp / same_true if same_true else 1.0), tp, fp, fn


def with_times(rows: list[dict], manifest: dict[str, dict], seed: int) -> list[dict]:
    """Rows with synthetic capture times: each group a burst at 5 frames a second (variants in a
    random order), groups and unrelated photos spread over the shoot 3-40 s apart."""
    rng = random.Random(seed + 1)
    by_group: dict[int, list[dict]] = {}
    for r in rows:
        by_group.setdefault(manifest[os.path.basename(r["path"])]["group"], []).append(r)
    order = list(by_group)
    rng.shuffle(order)
    t = 1_700_000_000.0
    out = []
    for g in order:
        members = by_group[g]
        rng.shuffle(members)
        for k, r in enumerate(members):
            stamp = t + 0.2 * k
            whole = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(int(stamp)))
            frac = f"{stamp - int(stamp):.2f}"[1:]
            out.append({**r, "exif": {**(r.get("exif") or {}), "datetime": whole + frac}})
        t += 0.2 * len(members) + rng.uniform(3, 40)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--photos", default=str(HERE.parent.parent / "shared/data/biq2021_train/images"))
    ap.add_argument("--groups", type=int, default=200)
    ap.add_argument("--unrelated", type=int, default=600)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--work", default=None,
                    help="folder for the shoot and its analysis (default: picinspector-cull-bench[-seedN] in the "
                         "temporary folder); reused by later runs")
    ap.add_argument("-j", "--jobs", type=int, default=2)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--json", action="store_true", help="print the figures as JSON too")
    ap.add_argument("--similarity", choices=("phash", "embedding"), default="phash",
                    help="signature: phash, or the default engine's embedding (Inspector.embed; the effnet engine)")
    ap.add_argument("--groups-only", action="store_true",
                    help="grouping only: no analysis, no picks, no timing (e.g. for a held-out seed)")
    args = ap.parse_args()
    if args.work is None:
        args.work = os.path.join(tempfile.gettempdir(), "picinspector-cull-bench" + (f"-seed{args.seed}" if args.seed else ""))

    from picinspector.cull import CullOptions, apply_changes, cull, plan_changes, signatures_for
    from picinspector.report._results import read_results

    photos = sorted(Path(args.photos).glob("*.jpg"))
    if len(photos) < args.groups + args.unrelated:
        sys.exit(f"need {args.groups + args.unrelated} photos in {args.photos}, found {len(photos)}")
    work = Path(args.work)
    if HERE.parent in work.resolve().parents:
        sys.exit("the work folder must be outside the repository")
    work.mkdir(parents=True, exist_ok=True)
    manifest = build(photos, args.groups, args.unrelated, work, args.seed)
    by_name = {os.path.basename(m["path"]): m for m in manifest}
    if args.groups_only:
        rows = [{"path": m["path"], "scores": {"quality": 50.0}, "findings": [], "exif": {}} for m in manifest]
    else:
        rows = [r for r in read_results(analyse(manifest, work, args.jobs)) if os.path.basename(r["path"]) in by_name]
    rows.sort(key=lambda r: os.path.basename(r["path"]))
    errors = [r for r in rows if "error" in r]
    analysed = [r for r in rows if "error" not in r]
    print(f"{len(analysed)} photos analysed, {len(errors)} errors", file=sys.stderr)

    t = time.perf_counter()
    c = time.process_time()
    embedder = None
    if args.similarity == "embedding":
        from picinspector import Inspector
        from picinspector.cull import engine_embedder

        embedder = engine_embedder(Inspector())
        if embedder is None:
            sys.exit("the default engine has no photo embedding (Inspector.embed): install the effnet engine")
    sigs, problems = signatures_for(analysed, embedder, threads=args.jobs, reuse=False)
    sig_wall, sig_cpu = time.perf_counter() - t, time.process_time() - c
    if problems:
        print(f"{len(problems)} photos without a signature: {list(problems.values())[:3]}", file=sys.stderr)

    figures: dict = {"photos": len(analysed), "groups": args.groups, "unrelated": args.unrelated,
                     "signature": sigs.kind, "signatures_s": round(sig_wall, 2), "signatures_cpu_s": round(sig_cpu, 2)}
    true = np.array([by_name[os.path.basename(r["path"])]["group"] for r in analysed])
    variant = [by_name[os.path.basename(r["path"])]["variant"] for r in analysed]
    print(f"\n{len(analysed)} photos: {args.groups} groups of {len(VARIANTS)} (the photo and "
          f"{len(VARIANTS) - 1} variants) and {args.unrelated} unrelated; signature {sigs.kind}\n")
    print("| capture times | pairwise precision | pairwise recall | true pairs | false pairs | missed pairs | groups found |")
    print("|---|---|---|---|---|---|---|")
    timed_rows = with_times(analysed, by_name, args.seed)
    timed_index = {r["path"]: i for i, r in enumerate(timed_rows)}
    for label, these in (("none (visual only)", analysed),
                         ("bursts at 5 frames/s", [timed_rows[timed_index[r["path"]]] for r in analysed])):
        result = cull(these, sigs, CullOptions())
        pred = result.grouping.labels
        p, r, tp, fp, fn = pairwise(true, pred)
        figures[f"precision[{label}]"], figures[f"recall[{label}]"] = round(p, 4), round(r, 4)
        print(f"| {label} | {p:.3f} | {r:.3f} | {tp:,} | {fp:,} | {fn:,} | {len(set(pred.tolist())):,} |")
        figures[f"missed_by_variant[{label}]"] = _missed(pred, true, variant)
        # picks, end to end: the group holding each original is picked by it
        hits = sum(1 for i, v in enumerate(variant) if v == "orig" and result.decisions[i].pick)
        figures[f"picks[{label}]"] = round(hits / args.groups, 4)
        figures[f"pick_counts[{label}]"] = _pick_counts(result, variant, true)
    print("\nMissed pairs (original and variant in different groups), visual only:",
          figures["missed_by_variant[none (visual only)]"])
    if args.groups_only:
        if args.json:
            print(json.dumps(figures))
        return
    # picks given the true groups: the group ranking alone (group scores over each true group)
    from picinspector.cull import Grouping, group_typicality
    from picinspector.cull._decide import RatingOptions, cull_score, group_scores

    truth = Grouping(labels=true, runs=np.full(len(true), -1), kind=sigs.kind, near=result.grouping.near,
                     burst=result.grouping.burst)
    typ = group_typicality(sigs, truth)
    scores = np.array([cull_score(r) for r in analysed])
    given = 0
    for g in range(args.groups):
        members = [int(i) for i in np.flatnonzero(true == g)]
        ranked = group_scores(analysed, members, scores, typ, RatingOptions())
        given += variant[members[int(np.argmax(ranked))]] == "orig"
    figures["picks[true groups]"] = round(given / args.groups, 4)
    print("\n| picks: the undistorted frame is the pick of its group | share |")
    print("|---|---|")
    for label in ("none (visual only)", "bursts at 5 frames/s"):
        print(f"| end to end, capture times: {label} | {figures[f'picks[{label}]'] * 100:.1f}% |")
    print(f"| given the true groups (ranking alone) | {given / args.groups * 100:.1f}% |")
    print("\nWhat the pick was instead (end to end, visual only):", figures["pick_counts[none (visual only)]"])

    # speed of the culling step (signatures computed above), then XMP planned and written
    walls, cpus = [], []
    for _ in range(args.repeat):
        t, c = time.perf_counter(), time.process_time()
        result = cull(analysed, sigs, CullOptions())
        out_rows = result.rows()
        walls.append(time.perf_counter() - t)
        cpus.append(time.process_time() - c)
    figures["cull_s"], figures["cull_cpu_s"] = round(statistics.median(walls), 3), round(statistics.median(cpus), 3)
    xmp_dir = Path(tempfile.mkdtemp(prefix="cull-xmp-", dir=work))
    try:
        fake = [({**row, "path": str(xmp_dir / os.path.basename(row["path"]))}, d) for row, d in result.items()]
        t, c = time.perf_counter(), time.process_time()
        changes = plan_changes(fake)
        plan_wall, plan_cpu = time.perf_counter() - t, time.process_time() - c
        t = time.perf_counter()
        apply_changes(changes, str(xmp_dir / "undo.jsonl"))
        write_wall = time.perf_counter() - t
    finally:
        shutil.rmtree(xmp_dir, ignore_errors=True)
    figures.update(xmp_plan_s=round(plan_wall, 2), xmp_plan_cpu_s=round(plan_cpu, 2), xmp_write_s=round(write_wall, 2))
    print(f"\n| step ({len(analysed):,} photos) | wall s | CPU s |")
    print("|---|---|---|")
    print(f"| culling step: group, rank, pick, rate, output rows (median of {args.repeat}) | "
          f"{figures['cull_s']:.3f} | {figures['cull_cpu_s']:.3f} |")
    print(f"| signatures ({sigs.kind}, {args.jobs} threads, from the JPEGs) | {sig_wall:.2f} | {sig_cpu:.2f} |")
    print(f"| XMP sidecars planned in memory (exiv2) | {plan_wall:.2f} | {plan_cpu:.2f} |")
    print(f"| XMP sidecars written with the undo journal (fsync each) | {write_wall:.2f} | |")
    print(f"\nload average during the run: {os.getloadavg()[0]:.1f} (shared machine)")
    if args.json:
        print(json.dumps(figures))


def _missed(pred, true, variant) -> dict[str, int]:
    """Per variant: how many were not grouped with their original."""
    orig = {int(true[i]): i for i, v in enumerate(variant) if v == "orig"}
    out: dict[str, int] = {}
    for i, v in enumerate(variant):
        if v not in ("orig", "unrelated") and pred[i] != pred[orig[int(true[i])]]:
            out[v] = out.get(v, 0) + 1
    return out


def _pick_counts(result, variant, true) -> dict[str, int]:
    counts: dict[str, int] = {}
    for i, v in enumerate(variant):
        if v != "orig":
            continue
        g = result.decisions[i].group
        pick = next(j for j, d in enumerate(result.decisions) if d.group == g and d.pick)
        key = variant[pick] if true[pick] == true[i] else "another photo"
        counts[key] = counts.get(key, 0) + 1
    return counts


if __name__ == "__main__":
    main()
