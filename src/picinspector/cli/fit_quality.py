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
    output: Annotated[str, typer.Option("-o", "--output", metavar="FILE.npz",
                                        help="Where to write the model.")] = "quality_model.npz",
    cache: Annotated[Optional[str], typer.Option(
        "--cache", metavar="FILE.jsonl",
        help="Keep the measured reports here; a rerun (or a refit) reads them back instead of measuring again.")] = None,
    candidates: Annotated[Optional[str], typer.Option(
        "--candidates", help="Comma-separated learners to compare (default: all).")] = None,
    folds: Annotated[int, typer.Option("--folds", min=2, help="Cross-validation folds.")] = 5,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the folds and the learners.")] = 0,
    jobs: Annotated[int, typer.Option("-j", "--jobs", min=1, help="Worker processes for measuring.")] = 1,
    no_progress: Annotated[bool, typer.Option("--no-progress", help="No progress bar.")] = False,
) -> None:
    """Fit the classic engine's quality model to a labelled dataset (cross-validated, deterministic)."""
    import numpy as np

    from ..datasets import CITATIONS, load_dataset
    from ..evaluation import names_fingerprint
    from ..training.fit_quality import CANDIDATES, fit_quality, measure_dataset

    err = Console(stderr=True)
    cands = [c.strip() for c in candidates.split(",")] if candidates else list(CANDIDATES)
    bad = [c for c in cands if c not in CANDIDATES]
    if bad:
        raise _usage(f"unknown candidates {bad}; choose from {', '.join(CANDIDATES)}", "--candidates")
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
    result = fit_quality([measures[os.path.abspath(s.path)] for s in kept], np.array([s.mos01 for s in kept]),
                         trained_on={"dataset": os.path.basename(os.path.normpath(dataset)), "format": fmt,
                                     "n": len(kept), "citation": CITATIONS.get(fmt),
                                     "names": names_fingerprint(s.path for s in kept)},
                         candidates=cands, folds=folds, seed=seed, progress=lambda line: err.print(line, markup=False))
    table = Table(title=f"{folds}-fold cross-validation, seed {seed}, n = {result.n}")
    for col in ("candidate", "SRCC", "PLCC", "PLCC raw", "KRCC", "SRCC per fold"):
        table.add_column(col)
    for name, cv in result.cv.items():
        mark = " (chosen)" if name == result.chosen else ""
        table.add_row(name + mark, f"{cv['srcc']:.3f}", f"{cv['plcc']:.3f}", f"{cv['plcc_raw']:.3f}",
                      f"{cv['krcc']:.3f}", " ".join(f"{v:.3f}" for v in cv["srcc_folds"]))
    Console().print(table)
    result.model.save(output)
    err.print(f"model ({result.chosen}, {len(result.model.features)} features) -> {output}", markup=False)

