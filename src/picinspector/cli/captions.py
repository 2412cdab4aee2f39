"""``picinspector captions make``: reference descriptions for the vlm writer."""

from __future__ import annotations

import os
from typing import Annotated, Optional

import typer
from rich.console import Console
from rich.text import Text

from ._app import EXIT_ALL_FAILED, EXIT_USAGE, app
from ._common import _usage

captions_app = typer.Typer(help="Caption data for the VLM feedback writer: make reference descriptions.",
                           no_args_is_help=True)
app.add_typer(captions_app, name="captions")


@captions_app.command("make")
def captions_make(
    dataset: Annotated[str, typer.Option("--dataset", metavar="DIR",
                                         help="A labelled dataset, or (with --from measures) any folder of photos.")],
    source: Annotated[str, typer.Option("--from", help="labels (the dataset's MOS, attributes, scenes) or measures "
                                                        "(the classic engine's own analysis of each photo).")] = "labels",
    output: Annotated[str, typer.Option("-o", "--output", metavar="FILE.jsonl")] = "captions.jsonl",
    fmt: Annotated[Optional[str], typer.Option("--format", help="Dataset format (default: detected).")] = None,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the phrasing (and of --limit).")] = 0,
    limit: Annotated[Optional[int], typer.Option("--limit", min=1, help="A seeded random subset.")] = None,
    jobs: Annotated[int, typer.Option("-j", "--jobs", min=1, help="Worker processes (--from measures).")] = 1,
) -> None:
    """Write image/description pairs (JSONL) whose every sentence is true of its image's labels or measures."""
    from ..batch import iter_inputs
    from ..datasets import DatasetError, load_dataset, subsample, write_captions
    from ..feedback.captions import captions_from_labels, captions_from_measures

    if source not in ("labels", "measures"):
        raise _usage(f"--from must be labels or measures, not {source!r}", "--from")
    err = Console(stderr=True)
    try:
        fmt, samples = load_dataset(dataset, fmt)
    except (DatasetError, ImportError) as exc:
        if source == "labels":
            err.print(Text(f"Error: {exc}", style="red"), soft_wrap=True)
            raise typer.Exit(EXIT_USAGE) from None
        samples = None  # an unlabelled folder of photos: describe what the classic engine measures
    if source == "labels":
        samples = subsample(samples, limit, seed)
        captions = captions_from_labels(samples, seed=seed)
        skipped = len(samples) - len(captions)
        note = f"{skipped} without any label skipped" if skipped else ""
    else:
        try:
            paths = [s.path for s in samples if os.path.isfile(s.path)] if samples is not None else iter_inputs([dataset])
        except ValueError as exc:
            raise _usage(str(exc), "--dataset") from None
        paths = subsample(paths, limit, seed)
        captions, errors = captions_from_measures(paths, seed=seed, jobs=jobs)
        for row in errors:
            err.print(Text(f"{row['path']}: {row['error']['message']} ({row['error']['kind']})", style="red"),
                      soft_wrap=True)
        note = f"{len(errors)} could not be read" if errors else ""
    if not captions:
        err.print(Text("No caption written: no image had usable labels or could be analysed.", style="red"))
        raise typer.Exit(EXIT_ALL_FAILED)
    write_captions(captions, output)
    err.print(Text(f"{len(captions)} captions -> {output}" + (f" ({note})" if note else ""), style="bold"),
              soft_wrap=True)
