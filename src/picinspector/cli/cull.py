"""``picinspector cull`` (group, pick, rate, write XMP) and ``picinspector undo`` (revert a cull run)."""

from __future__ import annotations

import os
import shlex
import sys
from typing import Annotated, Any, Optional

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from ._app import EXIT_ALL_FAILED, app
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

_STARS = {-1: "reject", 0: "", 1: "★", 2: "★★", 3: "★★★", 4: "★★★★", 5: "★★★★★"}


def _parse_labels(text: str) -> dict[str, str | None]:
    """``keep=Green,reject=Red`` -> {"keep": "Green", "reject": "Red"}; ``none`` -> {}."""
    from ..cull import STATUSES

    if text.strip().lower() in ("", "none"):
        return {}
    out: dict[str, str | None] = {}
    for part in text.split(","):
        status, sep, label = part.partition("=")
        status = status.strip()
        if not sep or status not in STATUSES:
            raise _usage(f"--labels takes STATUS=LABEL pairs with a status among {', '.join(STATUSES)}, got {part!r}",
                         "--labels")
        out[status] = label.strip() or None
    return out


def _parse_kinds(text: str) -> tuple[str, ...]:
    if text.strip().lower() in ("", "none"):
        return ()
    kinds = tuple(k.strip() for k in text.split(",") if k.strip())
    bad = [k for k in kinds if not k.replace("_", "").isalnum()]
    if bad:
        raise _usage(f"--reject-on takes finding kinds such as motion_blur, got {bad[0]!r}", "--reject-on")
    return kinds


def _default_output(inputs: list[str], result_files: list[str]) -> str:
    if len(result_files) == 1 and len(inputs) == 1:
        stem = os.path.splitext(result_files[0])[0]
        return (stem if stem.endswith(".cull") else stem + ".cull") + ".jsonl"
    return "cull.jsonl"


def _write_rows(rows: list[dict[str, Any]], output: str) -> None:
    from ..batch import JsonlWriter

    folder = os.path.dirname(os.path.abspath(output))
    os.makedirs(folder, exist_ok=True)
    tmp = os.path.join(folder, f".{os.path.basename(output)}.tmp-{os.getpid()}")
    with open(tmp, "w", encoding="utf-8", errors="surrogateescape") as fh:
        for row in rows:
            fh.write(JsonlWriter.format_row(row) + "\n")
    os.replace(tmp, output)


def _analyse(inputs: list[str], options: dict[str, Any], results: str | None, jobs: int, retry_errors: bool,
             progress: bool, dry_run: bool, err: Console) -> list[dict[str, Any]]:
    """Result rows of photos: through the resumable cache ``results``, or (dry run) in memory."""
    from contextlib import closing

    from ..batch import iter_inputs, iter_rows, progress_bar

    try:
        paths = iter_inputs(inputs)
    except ValueError as exc:
        raise _usage(str(exc), "INPUT") from None
    if not paths:
        raise _usage(f"no images found in {' '.join(inputs)}", "INPUT")
    options = _inspector_or_exit(options, err, parallel=jobs > 1 and len(paths) > 1)
    if dry_run and results is None:  # a dry run writes nothing, not even the analysis cache
        rows = []
        with progress_bar(progress, len(paths)) as bar, closing(iter_rows(paths, jobs=jobs, inspector_options=options)) as it:
            task = bar.add_task("analysing", total=len(paths))
            for row in it:
                rows.append(row)
                bar.advance(task)
        order = {os.path.normcase(os.path.abspath(p)): i for i, p in enumerate(paths)}
        rows.sort(key=lambda r: order.get(os.path.normcase(os.path.abspath(r["path"])), 0))
        return rows
    assert results is not None
    return _batch_rows(paths, results, options, jobs=jobs, retry_errors=retry_errors, progress=progress, err=err)


def _embedder(similarity: str, options: dict[str, Any], err: Console):
    """The embedder for ``--similarity`` (None: the pHash)."""
    from ..cull import engine_embedder

    if similarity == "phash":
        return None
    inspector = _inspector_or_exit({k: v for k, v in options.items() if k != "feedback_options"} |
                                   {"feedback": "rules"}, err)
    embed = engine_embedder(inspector)
    if embed is None and similarity == "embedding":
        err.print(Text(f"Error: the {inspector.engine_name} engine has no photo embedding; use --similarity phash "
                       "or an engine that has one (effnet)", style="red"), soft_wrap=True)
        raise typer.Exit(2)
    return embed


def _print_groups(result, err: Console, limit: int) -> None:
    table = Table(title=None, show_lines=False, box=None, pad_edge=False)
    for col in ("group", "photo", "rating", "status", "reason"):
        table.add_column(col, overflow="fold")
    shown = 0
    for row, d in sorted(result.items(), key=lambda item: (item[1].group, item[1].group_rank)):
        if limit and d.group_size < 2:
            continue
        if limit and shown >= limit:
            break
        table.add_row(d.group_id if d.group_rank == 1 else "", os.path.basename(row["path"]),
                      _STARS.get(d.rating, str(d.rating)), d.status + (" (pick)" if d.pick and d.status in ("keep", "reject") and d.group_size > 1 else ""),
                      escape(d.reason))
        shown += 1
    if shown:
        err.print(table)


@app.command()
def cull(
    inputs: Annotated[list[str], typer.Argument(
        show_default=False,
        help="A results file from `analyze -o` (.jsonl; a .csv lacks capture times and findings' severities) or "
             "an earlier cull's .jsonl, or photos, folders and quoted glob patterns to analyse first.")],
    output: Annotated[Optional[str], typer.Option(
        "-o", "--output", metavar="FILE.jsonl",
        help="The cull: one row per photo, the analysis plus a `cull` object (default: cull.jsonl, or "
             "NAME.cull.jsonl beside a results file NAME.jsonl).")] = None,
    report: Annotated[Optional[str], typer.Option(
        "--report", metavar="FILE.html", help="Also write the HTML report, groups shown as strips with the pick marked.")] = None,
    results: Annotated[Optional[str], typer.Option(
        "--results", metavar="FILE.jsonl",
        help="When photos are given: where their analysis goes (default: beside -o, NAME.results.jsonl); a rerun "
             "resumes from it.")] = None,
    keep: Annotated[str, typer.Option(
        "--keep", help="How many picks get 3-5 stars: a share of the shoot (20%) or a count (150).")] = "20%",
    reject_below: Annotated[float, typer.Option(
        "--reject-below", min=0, max=100, help="Reject photos whose cull score is under this.")] = 25.0,
    reject_on: Annotated[Optional[str], typer.Option(
        "--reject-on", metavar="KINDS",
        help="Finding kinds that reject a photo when severe, comma-separated, or 'none' (default: motion_blur, "
             "defocus_blur, soft, no_detail, underexposed, overexposed).", show_default=False)] = None,
    exposure_weight: Annotated[float, typer.Option(
        "--exposure-weight", min=0, help="Within a group: cull points off per EV from the group's middle exposure.")] = 20.0,
    typical_weight: Annotated[float, typer.Option(
        "--typical-weight", min=0, help="Within a group: cull points off per unit of distance from the other frames.")] = 10.0,
    labels: Annotated[str, typer.Option(
        "--labels", help="xmp:Label per status (keep, pick, alternate, reject), or 'none'.")] = "keep=Green,reject=Red",
    similarity: Annotated[str, typer.Option(
        "--similarity", help="Visual similarity: auto (the engine's embedding where it has one, else phash), "
                             "embedding or phash.")] = "auto",
    near: Annotated[Optional[float], typer.Option(
        "--near", min=0, help="Near-duplicate distance, whenever taken (default: phash 0.45, embedding 0.19).",
        show_default=False)] = None,
    burst: Annotated[Optional[float], typer.Option(
        "--burst", min=0, help="Distance within one run of frames (default: phash 0.60, embedding 0.30).",
        show_default=False)] = None,
    burst_gap: Annotated[float, typer.Option(
        "--burst-gap", min=0, help="Seconds between frames of one run (EXIF capture time).")] = 2.0,
    max_gap: Annotated[Optional[float], typer.Option(
        "--max-gap", min=0, help="Photos taken further apart than this many seconds never group (default: no limit).",
        show_default=False)] = None,
    xmp: Annotated[bool, typer.Option(
        "--xmp/--no-xmp", help="Write the ratings as XMP (sidecars, or into the photo with --embed).")] = True,
    embed: Annotated[bool, typer.Option(
        "--embed", help="Write into JPEG, TIFF, PNG and WebP photos themselves (RAW, HEIC, AVIF keep a sidecar).")] = False,
    sidecar: Annotated[str, typer.Option(
        "--sidecar", help="Sidecar names: auto (an existing one, else photo.xmp), adobe (photo.xmp) or darktable "
                          "(photo.NEF.xmp).")] = "auto",
    overwrite: Annotated[bool, typer.Option(
        "--overwrite", help="Replace ratings and labels set by hand (otherwise kept, and said so).")] = False,
    dry_run: Annotated[bool, typer.Option(
        "--dry-run", help="Show what would be written, and write nothing (no XMP, no -o, no cache, no undo file).")] = False,
    undo_file: Annotated[Optional[str], typer.Option(
        "--undo-file", metavar="FILE.jsonl",
        help="Where the undo journal goes (default: beside -o, NAME.undo.jsonl, numbered if taken).")] = None,
    show: Annotated[str, typer.Option(
        "--show", help="What to list on the terminal: groups (photos that have near-duplicates), all, or none.")] = "groups",
    jobs: Annotated[int, typer.Option("-j", "--jobs", min=1, help="Worker processes (analysis) and threads (signatures).")] = 1,
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
    """Cull a shoot: group bursts and near-duplicates, pick the best of each, rate 1-5 stars or reject, with
    the reason in words, and write the ratings as XMP where editors read them (undo with `picinspector undo`)."""
    from .. import cull as culling
    from ..report._results import is_results_file, read_results

    err = Console(stderr=True)
    progress = not no_progress
    for path in inputs:
        if os.path.splitext(path)[1].lower() in (".jsonl", ".csv") and not os.path.isfile(path):
            raise _usage(f"no such results file: {path!r}", "INPUT")
    result_files = [p for p in inputs if is_results_file(p)]
    analysing = len(result_files) < len(inputs)
    if result_files and analysing:
        raise _usage("give either results files (.jsonl/.csv) or photos, not both", "INPUT")
    output = output or _default_output(inputs, result_files)
    if not output.lower().endswith(".jsonl"):
        raise _usage(f"the cull is a .jsonl file, got {output!r}", "-o/--output")
    if report is not None and not report.lower().endswith((".html", ".htm")):
        raise _usage(f"the report is an HTML file: {report!r} should end in .html", "--report")
    if dry_run and report is not None:
        raise _usage("a dry run writes nothing: leave out --report (or run without --dry-run)", "--report")
    for name, value, choices in (("--similarity", similarity, ("auto", "embedding", "phash")),
                                 ("--sidecar", sidecar, culling.SIDECAR_STYLES), ("--show", show, ("groups", "all", "none"))):
        if value not in choices:
            raise _usage(f"{name} must be one of {', '.join(choices)}, got {value!r}", name)
    if embed and not xmp:
        raise _usage("--embed writes XMP: it does not go with --no-xmp", "--embed")
    try:
        rating = culling.RatingOptions(keep=culling.parse_keep(keep), reject_below=reject_below,
                                       reject_on=culling.REJECT_KINDS if reject_on is None else _parse_kinds(reject_on),
                                       labels=_parse_labels(labels), exposure_weight=exposure_weight,
                                       typical_weight=typical_weight)
        grouping = culling.GroupingOptions(near=near, burst=burst, burst_gap=burst_gap, max_gap=max_gap)
    except ValueError as exc:
        raise _usage(str(exc), "--keep") from None
    if xmp:
        try:
            culling._xmp._exiv2()
        except culling.XmpUnavailable as exc:
            err.print(Text(f"Error: {exc}", style="red"), soft_wrap=True)
            raise typer.Exit(2) from None

    engine_given = {"quality_model": quality_model, "model": model, "device": device, "crops": crops, "bf16": bf16}
    if not analysing:
        extra = [k for k, v in engine_given.items() if v is not None] + [k for k, v in (
            ("feedback", feedback != "rules"), ("vlm_model", vlm_model is not None), ("grounded", grounded is not None),
            ("native_detail", native_detail), ("retry_errors", retry_errors), ("results", results is not None)) if v]
        if extra:
            flags = ", ".join("--" + k.replace("_", "-") for k in extra)
            raise _usage(f"{flags}: analysis options apply when photos are given, not a results file", flags)
    options = _inspector_options(engine, feedback, vlm_model, grounded, device, native_detail,
                                 **{k: v for k, v in engine_given.items() if k != "device"})

    stem = output[:-len(".jsonl")]
    if analysing:
        rows = _analyse(inputs, options, results or (None if dry_run else stem + ".results.jsonl"), jobs,
                        retry_errors, progress, dry_run, err)
        bases = [os.path.dirname(os.path.abspath(results))] if results else []
    else:
        rows, bases = [], []
        for path in result_files:
            try:
                rows += read_results(path)
            except (ValueError, OSError) as exc:
                raise _usage(str(exc), "INPUT") from None
            bases.append(os.path.dirname(os.path.abspath(path)))
        if not rows:
            raise _usage(f"no result rows in {', '.join(result_files)}", "INPUT")
    analysed = [r for r in rows if "error" not in r]
    if not analysed:
        err.print(Text("No photo could be analysed: nothing to cull.", style="red"))
        raise typer.Exit(EXIT_ALL_FAILED)
    # rows keep the path as stored; signatures and XMP need the file: resolve relative paths once
    from ..report.html import resolve_photo

    for r in analysed:
        found = resolve_photo(r["path"], bases)
        if found is not None and found != r["path"]:
            r["path"] = found

    embedder = _embedder(similarity, options, err)
    from ..batch import progress_bar

    with progress_bar(progress and len(analysed) > 50, len(analysed)) as bar:
        task = bar.add_task("signatures", total=None)
        sigs, problems = culling.signatures_for(analysed, embedder, threads=jobs)
        bar.update(task, total=len(analysed), completed=len(analysed))
    for i, why in list(problems.items())[:5]:
        err.print(Text(f"{analysed[i]['path']}: no visual signature ({why}); it groups with nothing", style="yellow"),
                  soft_wrap=True)
    if len(problems) > 5:
        err.print(Text(f"... and {len(problems) - 5} more photos without a signature", style="yellow"))

    result = culling.cull(analysed + [r for r in rows if "error" in r], sigs, culling.CullOptions(grouping, rating))
    out_rows = result.rows()

    changes: list = []
    if xmp:
        changes = culling.plan_changes(result.items(), embed=embed, style=sidecar, overwrite=overwrite)
        by_photo = {c.photo: c for c in changes}
        for row in out_rows:
            c = by_photo.get(row.get("path"))
            if c is not None and "cull" in row:
                row["cull"]["xmp"] = {"path": c.path, "action": "error" if c.error else (c.kind if c.changes else "unchanged"),
                                      **({"note": "; ".join(c.notes)} if c.notes else {}),
                                      **({"error": c.error} if c.error else {})}

    counts = result.counts()
    if show != "none":
        _print_groups(result, err, 0 if show == "all" else 40)
    summary = (f"{counts['photos']:,} photos: {counts['groups']:,} group{'s' if counts['groups'] != 1 else ''} of "
               f"near-duplicates ({counts['grouped']:,} photos); "
               f"{counts['keep']:,} kept (3-5 stars), {counts['pick']:,} picks below the cut (2), "
               f"{counts['alternate']:,} alternates (1), {counts['reject']:,} rejected (-1)"
               + (f"; {counts['errors']:,} could not be analysed" if counts["errors"] else "")
               + f". Similarity: {sigs.kind}.")
    err.print(Text(summary, style="bold"), soft_wrap=True)

    failed_writes = 0
    if dry_run:
        todo = [c for c in changes if c.changes]
        for c in changes:
            if c.error:
                line = f"skip    {c.path}: {c.error}"
            elif not c.changes:
                line = f"same    {c.path}"
            else:
                line = f"{c.kind:<7} {c.path}: rating {c.rating}" + (f", label {c.label}" if c.label else ", no label")
            if c.notes:
                line += f" ({'; '.join(c.notes)})"
            typer.echo(line)
        err.print(Text(f"Dry run: {len(todo):,} files would be written; nothing was.", style="yellow"))
        return

    journal = None
    if changes and any(c.changes for c in changes):
        journal = undo_file or culling.free_journal_path(stem)
        if os.path.lexists(journal):
            raise _usage(f"the undo file {journal!r} exists: choose another (it reverts an earlier run)", "--undo-file")
        command = shlex.join(["picinspector", *sys.argv[1:]]) if sys.argv and "picinspector" in sys.argv[0] else None
        try:
            written = culling.apply_changes(changes, journal, command=command)
        except OSError as exc:
            err.print(Text(f"Error: cannot write the undo file {journal}: {exc}; no XMP was written", style="red"),
                      soft_wrap=True)
            raise typer.Exit(EXIT_ALL_FAILED) from None
        for c, problem in written:
            if problem:
                failed_writes += 1
                err.print(Text(f"{c.path}: not written ({problem})", style="red"), soft_wrap=True)
                for row in out_rows:
                    if row.get("path") == c.photo and "cull" in row:
                        row["cull"]["xmp"].update(action="error", error=problem)
    try:
        _write_rows(out_rows, output)
    except OSError as exc:
        err.print(Text(f"Error: cannot write {output}: {exc}", style="red"), soft_wrap=True)
        raise typer.Exit(EXIT_ALL_FAILED) from None
    errors = [c for c in changes if c.error]
    kinds = {k: sum(1 for c in changes if c.changes and c.kind == k) for k in ("create", "merge", "embed")}
    if xmp:
        parts = [f"{v:,} {k if k != 'create' else 'new'}" for k, v in kinds.items() if v]
        same = sum(1 for c in changes if not c.changes and not c.error)
        err.print(Text(f"XMP: {', '.join(parts) or 'nothing to write'}" + (f", {same:,} already up to date" if same else "")
                       + (f", {len(errors):,} skipped (first: {errors[0].path}: {errors[0].error})" if errors else ""),
                       style="yellow" if errors else ""), soft_wrap=True)
        kept = sum(1 for c in changes if c.notes and any("by hand" in n for n in c.notes))
        if kept:
            err.print(Text(f"{kept:,} ratings or labels set by hand were kept (--overwrite replaces them).",
                           style="yellow"), soft_wrap=True)
    err.print(Text(f"-> {output}" + (f"; to revert the XMP: picinspector undo {shlex.quote(journal)}" if journal else "")),
              soft_wrap=True)
    if report is not None:
        from ..cull._report import report_scripts
        from ..report.html import build_report

        try:
            built = build_report(out_rows, report, title="PicInspector cull", source=output, photo_bases=bases,
                                 jobs=jobs, progress=progress, scripts=report_scripts())
        except OSError as exc:
            err.print(Text(f"Error: cannot write the report: {exc}", style="red"), soft_wrap=True)
            raise typer.Exit(EXIT_ALL_FAILED) from None
        err.print(Text(f"report -> {built.output} ({built.html_bytes / 1e6:.1f} MB)"), soft_wrap=True)
    if failed_writes:
        raise typer.Exit(EXIT_ALL_FAILED)


@app.command()
def undo(
    journal: Annotated[str, typer.Argument(metavar="UNDO_FILE", help="The undo file a cull run wrote.")],
    force: Annotated[bool, typer.Option(
        "--force", help="Also restore sidecars that changed since the run (their old bytes are in the file).")] = False,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Say what would be restored; write nothing.")] = False,
) -> None:
    """Revert a cull run: every file it wrote gets its old bytes back (new sidecars are removed)."""
    from ..cull import undo as revert

    err = Console(stderr=True)
    if not os.path.isfile(journal):
        raise _usage(f"no such undo file: {journal!r}", "UNDO_FILE")
    try:
        result = revert(journal, force=force, dry_run=dry_run)
    except (ValueError, OSError) as exc:
        raise _usage(str(exc), "UNDO_FILE") from None
    verb = "would be " if dry_run else ""
    for line in result.conflicts:
        err.print(Text(line, style="yellow"), soft_wrap=True)
    err.print(Text(f"{len(result.restored):,} files {verb}restored, {len(result.removed):,} {verb}removed, "
                   f"{len(result.unchanged):,} already as before, {len(result.conflicts):,} left alone",
                   style="bold"), soft_wrap=True)
    if result.conflicts:
        raise typer.Exit(EXIT_ALL_FAILED)
