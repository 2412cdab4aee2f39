"""Graded distortions: does each score move with its own distortion, and stay put under the others?

Real photos (the packages' sample photos, plus BIQ2021 photos from ../shared when present) get eight
distortion types at five levels each (level 0 = untouched). For every photo and type we take the
Spearman correlation (SRCC) between the level and each score, then average over photos. A perfect
score has SRCC -1 or +1 with its own distortion (sign = the expected direction) and |SRCC| small
with the others (stability). Targets: own attribute >= 0.95 in the expected direction, quality
>= 0.9 in the falling direction for every type.

Two containers: ``jpeg`` saves every level as JPEG quality 95 (the ``jpeg`` type at its own
quality), ``png`` saves every level losslessly as PNG (the ``jpeg`` type is compressed at its
quality, decoded, and saved as PNG: a screenshot or a re-encoded upload, with no quantisation
tables left to read). A last table reads the sharpness of minimal scenes the tests draw (thin
joints between white panels under a flat sky; a facade of window columns) under blur, long motion
blur and heavy JPEG.

    .venv/bin/python bench/distortions.py [--biq 12] [--container jpeg|png|both] [--no-scenes] \
        [--engine classic] [--engine effnet] [--quality-head FILE.npz]

The BIQ2021 photos are drawn with seed 0 among those the effnet quality heads run (the shipped one and
``--quality-head``) were given no exposure copies of (`picinspector.training.exposure_copies`), so that
their brightened and darkened levels are not what they trained on.

With several engines, the tables are printed for each, then one table of the quality SRCC side by side.
"""

from __future__ import annotations

import argparse
import io
from dataclasses import dataclass
from typing import Callable

from _common import biq_images

import cv2
import numpy as np
from PIL import Image
from scipy.stats import spearmanr

from picinspector import SCORE_NAMES, Inspector
from picinspector.training.exposure_copies import ExposureCopies, shift_exposure
from picinspector.samples import SAMPLES, load_sample


def _motion(img: np.ndarray, length: float) -> np.ndarray:
    n = int(length)
    if n <= 1:
        return img
    k = np.zeros((n, n), np.float32)
    k[n // 2, :] = 1.0 / n
    return cv2.filter2D(img, -1, k, borderType=cv2.BORDER_REFLECT)


def _noise(img: np.ndarray, sigma: float) -> np.ndarray:
    rng = np.random.default_rng(1234)
    return img + rng.normal(0, sigma / 255, img.shape).astype(np.float32)


def _exposure(img: np.ndarray, ev: float) -> np.ndarray:
    return shift_exposure(img, ev)  # the same shift as the effnet head's training copies


def _contrast(img: np.ndarray, alpha: float) -> np.ndarray:
    return alpha * img + (1 - alpha) * img.mean()


def _desaturate(img: np.ndarray, amount: float) -> np.ndarray:
    gray = img @ np.array([0.2126, 0.7152, 0.0722], np.float32)
    return (1 - amount) * img + amount * gray[..., None]


def _blur(img: np.ndarray, sigma: float) -> np.ndarray:
    return img if sigma == 0 else cv2.GaussianBlur(img, (0, 0), sigma)


@dataclass(frozen=True)
class Distortion:
    apply: Callable[[np.ndarray, float], np.ndarray] | None  # None: JPEG, made by saving
    levels: tuple[float, ...]  # level 0 first, then rising severity
    own: str  # the score that should follow it
    sign: int  # expected direction of `own` as severity rises


DISTORTIONS: dict[str, Distortion] = {
    "gaussian_blur": Distortion(_blur, (0, 1, 2, 3, 4), "sharpness", -1),
    "motion_blur": Distortion(_motion, (1, 5, 9, 13, 17), "sharpness", -1),
    "gaussian_noise": Distortion(_noise, (0, 5, 10, 15, 20), "noisiness", -1),
    "jpeg": Distortion(None, (95, 60, 35, 20, 10), "quality", -1),
    "under_exposure": Distortion(_exposure, (0, -0.5, -1, -1.5, -2), "brightness", -1),
    "over_exposure": Distortion(_exposure, (0, 0.5, 1, 1.5, 2), "brightness", +1),
    "contrast_reduction": Distortion(_contrast, (1, 0.8, 0.6, 0.4, 0.2), "contrast", -1),
    "desaturation": Distortion(_desaturate, (0, 0.25, 0.5, 0.75, 1.0), "colorfulness", -1),
}


def _saved(img: Image.Image, fmt: str, **kw) -> Image.Image:
    buf = io.BytesIO()
    img.save(buf, format=fmt, **kw)
    buf.seek(0)
    return Image.open(buf)


#: Container -> how a level is written: "jpeg" = JPEG q95 (the jpeg type at its own quality),
#: "png" = lossless (the jpeg type compressed at its quality, decoded, then saved as PNG).
CONTAINERS = ("jpeg", "png")


def distorted(base: np.ndarray, d: Distortion, level: float, container: str = "jpeg") -> Image.Image:
    """The distorted photo as an 8-bit image decoded from a file of ``container``."""
    if container not in CONTAINERS:
        raise ValueError(f"container must be one of {CONTAINERS}, got {container!r}")
    if d.apply is None:
        img, quality = base, int(level)
    else:
        img, quality = d.apply(base, level), 95
    u8 = Image.fromarray((np.clip(img, 0, 1) * 255 + 0.5).astype(np.uint8))
    if container == "jpeg":
        return _saved(u8, "JPEG", quality=quality)
    if d.apply is None:
        u8 = _saved(u8, "JPEG", quality=quality).convert("RGB")
    return _saved(u8, "PNG")


#: The effnet quality head the benchmark runs (None: the shipped one); ``--quality-head`` sets it.
QUALITY_HEAD_FILE: str | None = None


def _copy_rules() -> list[ExposureCopies]:
    """The rules by which the shipped effnet quality head and the ``--quality-head`` one were given
    brightened / darkened copies of their training photos (none for a head without copies), so that
    both are run on the same photos, none of which either trained on a copy of."""
    from picinspector.models.effnet._heads import QUALITY_HEAD
    from picinspector.scoring._model import QualityModel

    rules = []
    for head in dict.fromkeys([QUALITY_HEAD, *([QUALITY_HEAD_FILE] if QUALITY_HEAD_FILE else [])]):
        meta = QualityModel.load(head, known=lambda m: frozenset(m["features"])).meta.get("exposure_copies")
        if meta is not None:
            rules.append(ExposureCopies.from_json(meta))
    return rules


def biq_test_images(n: int) -> list:
    """``n`` BIQ2021 photos (fixed seed) of which no effnet head run here saw an exposure copy: their
    brightened or darkened versions here are not what it trained on."""
    first = biq_images(n)  # the benchmark's photos before the head had copies; stand-ins follow them
    pool = first + [p for p in biq_images(4 * n) if p not in first]
    for rule in _copy_rules():
        pool = [p for p, copied in zip(pool, rule.picked([p.name for p in pool])) if not copied]
    return pool[:n]


def photos(n_biq: int) -> dict[str, np.ndarray]:
    out = {name: load_sample(name).astype(np.float32) / 255 for name in SAMPLES}
    for path in biq_test_images(n_biq):
        out[path.stem] = np.asarray(Image.open(path).convert("RGB"), np.float32) / 255
    return out


def run(n_biq: int, container: str = "jpeg", engine: str | None = None
        ) -> tuple[dict[str, dict[str, float]], dict[str, dict[str, float]]]:
    """Mean per-photo SRCC(level, score) and mean change of each score from level 0 to the last."""
    options = {"quality_head": QUALITY_HEAD_FILE} if QUALITY_HEAD_FILE and engine != "classic" else {}
    inspector = Inspector(engine=engine, **options)
    rhos: dict[str, dict[str, list[float]]] = {k: {s: [] for s in SCORE_NAMES} for k in DISTORTIONS}
    deltas: dict[str, dict[str, list[float]]] = {k: {s: [] for s in SCORE_NAMES} for k in DISTORTIONS}
    mid: dict[str, list[float]] = {k: [] for k in DISTORTIONS}  # quality SRCC, mid-grey originals only
    MID_GREY.clear()
    for base in photos(n_biq).values():
        for name, d in DISTORTIONS.items():
            reports = [inspector.analyze(distorted(base, d, lv, container)) for lv in d.levels]
            rows = [r.scores for r in reports]
            q = [r["quality"] for r in rows]
            if 40 <= reports[0].measures["lightness_mean"] <= 60 and len(set(q)) > 1:
                mid[name].append(float(spearmanr(range(len(q)), q).statistic))
            for s in SCORE_NAMES:
                vals = [r[s] for r in rows]
                rho = 0.0 if len(set(vals)) == 1 else spearmanr(range(len(vals)), vals).statistic
                rhos[name][s].append(float(rho))
                deltas[name][s].append(vals[-1] - vals[0])
    mean = lambda t: {k: {s: float(np.mean(v)) for s, v in row.items()} for k, row in t.items()}  # noqa: E731
    MID_GREY.update({k: (float(np.mean(v)), len(v)) for k, v in mid.items() if v})
    return mean(rhos), mean(deltas)


#: Filled by `run`: distortion -> (mean quality SRCC, number of photos) over the photos whose
#: untouched mean lightness is L* 40-60, i.e. not already too dark or too bright.
MID_GREY: dict[str, tuple[float, int]] = {}


def _tables(n_photos: int, container: str, result, delta) -> None:
    saved = "JPEG q95 (the jpeg type at its quality)" if container == "jpeg" else \
        "PNG (the jpeg type compressed, decoded, then saved as PNG)"
    print(f"### Saved as {saved}")
    print()
    print(f"{n_photos} photos x {len(DISTORTIONS)} distortions x 5 levels; mean per-photo SRCC(level, score);"
          " **bold** = the distortion's own score, expected sign in brackets")
    print()
    print("| distortion | " + " | ".join(SCORE_NAMES) + " | own target met |")
    print("|---|" + "---|" * (len(SCORE_NAMES) + 1))
    for name, d in DISTORTIONS.items():
        cells = []
        for s in SCORE_NAMES:
            v = result[name][s]
            cells.append(f"**{v:+.2f}** ({'+' if d.sign > 0 else '-'})" if s == d.own else f"{v:+.2f}")
        own_ok = d.sign * result[name][d.own] >= (0.9 if d.own == "quality" else 0.95)
        q_ok = -result[name]["quality"] >= 0.9
        print(f"| {name} | " + " | ".join(cells) + f" | {'yes' if own_ok else 'NO'}"
              f"{'' if q_ok else ' (quality < 0.9)'} |")
    print()
    print("Quality SRCC over the photos whose original mean lightness is L* 40-60 (a dark original gets better"
          " when brightened, a bright one when darkened): "
          + ", ".join(f"{k} {v:+.2f} (n={n})" for k, (v, n) in MID_GREY.items() if k.endswith("exposure")))
    print()
    print("Mean change of each score (0-100 points) from level 0 to the strongest level: the own score should")
    print("move far, the others little.")
    print()
    print("| distortion | " + " | ".join(SCORE_NAMES) + " |")
    print("|---|" + "---|" * len(SCORE_NAMES))
    for name, d in DISTORTIONS.items():
        cells = [f"**{delta[name][s]:+.1f}**" if s == d.own else f"{delta[name][s]:+.1f}" for s in SCORE_NAMES]
        print(f"| {name} | " + " | ".join(cells) + " |")
    print()


def _motion_at(img: np.ndarray, length: int, angle_deg: float) -> np.ndarray:
    """Linear motion blur of ``length`` px along ``angle_deg`` (counter-clockwise as displayed)."""
    size = length + 4
    k = np.zeros((size, size), np.float32)
    c, r, a = (size - 1) / 2.0, (length - 1) / 2.0, np.radians(angle_deg)
    sh = 8
    p0 = tuple(int(round(v * (1 << sh))) for v in (c - r * np.cos(a), c + r * np.sin(a)))
    p1 = tuple(int(round(v * (1 << sh))) for v in (c + r * np.cos(a), c - r * np.sin(a)))
    cv2.line(k, p0, p1, 1.0, 1, cv2.LINE_AA, sh)
    return cv2.filter2D(img, -1, k / k.sum(), borderType=cv2.BORDER_REFLECT)


def minimal_scenes() -> dict[str, np.ndarray]:
    """The focus tests' minimal scenes (tests/test_focus.py draws them), as RGB in [0, 1]."""
    import importlib.util

    from _common import ROOT

    spec = importlib.util.spec_from_file_location("_test_focus", ROOT / "tests" / "test_focus.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return {"thin joints, white panels, flat sky": np.repeat(module.facade_panels()[..., None], 3, axis=2),
            "facade of window columns": np.repeat(module.window_columns()[..., None], 3, axis=2)}


#: Column -> how the minimal scene is changed before being saved (JPEG q95 unless the column is JPEG).
SCENE_COLUMNS: dict[str, Callable[[np.ndarray], tuple[np.ndarray, int]]] = {
    "as drawn": lambda g: (g, 95),
    "blur 0.7 px": lambda g: (_blur(g, 0.7), 95),
    "blur 1.5 px": lambda g: (_blur(g, 1.5), 95),
    "blur 3 px": lambda g: (_blur(g, 3.0), 95),
    "motion 25 px, 0 deg": lambda g: (_motion_at(g, 25, 0.0), 95),
    "motion 25 px, 90 deg": lambda g: (_motion_at(g, 25, 90.0), 95),
    "JPEG q5": lambda g: (g, 5),
    "blur 3 px + JPEG q5": lambda g: (_blur(g, 3.0), 5),
}


def scenes_table() -> None:
    inspector = Inspector(engine="classic")  # sharpness: the same calibrated classic score in every engine
    print("### Sharpness of minimal scenes (drawn by tests/test_focus.py)")
    print()
    print("sharpness score (blur kind) per column; a crisp scene should read high, and every blur lower.")
    print()
    print("| scene | " + " | ".join(SCENE_COLUMNS) + " |")
    print("|---|" + "---|" * len(SCENE_COLUMNS))
    for name, rgb in minimal_scenes().items():
        cells = []
        for make in SCENE_COLUMNS.values():
            img, quality = make(rgb)
            u8 = Image.fromarray((np.clip(img, 0, 1) * 255 + 0.5).astype(np.uint8))
            r = inspector.analyze(_saved(u8, "JPEG", quality=quality))
            kind = r.measures.get("blur_kind") or "-"
            cells.append(f"{r.scores['sharpness']:.0f} ({kind})")
        print(f"| {name} | " + " | ".join(cells) + " |")
    print()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--biq", type=int, default=12, help="BIQ2021 photos to add from ../shared (0: none)")
    ap.add_argument("--container", choices=[*CONTAINERS, "both"], default="both",
                    help="save every level as JPEG q95, as PNG, or both (default)")
    ap.add_argument("--no-scenes", action="store_true", help="leave out the minimal-scene sharpness table")
    ap.add_argument("--engine", action="append", help="engine(s) to run (default: the default engine)")
    ap.add_argument("--quality-head", metavar="FILE.npz",
                    help="effnet: run this quality head instead of the shipped one (e.g. a candidate refit)")
    args = ap.parse_args()
    global QUALITY_HEAD_FILE
    QUALITY_HEAD_FILE = args.quality_head
    n_photos = len(SAMPLES) + len(biq_test_images(args.biq))
    quality: dict[tuple[str, str], dict[str, float]] = {}
    for engine in args.engine or [None]:
        if engine:
            print(f"## engine {engine}\n")
        for container in (CONTAINERS if args.container == "both" else (args.container,)):
            result, delta = run(args.biq, container, engine)
            _tables(n_photos, container, result, delta)
            quality[(engine or "default", container)] = {name: result[name]["quality"] for name in DISTORTIONS}
    if len(args.engine or []) > 1:
        print("Quality: mean per-photo SRCC(level, quality); -1 = falls with every level")
        print("| distortion | " + " | ".join(f"{e} ({c})" for e, c in quality) + " |")
        print("|---|" + "---|" * len(quality))
        for name in DISTORTIONS:
            print(f"| {name} | " + " | ".join(f"{q[name]:+.2f}" for q in quality.values()) + " |")
        print()
    if not args.no_scenes:
        scenes_table()


if __name__ == "__main__":
    main()
