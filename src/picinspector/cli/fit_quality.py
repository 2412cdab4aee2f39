"""``picinspector fit-quality``: fit the classic engine's quality model."""

from __future__ import annotations

import os
from typing import Annotated, Optional

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from ._app import EXIT_INTERRUPTED, app
from ._common import _usage


@app.command("fit-quality")
def fit_quality_cmd(
    dataset: Annotated[str, typer.Option("--dataset", help="Folder of a labelled dataset.")],
    fmt: Annotated[Optional[str], typer.Option("--format", help="Dataset format (default: detected).")] = None,
    engine: Annotated[str, typer.Option(
        "--engine", help="classic: the classic engine's quality model; effnet: the effnet engine's quality head.")
    ] = "classic",
    output: Annotated[Optional[str], typer.Option(
        "-o", "--output", metavar="FILE.npz",
        help="Where to write the model (default: quality_model.npz, or quality_head.npz for effnet).")] = None,
    features_cache: Annotated[Optional[str], typer.Option(
        "--features-cache", metavar="DIR",
        help="effnet: keep the backbone outputs here (default: DATASET.effnet-features); a refit reads them back.")
    ] = None,
    cache: Annotated[Optional[str], typer.Option(
        "--cache", metavar="FILE.jsonl",
        help="Keep the measured reports here; a rerun (or a refit) reads them back instead of measuring again.")] = None,
    candidates: Annotated[Optional[str], typer.Option(
        "--candidates", help="Comma-separated learners to compare (default: all).")] = None,
    folds: Annotated[int, typer.Option("--folds", min=2, help="Cross-validation folds.")] = 5,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the folds and the learners.")] = 0,
    jobs: Annotated[int, typer.Option("-j", "--jobs", min=1, help="Worker processes for measuring.")] = 1,
    report: Annotated[Optional[str], typer.Option(
        "--report", metavar="FILE.json",
        help="effnet: also write the cross-validation and each photo's out-of-fold prediction here.")] = None,
    no_progress: Annotated[bool, typer.Option("--no-progress", help="No progress bar.")] = False,
) -> None:
    """Fit a quality model to a labelled dataset (cross-validated, deterministic): the classic engine's, or
    with --engine effnet the effnet engine's head."""
    import numpy as np

    from ..datasets import CITATIONS, load_dataset
    from ..evaluation import names_fingerprint
    from ..training.fit_quality import fit_quality, measure_dataset

    err = Console(stderr=True)
    if engine not in FITTERS:
        raise _usage(f"unknown engine {engine!r}; choose from {', '.join(FITTERS)}", "--engine")
    if engine == "classic" and features_cache is not None:
        raise _usage("--features-cache applies to --engine effnet", "--features-cache")
    if engine == "classic" and report is not None:
        raise _usage("--report applies to --engine effnet", "--report")
    table_of = FITTERS[engine]()
    cands = [c.strip() for c in candidates.split(",")] if candidates else list(table_of)
    bad = [c for c in cands if c not in table_of]
    if bad:
        raise _usage(f"unknown candidates {bad}; choose from {', '.join(table_of)}", "--candidates")
    try:
        fmt, samples = load_dataset(dataset, fmt)
    except ValueError as exc:  # unknown format, missing annotation file (DatasetError is a ValueError)
        raise _usage(str(exc), "--dataset/--format") from None
    samples = [s for s in samples if s.mos is not None]
    try:
        measures, errors = measure_dataset([s.path for s in samples], cache, jobs=jobs, progress=not no_progress)
    except KeyboardInterrupt as exc:
        err.print(Text(f"Interrupted: {exc}", style="yellow"), soft_wrap=True)
        raise typer.Exit(EXIT_INTERRUPTED) from None
    except ValueError as exc:  # a cache written by another version
        raise _usage(str(exc), "--cache") from None
    kept = [s for s in samples if os.path.abspath(s.path) in measures]
    err.print(f"{len(kept)} photos measured, {len(errors)} could not be read", markup=False)
    trained_on = {"dataset": os.path.basename(os.path.normpath(dataset)), "format": fmt, "n": len(kept),
                  "citation": CITATIONS.get(fmt),
                  "names": names_fingerprint(s.path for s in kept)}
    say = lambda line: err.print(line, markup=False)  # noqa: E731
    if engine == "effnet":
        from ..training.effnet import QUALITY_CANDIDATES, fit_quality_head, head_sides
        from ..training.effnet_features import backbone_features

        paths = [os.path.abspath(s.path) for s in kept]
        try:
            feats = backbone_features(paths, features_cache or f"{os.path.normpath(dataset)}.effnet-features",
                                      sides=head_sides(*(QUALITY_CANDIDATES[c] for c in cands)), jobs=jobs)
        except KeyboardInterrupt:
            err.print(Text("Interrupted; rerun the same command to resume", style="yellow"), soft_wrap=True)
            raise typer.Exit(EXIT_INTERRUPTED) from None
        except ValueError as exc:
            raise _usage(str(exc), "--features-cache") from None
        readable = set.intersection(*(set(f.paths) for f in feats.values()))
        kept = [s for s, p in zip(kept, paths) if p in readable]
        sub = {side: {"stats": f.stats[r], "embedding": f.embedding[r], "logits": f.logits[r]}
               for side, f in feats.items() for r in [f.rows([s.path for s in kept])]}
        trained_on = {**trained_on, "n": len(kept), "names": names_fingerprint(s.path for s in kept)}
        result = fit_quality_head(sub, [measures[os.path.abspath(s.path)] for s in kept],
                                  np.array([s.mos01 for s in kept]), trained_on=trained_on,
                                  candidates=cands, folds=folds, seed=seed, progress=say)
        model = result.head.model
        output = output or "quality_head.npz"
        if report:
            import json

            with open(report, "w", encoding="utf-8") as f:
                json.dump({"chosen": result.chosen, "cv": result.cv, "mos01": [s.mos01 for s in kept],
                           "oof": {name: dict(zip((s.path for s in kept), pred))
                                   for name, pred in result.extra["oof"].items()}}, f, indent=1)
    else:
        result = fit_quality([measures[os.path.abspath(s.path)] for s in kept], np.array([s.mos01 for s in kept]),
                             trained_on=trained_on, candidates=cands, folds=folds, seed=seed, progress=say)
        model = result.model
        output = output or "quality_model.npz"
    table = Table(title=f"{folds}-fold cross-validation, seed {seed}, n = {result.n}")
    for col in ("candidate", "SRCC", "PLCC", "PLCC raw", "KRCC", "SRCC per fold"):
        table.add_column(col)
    for name, cv in result.cv.items():
        mark = " (chosen)" if name == result.chosen else ""
        table.add_row(name + mark, f"{cv['srcc']:.3f}", f"{cv['plcc']:.3f}", f"{cv['plcc_raw']:.3f}",
                      f"{cv['krcc']:.3f}", " ".join(f"{v:.3f}" for v in cv["srcc_folds"]))
    Console().print(table)
    model.save(output)
    err.print(f"model ({result.chosen}, {len(model.features)} features) -> {output}", markup=False)


def _classic_candidates() -> dict:
    from ..training.fit_quality import CANDIDATES

    return CANDIDATES


def _effnet_candidates() -> dict:
    from ..training.effnet import QUALITY_CANDIDATES

    return QUALITY_CANDIDATES


#: Engines whose quality model this command fits -> their candidate table.
FITTERS = {"classic": _classic_candidates, "effnet": _effnet_candidates}

