"""``picinspector report``: one self-contained HTML page for a shoot (from a results file or photos)."""

from __future__ import annotations

import os
from typing import Annotated, Optional

import typer
from rich.console import Console
from rich.text import Text

from ._app import EXIT_ALL_FAILED, EXIT_INTERRUPTED, app
from ._common import (
    Bf16Opt,
    CropsOpt,
    DeviceOpt,
    EngineOpt,
    FeedbackOpt,
    GroundedOpt,
    ModelOpt,
    NativeDetailOpt,
    QualityModelOpt,
    VlmModelOpt,
    _batch_rows,
    _inspector_options,
    _inspector_or_exit,
    _usage,
)


def _default_results(output: str) -> str:
    stem = output[:-5] if output.lower().endswith(".html") else output
    return stem + ".results.jsonl"


@app.command()
def report(
    inputs: Annotated[list[str], typer.Argument(
        show_default=False,
        help="A results file from `analyze -o` (.jsonl, or .csv with less detail), or photos, folders and "
             "quoted glob patterns to analyse first.")],
    output: Annotated[Optional[str], typer.Option(
        "-o", "--output", metavar="FILE.html",
        help="The report to write (default: the results file's name with .html).")] = None,
    assets: Annotated[Optional[str], typer.Option(
        "--assets", metavar="DIR",
        help="Write thumbnails and overlay masks into DIR (keep it beside the report) instead of embedding them: "
             "a smaller page for big shoots.")] = None,
    results: Annotated[Optional[str], typer.Option(
        "--results", metavar="FILE.jsonl",
        help="When photos are given: where their results go (default: beside the report, NAME.results.jsonl); "
             "a rerun resumes from it.")] = None,
    title: Annotated[Optional[str], typer.Option("--title", help="Title of the page.")] = None,
    thumb_size: Annotated[int, typer.Option("--thumb-size", min=64, max=2048,
                                            help="Long side of the thumbnails, in pixels.")] = 320,
    overlays: Annotated[bool, typer.Option(
        "--overlays/--no-overlays", help="Focus map and clipping overlays, computed from each photo.")] = True,
    links: Annotated[bool, typer.Option("--links/--no-links",
                                        help="Link each thumbnail to the original photo.")] = True,
    jobs: Annotated[int, typer.Option("-j", "--jobs", min=1, help="Worker processes.")] = 1,
    engine: EngineOpt = None,
    quality_model: QualityModelOpt = None,
    model: ModelOpt = None,
    device: DeviceOpt = None,
    crops: CropsOpt = None,
    bf16: Bf16Opt = None,
    feedback: FeedbackOpt = "rules",
    vlm_model: VlmModelOpt = None,
    grounded: GroundedOpt = None,
    native_detail: NativeDetailOpt = False,
    retry_errors: Annotated[bool, typer.Option(
        "--retry-errors", help="When photos are given: analyse again the ones that failed last time.")] = False,
    no_progress: Annotated[bool, typer.Option("--no-progress", help="No progress bars.")] = False,
) -> None:
    """Write an HTML report: gallery and table, radar chart, scenes, findings, overlays, shoot summary."""
    from ..batch import iter_inputs
    from ..report._results import is_results_file, read_results
    from ..report.html import build_report

    err = Console(stderr=True)
    for path in inputs:
        if os.path.splitext(path)[1].lower() in (".jsonl", ".csv") and not os.path.isfile(path):
            raise _usage(f"no such results file: {path!r}", "INPUT")
    result_files = [p for p in inputs if is_results_file(p)]
    analysing = len(result_files) < len(inputs)
    if result_files and analysing:
        raise _usage("give either results files (.jsonl/.csv) or photos, not both", "INPUT")
    if output is None:
        if analysing or len(result_files) > 1:
            raise _usage("name the report with -o FILE.html", "-o/--output")
        output = os.path.splitext(result_files[0])[0] + ".html"
    if not output.lower().endswith((".html", ".htm")):
        raise _usage(f"the report is an HTML file: {output!r} should end in .html", "-o/--output")
    engine_given = {"engine": engine, "quality_model": quality_model, "model": model, "device": device,
                    "crops": crops, "bf16": bf16, "vlm_model": vlm_model, "grounded": grounded}
    if not analysing:
        extra = [k for k, v in engine_given.items() if v is not None]
        extra += [k for k, v in (("feedback", feedback != "rules"), ("native_detail", native_detail),
                                 ("retry_errors", retry_errors), ("results", results is not None)) if v]
        if extra:
            flags = ", ".join("--" + k.replace("_", "-") for k in extra)
            raise _usage(f"{flags}: analysis options apply when photos are given, not a results file", flags)

    note = None
    if analysing:
        options = _inspector_options(engine, feedback, vlm_model, grounded, device, native_detail,
                                     quality_model=quality_model, model=model, crops=crops, bf16=bf16)
        try:
            paths = iter_inputs(inputs)
        except ValueError as exc:
            raise _usage(str(exc), "INPUT") from None
        if not paths:
            raise _usage(f"no images found in {' '.join(inputs)}", "INPUT")
        results = results or _default_results(output)
        if os.path.splitext(results)[1].lower() not in (".jsonl", ".csv"):
            raise _usage(f"--results must be a .jsonl or .csv file, got {results!r}", "--results")
        options = _inspector_or_exit(options, err, parallel=jobs > 1 and len(paths) > 1)
        rows = _batch_rows(paths, results, options, jobs=jobs, retry_errors=retry_errors, progress=not no_progress,
                           err=err)
        sources, bases = results, [os.path.dirname(os.path.abspath(results))]
    else:
        rows, bases = [], []
        for path in result_files:
            try:
                rows += read_results(path)
            except (ValueError, OSError) as exc:
                raise _usage(str(exc), "INPUT") from None
            bases.append(os.path.dirname(os.path.abspath(path)))
        sources = ", ".join(result_files)
        if not rows:
            raise _usage(f"no result rows in {sources}", "INPUT")

    if any(p.lower().endswith(".csv") for p in (result_files or [results])):
        note = ("Made from a CSV results file, which keeps scores, scenes, finding kinds and feedback only: "
                "analyse to .jsonl for severities, suggestions, scene probabilities, EXIF and measures.")
    from ..cull._report import has_cull, report_scripts
    from ..report.html import PAGE_SCRIPTS

    try:
        summary = build_report(rows, output, assets_dir=assets, title=title, source=sources, photo_bases=bases,
                               thumb_size=thumb_size, overlays=overlays, links=links, jobs=jobs,
                               progress=not no_progress, note=note,
                               scripts=report_scripts() if has_cull(rows) else PAGE_SCRIPTS)
    except KeyboardInterrupt:
        err.print(Text("Interrupted while writing the report; run the same command again.", style="yellow"))
        raise typer.Exit(EXIT_INTERRUPTED) from None
    except OSError as exc:
        err.print(Text(f"Error: cannot write the report: {exc}", style="red"), soft_wrap=True)
        raise typer.Exit(EXIT_ALL_FAILED) from None
    size = summary.html_bytes + summary.asset_bytes
    err.print(Text(f"{summary.photos} photos, {summary.errors} could not be analysed -> {summary.output} "
                   f"({size / 1e6:.1f} MB{' with assets' if assets else ''}, {summary.seconds:.1f} s)", style="bold"),
              soft_wrap=True)
    if summary.missing:
        err.print(Text(f"{summary.missing} photos have no preview (first: {summary.problems[0]})", style="yellow"),
                  soft_wrap=True)
    if summary.photos == 0:
        raise typer.Exit(EXIT_ALL_FAILED)
