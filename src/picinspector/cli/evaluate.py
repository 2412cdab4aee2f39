"""``picinspector eval``: agreement with people on a labelled dataset; ROUGE for the vlm writer."""

from __future__ import annotations

import json
import sys
from typing import Annotated, Any, Optional

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from ._app import EXIT_ALL_FAILED, EXIT_INTERRUPTED, EXIT_OK, EXIT_USAGE, app
from ._common import (
    Bf16Opt,
    CropsOpt,
    DeviceOpt,
    EngineOpt,
    ModelOpt,
    QualityModelOpt,
    _deep_modules,
    _engine_options,
    _inspector_or_exit,
    _resolve_engine,
    _usage,
)


@app.command("eval")
def eval_(
    dataset: Annotated[Optional[str], typer.Option(
        "--dataset", metavar="DIR", help="Dataset folder (or its annotation/CSV file).", show_default=False)] = None,
    fmt: Annotated[Optional[str], typer.Option(
        "--format", help="spaq, koniq, biq2021 or csv (default: detected from the files).")] = None,
    engine: EngineOpt = None,
    quality_model: QualityModelOpt = None,
    model: ModelOpt = None,
    device: DeviceOpt = None,
    crops: CropsOpt = None,
    bf16: Bf16Opt = None,
    captions: Annotated[Optional[str], typer.Option(
        "--captions", metavar="FILE", help="vlm: reference descriptions (any caption format).")] = None,
    grounded: Annotated[Optional[bool], typer.Option(
        "--grounded/--no-grounded", help="vlm: measured facts in the prompt (default: as trained).")] = None,
    compare_grounding: Annotated[bool, typer.Option(
        "--compare-grounding", help="vlm: evaluate with and without grounding, side by side.")] = False,
    max_new_tokens: Annotated[Optional[int], typer.Option("--max-new-tokens", min=1, help="vlm: length limit.")] = None,
    jobs: Annotated[int, typer.Option("-j", "--jobs", min=1, help="Worker processes.")] = 1,
    json_out: Annotated[bool, typer.Option("--json", help="Print one JSON object on stdout.")] = False,
    output: Annotated[Optional[str], typer.Option(
        "-o", "--output", metavar="FILE.csv", help="Write per-image predictions (vlm: generations) to this CSV.")
    ] = None,
    limit: Annotated[Optional[int], typer.Option(
        "--limit", min=1, help="Evaluate a seeded random subset of this many images.")] = None,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the --limit subset.")] = 0,
    rows: Annotated[Optional[str], typer.Option(
        "--rows", metavar="FILE.jsonl",
        help="Reuse the reports of an earlier `analyze -o FILE.jsonl` (or fit-quality --cache) run instead of "
             "analysing: the findings are re-derived with the current rules from the stored measures, scores "
             "and scene. Photos without a row are analysed.", show_default=False)] = None,
    rescore: Annotated[bool, typer.Option(
        "--rescore", help="With --rows: recompute the classic scores from the stored measures "
                          "(the classic engine; with --quality-model, that model).")] = False,
    feedback_calibration: Annotated[Optional[str], typer.Option(
        "--feedback-calibration", metavar="FILE.json",
        help="The rule findings' calibration (from fit-feedback; default: the shipped one).",
        show_default=False)] = None,
    stored_findings: Annotated[bool, typer.Option(
        "--stored-findings", help="With --rows: keep the stored findings (to measure the version that wrote "
                                  "them).")] = False,
    no_progress: Annotated[bool, typer.Option("--no-progress", help="No progress bar.")] = False,
) -> None:
    """Score a labelled dataset and report agreement with people (SRCC, PLCC, KRCC, RMSE, ...); with
    --engine vlm, ROUGE and the contradiction rate of generated feedback against reference captions."""
    from ..datasets import CITATIONS, DATASETS, DatasetError, load_dataset, subsample
    from ..evaluation import evaluate, render_tables

    if engine in EVALUATORS:
        raise typer.Exit(EVALUATORS[engine](dict(locals()), Console(stderr=True)))
    for flag, value in (("--captions", captions), ("--grounded/--no-grounded", grounded),
                        ("--max-new-tokens", max_new_tokens), ("--compare-grounding", compare_grounding or None)):
        if value is not None:
            raise _usage(f"{flag} applies to --engine vlm", flag)
    if dataset is None:
        raise _usage("eval needs --dataset DIR", "--dataset")
    if fmt is not None and fmt not in DATASETS:
        raise _usage(f"unknown dataset format {fmt!r}; choose from {', '.join(DATASETS)}", "--format")
    if rescore and engine is None:  # only the classic engine scores from stored measures
        engine = "classic"
    engine = _resolve_engine(engine, quality_model=quality_model, model=model, device=device, crops=crops, bf16=bf16)
    engine_options = _engine_options(engine, quality_model=quality_model, model=model, device=device, crops=crops,
                                     bf16=bf16)
    if output is not None and not output.lower().endswith(".csv"):
        raise _usage(f"predictions are written as CSV; {output!r} does not end in .csv", "-o/--output")
    for flag, value in (("--rescore", rescore), ("--stored-findings", stored_findings)):
        if value and rows is None:
            raise _usage(f"{flag} applies to --rows", flag)
    if rescore and engine != "classic":
        raise _usage("--rescore recomputes the classic engine's scores; the other engines read pixels", "--rescore")
    err = Console(stderr=True)
    stored = None
    if rows is not None:
        from ..evaluation import read_rows

        try:
            stored = read_rows(rows)
        except (OSError, ValueError) as exc:
            raise _usage(f"cannot read --rows {rows}: {exc}", "--rows") from None
    try:
        fmt, samples = load_dataset(dataset, fmt)
    except (DatasetError, ImportError) as exc:
        err.print(Text(f"Error: {exc}", style="red"), soft_wrap=True)
        raise typer.Exit(EXIT_USAGE) from None
    samples = subsample(samples, limit, seed)
    try:
        feedback_options = {} if feedback_calibration is None else {"feedback_options": {
            "calibration": feedback_calibration}}
        result = evaluate(samples, _inspector_or_exit({"engine": engine, **engine_options, **feedback_options}, err,
                                                      parallel=jobs > 1 and len(samples) > 1), jobs=jobs,
                          progress=not no_progress and not json_out,
                          predictions_out=output, rows=stored, rescore=rescore, stored_findings=stored_findings,
                          dataset=dataset, fmt=fmt)
    except KeyboardInterrupt:
        err.print(Text("Interrupted.", style="yellow"))
        raise typer.Exit(EXIT_INTERRUPTED) from None
    info = {"root": dataset, "format": fmt, "limit": limit, "seed": seed if limit is not None else None,
            "engine": engine, "citation": CITATIONS.get(fmt), "rows": rows}
    for warning in result.warnings if json_out else ():
        err.print(Text(f"Warning: {warning}", style="yellow"), soft_wrap=True)
    if json_out:
        sys.stdout.write(json.dumps({"dataset": info, **result.to_dict()}, ensure_ascii=False) + "\n")
    else:
        out = Console(highlight=False)
        subset = f", random {limit} (seed {seed})" if limit is not None else ""
        for item in render_tables(result, f"{dataset} ({fmt}{subset}), engine {engine}"):
            out.print(item)
        if info["citation"]:
            out.print(Text(f"Data: {info['citation']}", style="dim"), soft_wrap=True)
        if output is not None:
            out.print(Text(f"Predictions -> {output}", style="dim"), soft_wrap=True)
    if result.counts["scored"] == 0:
        raise typer.Exit(EXIT_ALL_FAILED)


def _vlm_setup(a: dict[str, Any], err: Console) -> tuple[Any, Any, list[Any]] | None:
    """The vlm modules and the captions of ``--captions`` (a seeded ``--limit`` subset); None after
    printing the reason when the vlm extra is missing or the captions cannot be read."""
    from ..datasets import DatasetError, load_captions, subsample

    modules = _deep_modules(err, "vlm", "models.vlm", "training.lora")
    if modules is None:
        return None
    try:
        samples = load_captions(a["captions"])
    except (DatasetError, OSError) as exc:
        err.print(Text(f"Error: {exc}", style="red"), soft_wrap=True)
        return None
    return modules[0], modules[1], subsample(samples, a["limit"], a["seed"])


def _eval_vlm(a: dict[str, Any], err: Console) -> int:
    """``eval --engine vlm``: ROUGE-1/2/L and the contradiction rate of the generated feedback."""
    from ..models import WeightsNotFound
    from ..models._device import pick_device

    for flag, key in (("--captions", "captions"), ("--model", "model")):
        if a[key] is None:
            raise _usage(f"eval --engine vlm needs {flag}", flag)
    setup = _vlm_setup(a, err)
    if setup is None:
        return EXIT_USAGE
    vlm_mod, lora, samples = setup
    try:
        vlm = vlm_mod.load_vlm(a["model"], device=str(pick_device(a["device"])))
    except (WeightsNotFound, ValueError, OSError) as exc:
        err.print(Text(f"Error: {exc}", style="red"), soft_wrap=True)
        return EXIT_USAGE
    modes = [True, False] if a["compare_grounding"] else [a["grounded"]]
    results = []
    try:
        for mode in modes:
            summary, rows = lora.evaluate_vlm(samples, a["model"], grounded=mode, max_new_tokens=a["max_new_tokens"],
                                         progress=not a["no_progress"] and not a["json_out"], vlm=vlm)
            results.append((summary, rows))
    except KeyboardInterrupt:
        err.print(Text("Interrupted.", style="yellow"))
        return EXIT_INTERRUPTED
    if a["output"]:
        import csv

        from ..batch import spreadsheet_safe

        with open(a["output"], "w", newline="", encoding="utf-8") as fh:
            writer = csv.writer(fh)
            writer.writerow(["grounded", "image", "reference", "generated", "rouge1", "rouge2", "rougeL",
                             "contradictions"])
            for summary, rows in results:
                for r in rows:
                    writer.writerow([summary["grounded"], *(spreadsheet_safe(r[k]) for k in ("image", "reference",
                                                                                             "generated")),
                                     r["rouge1"], r["rouge2"], r["rougeL"], ";".join(r.get("contradictions") or [])])
    from ..report import json_safe

    if a["json_out"]:
        sys.stdout.write(json.dumps(json_safe({"captions": a["captions"], "model": a["model"],
                                               "results": [s for s, _ in results]}), ensure_ascii=False) + "\n")
        return EXIT_OK
    table = Table(title=f"{a['captions']}: {len(samples)} images, model {a['model']}", title_justify="left")
    for col in ("grounded", "n", "ROUGE-1", "ROUGE-2", "ROUGE-L", "texts with a contradiction", "s / image"):
        table.add_column(col, justify="right")
    for summary, _ in results:
        rate = summary.get("contradiction_rate")
        table.add_row(str(summary["grounded"]), str(summary["n"]), f"{summary['rouge1']:.3f}",
                      f"{summary['rouge2']:.3f}", f"{summary['rougeL']:.3f}", "-" if rate is None else f"{rate:.1%}",
                      f"{summary['seconds_per_image']:.2f}")
    Console(highlight=False).print(table)
    for failure in results[0][0].get("failed") or []:
        err.print(Text(f"{failure['image']}: {failure['message']} ({failure['kind']}), skipped", style="red"),
                  soft_wrap=True)
    if a["output"]:
        err.print(Text(f"generations -> {a['output']}", style="dim"), soft_wrap=True)
    return EXIT_OK


#: ``eval --engine NAME`` for engines evaluated on something else than a scored dataset.
EVALUATORS: dict[str, Any] = {"vlm": _eval_vlm}
