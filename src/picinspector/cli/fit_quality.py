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
    copies_dir: Annotated[Optional[str], typer.Option(
        "--copies-dir", metavar="DIR",
        help="effnet candidates with +exposure: keep the brighter / darker training copies here "
             "(default: FEATURES-CACHE/exposure-copies).")] = None,
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
    if engine == "classic" and copies_dir is not None:
        raise _usage("--copies-dir applies to --engine effnet", "--copies-dir")
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

        features_dir = features_cache or f"{os.path.normpath(dataset)}.effnet-features"
        sides = head_sides(*(QUALITY_CANDIDATES[c] for c in cands))
        feats, readable = _backbone_rows([os.path.abspath(s.path) for s in kept], features_dir, sides, jobs, err)
        kept = [s for s in kept if os.path.abspath(s.path) in readable]
        sub = _by_side(feats, [os.path.abspath(s.path) for s in kept])
        trained_on = {**trained_on, "n": len(kept), "names": names_fingerprint(s.path for s in kept)}
        classic_kept = [measures[os.path.abspath(s.path)] for s in kept]
        copies = _exposure_copies(cands, [s.path for s in kept],
                                  copies_dir or os.path.join(features_dir, "exposure-copies"),
                                  cache, features_dir, sides, jobs, not no_progress, err)
        result = fit_quality_head(sub, classic_kept, np.array([s.mos01 for s in kept]), trained_on=trained_on,
                                  candidates=cands, folds=folds, seed=seed, progress=say, copies=copies)
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


def _backbone_rows(paths: list[str], folder: str, sides, jobs: int, err: Console) -> tuple[dict, set[str]]:
    """The backbone's outputs of ``paths`` ({side: FeatureSet}) and the set of paths it could read."""
    from ..training.effnet_features import backbone_features

    try:
        feats = backbone_features(paths, folder, sides=sides, jobs=jobs)
    except KeyboardInterrupt:
        err.print(Text("Interrupted; rerun the same command to resume", style="yellow"), soft_wrap=True)
        raise typer.Exit(EXIT_INTERRUPTED) from None
    except ValueError as exc:
        raise _usage(str(exc), "--features-cache") from None
    return feats, set.intersection(*(set(f.paths) for f in feats.values()))


def _by_side(feats: dict, paths: list[str]) -> dict:
    """The rows of ``paths`` as `fit_quality_head` reads them: {side: {"stats", "embedding", "logits"}}."""
    return {side: {"stats": f.stats[r], "embedding": f.embedding[r], "logits": f.logits[r]}
            for side, f in feats.items() for r in [f.rows(paths)]}


def _exposure_copies(cands: list[str], sources: list[str], folder: str, cache: Optional[str], features_dir: str,
                     sides, jobs: int, progress: bool, err: Console):
    """The exposure copies the candidates train on (made, measured and run through the backbone once,
    all through the same caches as the photos), or None when no candidate asks for them."""
    from ..training.effnet import QUALITY_CANDIDATES, QualityCopies
    from ..training.exposure_copies import CopyList, make_copies
    from ..training.fit_quality import measure_dataset

    rules = {QUALITY_CANDIDATES[c].exposure for c in cands} - {None}
    if not rules:
        return None
    if len(rules) > 1:
        raise _usage("the candidates ask for different exposure copies; fit them one at a time", "--candidates")
    rule = rules.pop()
    made = make_copies(sources, folder, rule)
    err.print(f"{len(made.paths)} exposure copies of {len(set(made.source.tolist()))} photos in {folder}", markup=False)
    try:
        measured, _ = measure_dataset(made.paths, cache, jobs=jobs, progress=progress)
    except KeyboardInterrupt as exc:
        err.print(Text(f"Interrupted: {exc}", style="yellow"), soft_wrap=True)
        raise typer.Exit(EXIT_INTERRUPTED) from None
    feats, readable = _backbone_rows([p for p in made.paths if p in measured], features_dir, sides, jobs, err)
    ok = [i for i, p in enumerate(made.paths) if p in readable]
    made = CopyList([made.paths[i] for i in ok], made.source[ok], made.ev[ok])
    return QualityCopies(rule, made, _by_side(feats, made.paths), [measured[p] for p in made.paths])


def _classic_candidates() -> dict:
    from ..training.fit_quality import CANDIDATES

    return CANDIDATES


def _effnet_candidates() -> dict:
    from ..training.effnet import QUALITY_CANDIDATES

    return QUALITY_CANDIDATES


#: Engines whose quality model this command fits -> their candidate table.
FITTERS = {"classic": _classic_candidates, "effnet": _effnet_candidates}

