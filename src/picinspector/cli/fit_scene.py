"""``picinspector fit-scene``: fit the effnet engine's scene head on SCENES.md-style label files."""

from __future__ import annotations

import json
import os
from typing import Annotated, Optional

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from ._app import EXIT_INTERRUPTED, EXIT_USAGE, app
from ._common import _usage


def _effnet_caches(cache: str | None, features_cache: str | None, anchor: str) -> tuple[str, str]:
    """Default cache locations beside the labels/dataset: ``<anchor>.measures.jsonl`` and
    ``<anchor>.effnet-features/``."""
    base = os.path.normpath(anchor)
    return cache or f"{base}.measures.jsonl", features_cache or f"{base}.effnet-features"


@app.command("fit-scene")
def fit_scene_cmd(
    labels: Annotated[list[str], typer.Option(
        "--labels", metavar="FILE.csv",
        help="Scene labels in the scenes.csv format (image, scene, annotator_1, annotator_2, also); repeat for "
             "more files. Cross-validation is reported on the first file's photos; the others always train.")],
    images: Annotated[Optional[str], typer.Option(
        "--images", metavar="DIR", help="Folder of the images (default: images/ beside each CSV, else its folder).")
    ] = None,
    output: Annotated[str, typer.Option("-o", "--output", metavar="FILE.npz", help="Where to write the head.")
                      ] = "scene_head.npz",
    cache: Annotated[Optional[str], typer.Option(
        "--cache", metavar="FILE.jsonl", help="Classic measures of the photos (the batch runner's file; resumable).")
    ] = None,
    features_cache: Annotated[Optional[str], typer.Option(
        "--features-cache", metavar="DIR", help="Backbone outputs of the photos (resumable).")] = None,
    candidates: Annotated[Optional[str], typer.Option(
        "--candidates", help="Comma-separated candidates to compare (default: all).")] = None,
    folds: Annotated[int, typer.Option("--folds", min=2, help="Cross-validation folds.")] = 5,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the folds.")] = 0,
    cv_all: Annotated[bool, typer.Option(
        "--cv-all", help="Cross-validate over the photos of every label file (default: the first file's only).")
    ] = False,
    jobs: Annotated[int, typer.Option("-j", "--jobs", min=1, help="Worker processes for measuring.")] = 1,
    report: Annotated[Optional[str], typer.Option(
        "--report", metavar="FILE.json", help="Also write the cross-validation results (confusion matrices) here.")
    ] = None,
    no_progress: Annotated[bool, typer.Option("--no-progress", help="No progress bar.")] = False,
) -> None:
    """Fit the effnet engine's scene head (nine SPAQ scenes) on labelled photos, cross-validated."""
    from ..datasets import DatasetError
    from ..scene import SCENES
    from ..training.effnet import (
        SCENE_CANDIDATES,
        fit_scene_head,
        head_sides,
        read_scene_labels,
    )
    from ..training.effnet_features import backbone_features
    from ..training.fit_quality import measure_dataset

    err = Console(stderr=True)
    cands = [c.strip() for c in candidates.split(",")] if candidates else list(SCENE_CANDIDATES)
    bad = [c for c in cands if c not in SCENE_CANDIDATES]
    if bad:
        raise _usage(f"unknown candidates {bad}; choose from {', '.join(SCENE_CANDIDATES)}", "--candidates")
    try:
        table = read_scene_labels(labels, images)
    except (DatasetError, OSError) as exc:
        raise _usage(str(exc), "--labels") from None
    missing = [p for p in table if not os.path.isfile(p)]
    if missing:
        err.print(Text(f"{len(missing)} labelled images not found (first: {missing[0]}); they are left out",
                       style="yellow"), soft_wrap=True)
    paths = [p for p in table if os.path.isfile(p)]
    if not paths:
        err.print(Text("Error: none of the labelled images was found; pass --images DIR", style="red"))
        raise typer.Exit(EXIT_USAGE)
    cache, features_cache = _effnet_caches(cache, features_cache, labels[0])
    try:
        measures, errors = measure_dataset(paths, cache, jobs=jobs, progress=not no_progress)
        sides = head_sides(*(SCENE_CANDIDATES[c] for c in cands))
        feats = backbone_features(paths, features_cache, sides=sides, jobs=jobs)
    except KeyboardInterrupt as exc:
        err.print(Text(f"Interrupted: {exc}", style="yellow"), soft_wrap=True)
        raise typer.Exit(EXIT_INTERRUPTED) from None
    except ValueError as exc:  # a cache written by another version or graph
        raise _usage(str(exc), "--cache/--features-cache") from None
    have = [set(f.paths) for f in feats.values()]
    keep = [p for p in paths if p in measures and all(p in h for h in have)]
    rows = {s: f.rows(keep) for s, f in feats.items()}
    sub = {s: {"stats": f.stats[rows[s]], "embedding": f.embedding[rows[s]], "logits": f.logits[rows[s]]}
           for s, f in feats.items()}
    err.print(f"{len(keep)} labelled photos read, {len(errors)} could not be", markup=False)
    result = fit_scene_head(sub, [measures[p] for p in keep], [table[p] for p in keep],
                            trained_on={"labels": [os.path.basename(f) for f in labels], "n": len(keep)},
                            candidates=cands, folds=folds, seed=seed, cv_all=cv_all, progress=lambda s: err.print(s, markup=False))
    out = Console()
    where = "every label file" if cv_all else os.path.basename(labels[0])
    summary = Table(title=f"{folds}-fold cross-validation on {where}, seed {seed}")
    for col in ("candidate", "top-1 (agreed)", "any-label hit", "lowest recall", "inputs"):
        summary.add_column(col)
    for name, cv in result.cv.items():
        worst = min((v for v in cv["recall"].values() if v is not None), default=float("nan"))
        summary.add_row(name + (" (chosen)" if name == result.chosen else ""), f"{cv['top1']:.3f}",
                        f"{cv['any_label_hit']:.3f}", f"{worst:.2f}", str(cv["dims"]))
    out.print(summary)
    best = result.cv[result.chosen]
    conf = Table(title=f"{result.chosen}: confusion (rows: agreed label, columns: predicted), recall")
    conf.add_column("")
    for s in SCENES:
        conf.add_column(s[:6], justify="right")
    conf.add_column("recall", justify="right")
    for s, row in zip(SCENES, best["confusion"]):
        r = best["recall"][s]
        conf.add_row(s, *(str(v) for v in row), "-" if r is None else f"{r:.2f}")
    out.print(conf)
    result.head.save(output)
    if report:
        with open(report, "w", encoding="utf-8") as f:
            json.dump({"chosen": result.chosen, "cv": result.cv}, f, indent=1)
    err.print(f"scene head ({result.chosen}, trained on {result.n} agreed labels) -> {output}", markup=False)
