"""``picinspector fit-feedback``: fit the rule findings' severities to opinion scores."""

from __future__ import annotations

import json
import os
import sys
from dataclasses import replace
from typing import Annotated, Optional

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from ._app import EXIT_INTERRUPTED, app
from ._common import _usage

#: Where the quality of each photo comes from while fitting.
QUALITY_SOURCES = ("oof", "rows", "report")


def _cached_spellings(cache: str) -> dict[str, str]:
    """Real path -> the path as a cache file spells it (empty for a missing or unreadable cache)."""
    out: dict[str, str] = {}
    try:
        with open(cache, encoding="utf-8") as fh:
            for line in fh:
                try:
                    path = json.loads(line).get("path")
                except ValueError:
                    continue  # a half-written last line: the batch runner repairs it
                if path:
                    out.setdefault(os.path.realpath(path), path)
    except OSError:
        pass
    return out


@app.command("fit-feedback")
def fit_feedback_cmd(
    dataset: Annotated[str, typer.Option("--dataset", help="Folder of a dataset with MOS.")],
    fmt: Annotated[Optional[str], typer.Option("--format", help="Dataset format (default: detected).")] = None,
    output: Annotated[str, typer.Option("-o", "--output", metavar="FILE.json",
                                        help="Where to write the calibration.")] = "feedback_calibration.json",
    cache: Annotated[Optional[str], typer.Option(
        "--cache", metavar="FILE.jsonl",
        help="The measured reports (the same cache as fit-quality's); a rerun reads them back instead of "
             "measuring again, and keeps the out-of-fold quality beside them.")] = None,
    quality: Annotated[str, typer.Option(
        "--quality", help="oof: cross-validated predictions of the quality model's learners (what unseen photos "
                          "get); rows: the quality stored in the cache rows (when they are already out of "
                          "sample); report: the out-of-fold predictions in --quality-report (the effnet "
                          "engine's).")] = "oof",
    quality_model: Annotated[Optional[str], typer.Option(
        "--quality-model", metavar="FILE.npz", help="The quality model whose learners --quality oof refits "
                                                    "(default: the shipped one).")] = None,
    quality_report: Annotated[Optional[str], typer.Option(
        "--quality-report", metavar="FILE.json",
        help="With --quality report: the --report of `fit-quality --engine effnet` (its chosen head's "
             "out-of-fold predictions, times the guards, as the effnet engine reports them).")] = None,
    folds: Annotated[int, typer.Option("--folds", min=2, help="Cross-validation folds.")] = 5,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the folds.")] = 0,
    jobs: Annotated[int, typer.Option("-j", "--jobs", min=1, help="Worker processes for measuring.")] = 1,
    json_out: Annotated[bool, typer.Option("--json", help="Print the cross-validated figures as JSON.")] = False,
    no_progress: Annotated[bool, typer.Option("--no-progress", help="No progress bar.")] = False,
) -> None:
    """Fit the feedback calibration (cost tables, reference quality) to a dataset with MOS,
    cross-validated and deterministic; write it as JSON (ship it as src/picinspector/feedback/calibration.json)."""
    import numpy as np

    from ..datasets import CITATIONS, load_dataset
    from ..evaluation import feedback_tables, names_fingerprint, read_rows
    from ..training.fit_feedback import _quality_candidate, fit_feedback, oof_quality, report_quality
    from ..training.fit_quality import measure_dataset

    err = Console(stderr=True)
    if quality not in QUALITY_SOURCES:
        raise _usage(f"--quality must be one of {', '.join(QUALITY_SOURCES)}, got {quality!r}", "--quality")
    if quality == "rows" and cache is None:
        raise _usage("--quality rows reads the quality from the cache rows: give --cache", "--quality")
    if (quality == "report") != (quality_report is not None):
        raise _usage("--quality report and --quality-report FILE.json go together", "--quality-report")
    if quality_report is not None and not os.path.isfile(quality_report):
        raise _usage(f"--quality-report {quality_report}: not a file", "--quality-report")
    if quality_model is not None and not os.path.isfile(quality_model):
        raise _usage(f"--quality-model {quality_model}: not a file", "--quality-model")
    try:
        fmt, samples = load_dataset(dataset, fmt)
    except ValueError as exc:
        raise _usage(str(exc), "--dataset/--format") from None
    if cache is None:
        import tempfile

        cache = os.path.join(tempfile.mkdtemp(prefix="picinspector-fit-feedback-"), "measures.jsonl")
    # Each photo under the spelling the cache already has (a cache written through a link, or with
    # a relative path, is reused, not measured again), else its real path.
    spelled = _cached_spellings(cache)
    samples = [replace(s, path=spelled.get(os.path.realpath(s.path), os.path.realpath(s.path)))
               for s in samples if s.mos01 is not None]
    try:
        measures, errors = measure_dataset([s.path for s in samples], cache, jobs=jobs, progress=not no_progress)
    except KeyboardInterrupt as exc:
        err.print(Text(f"Interrupted: {exc}", style="yellow"), soft_wrap=True)
        raise typer.Exit(EXIT_INTERRUPTED) from None
    except ValueError as exc:
        raise _usage(str(exc), "--cache") from None
    rows = read_rows(cache)
    kept = [s for s in samples if os.path.abspath(s.path) in measures and os.path.abspath(s.path) in rows]
    err.print(f"{len(kept)} photos measured, {len(errors)} could not be read", markup=False)
    kept_rows = [rows[os.path.abspath(s.path)] for s in kept]
    mos01 = np.array([s.mos01 for s in kept])
    say = (lambda line: None) if no_progress and json_out else (lambda line: err.print(line, markup=False))
    if quality == "oof":
        candidate, qmeta = _quality_candidate(quality_model)
        try:
            q = oof_quality([r["measures"] for r in kept_rows], mos01, folds=folds, seed=seed, candidate=candidate,
                            cache=cache + ".oof-quality.json", progress=say)
        except ImportError as exc:
            raise _usage(str(exc), "--quality") from None
        source = {"source": "oof", "candidate": candidate, "folds": folds, "seed": seed,
                  "model_trained_on": (qmeta.get("trained_on") or {}).get("dataset")}
    elif quality == "report":
        try:
            q, source = report_quality(quality_report, kept_rows)
        except ValueError as exc:
            raise _usage(str(exc), "--quality-report") from None
    else:
        q = np.array([float(r["scores"]["quality"]) for r in kept_rows])
        source = {"source": "rows", "engine": kept_rows[0].get("engine") if kept_rows else None}
    trained_on = {"dataset": os.path.basename(os.path.normpath(dataset)), "format": fmt, "n": len(kept),
                  "citation": CITATIONS.get(fmt), "names": names_fingerprint(s.path for s in kept)}
    try:
        result = fit_feedback(kept_rows, mos01, [s.subset for s in kept], trained_on=trained_on, quality=q,
                              quality_source=source, folds=folds, seed=seed, progress=say)
    except (ImportError, ValueError) as exc:
        raise _usage(str(exc), "--dataset") from None
    result.calibration.save(output)
    if json_out:
        from ..report import json_safe

        sys.stdout.write(json.dumps(json_safe({"dataset": dataset, "format": fmt, "n": result.n, "folds": folds,
                                               "seed": seed, "quality_srcc": result.quality_srcc_sets, "cv": result.cv,
                                               "per_fold": result.per_fold, "output": output}),
                                    ensure_ascii=False) + "\n")
    else:
        out = Console(highlight=False)
        title = (f"{dataset} ({fmt}, n = {result.n}): {folds}-fold cross-validated feedback, seed {seed} "
                 f"(quality: {quality}, SRCC {result.quality_srcc:.3f})")
        for item in feedback_tables(result.cv, srcc=result.quality_srcc_sets, title=title):
            out.print(item)
        folds_table = Table(title="Per fold (fitted on the other folds)", title_justify="left")
        for col in ("fold", "n", "reference quality", "false alarms", "misses"):
            folds_table.add_column(col, justify="right")
        for f in result.per_fold:
            folds_table.add_row(str(f["fold"] + 1), str(f["n"]), f"{f['reference_quality']:.0f}",
                                f"{100 * f['false_alarms']:.1f}%", f"{100 * f['misses']:.1f}%")
        out.print(folds_table)
    err.print(f"calibration (reference quality {result.calibration.reference_quality:.0f}, "
              f"{len(result.calibration.terms)} terms) -> {output}", markup=False)
