"""The ``picinspector`` command line (Typer + Rich).

Commands: ``analyze`` (readable panels, ``--json`` lines, or a resumable batch file with ``-o``; any
engine and feedback writer), ``measures`` (every measure with its unit), ``samples`` (write the demo
photos), ``eval`` (agreement with a labelled dataset; ROUGE and contradictions for the vlm writer),
``fit-quality`` (fit the classic quality model), ``train`` (the dinov2 engine or the vlm writer),
``captions make`` (reference descriptions for the vlm writer), and ``--version``. Exit codes: 0 when
at least one image was analysed (or a batch found everything already done), 1 when every image
failed, 2 for bad arguments, missing models or extras, or when no input was found, 130 when
interrupted.
"""

from __future__ import annotations

import json
import os
import shlex
import sys
from contextlib import closing
from typing import Annotated, Any, Optional

import typer
from rich.console import Console, Group
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from ._version import __version__

app = typer.Typer(
    name="picinspector",
    help="How good is this photo, and why: six scores, the scene and plain-language feedback, offline.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

EXIT_OK, EXIT_ALL_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130

_SEVERITY_STYLE = {"info": "cyan", "minor": "yellow", "moderate": "dark_orange", "severe": "bold red"}
_BAR_WIDTH = 12


def _version_callback(value: bool) -> None:
    if value:
        typer.echo(f"picinspector {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[bool, typer.Option("--version", callback=_version_callback, is_eager=True,
                                          help="Print the version and exit.")] = False,
) -> None:
    """How good is this photo, and why."""


# --------------------------------------------------------------------------------------------------
# Human-readable rendering


def _score_style(value: float | None) -> str:
    if value is None:
        return "dim"
    return "green" if value >= 65 else "yellow" if value >= 40 else "red"


def _score_line(name: str, value: float | None) -> Text:
    text = Text(f"{name:<13}")
    if value is None:
        return text.append("   n/a", style="dim")
    style = _score_style(value)
    filled = int(round(max(0.0, min(100.0, value)) / 100 * _BAR_WIDTH))
    text.append(f"{value:5.1f} ", style=f"bold {style}")
    text.append("█" * filled, style=style)
    text.append("░" * (_BAR_WIDTH - filled), style="dim")
    return text


def _key_measures(m: dict[str, Any]) -> Text:
    parts = []
    if isinstance(m.get("exposure_ev"), (int, float)):
        parts.append(f"exposure {m['exposure_ev']:+.1f} EV")
    if isinstance(m.get("noise_sigma"), (int, float)):
        parts.append(f"noise sigma {m['noise_sigma']:.1f}")
    if isinstance(m.get("jpeg_quality"), (int, float)):
        parts.append(f"JPEG quality {m['jpeg_quality']:.0f}")
    if m.get("blur_kind"):
        parts.append(f"blur {m['blur_kind']}")
    return Text(" · ".join(parts), style="dim")


def render_report(row: dict[str, Any], width: int | None = None) -> Panel:
    """A Rich panel for one report row (``Report.to_dict()``), ``width`` columns wide (None: fit)."""
    from .report import SCORE_NAMES

    body: list[Any] = [Text(f"{row.get('width')}×{row.get('height')} {row.get('format')}", style="dim")]

    scores = row.get("scores") or {}
    grid = Table.grid(padding=(0, 3))
    grid.add_column()
    grid.add_column()
    lines = [_score_line(n, scores.get(n)) for n in SCORE_NAMES]
    for left, right in zip(lines[0::2], lines[1::2]):
        grid.add_row(left, right)
    body += [Text(""), grid]

    scene = row.get("scene") or {}
    conf = scene.get("confidence")
    scene_text = Text("scene  ", style="bold").append(str(scene.get("label")), style="bold magenta")
    if conf is not None:
        scene_text.append(f"  {conf:.2f}")
        if conf < 0.4:
            scene_text.append(" (weak guess)", style="italic dim")
    if scene.get("method"):
        scene_text.append(f"  via {scene['method']}", style="dim")
    body += [Text(""), scene_text]

    findings = row.get("findings") or []
    if findings:
        table = Table.grid(padding=(0, 1))
        table.add_column(no_wrap=True)
        table.add_column()
        for f in findings:
            style = _SEVERITY_STYLE.get(f.get("severity"), "white")
            text = Text(str(f.get("message", "")))
            if f.get("suggestion"):
                text.append("\n→ " + str(f["suggestion"]), style="dim")
            table.add_row(Text(f"● {f.get('severity', '')}", style=style), text)
        body += [Text(""), table]

    if row.get("feedback"):
        body += [Text(""), Text(str(row["feedback"]))]
    measures = _key_measures(row.get("measures") or {})
    if measures.plain:
        body += [Text(""), measures]
    return Panel(Group(*body), title=Text(str(row.get("path")), style="bold"), title_align="left",
                 expand=False, width=width)


# --------------------------------------------------------------------------------------------------
# analyze


def _usage(message: str, param: str | None = None) -> typer.BadParameter:
    return typer.BadParameter(message, param_hint=param)


# Engine options shared by `analyze` and `eval` (declared once).
QualityModelOpt = Annotated[Optional[str], typer.Option(
    "--quality-model", metavar="FILE.npz",
    help="Classic engine: a model from `fit-quality` instead of the shipped one ('handmade': no model).")]
ModelOpt = Annotated[Optional[str], typer.Option(
    "--model", metavar="RUN_DIR", help="dinov2 engine (and eval --engine vlm): a trained model, i.e. a `train` "
                                       "run folder.")]
DeviceOpt = Annotated[Optional[str], typer.Option(
    "--device", help="dinov2 engine and vlm writer: auto (default), cpu, cuda, cuda:1, mps.")]
CropsOpt = Annotated[Optional[int], typer.Option(
    "--crops", min=1, help="dinov2 engine: test-time crops per photo (default: the model's own, 3).")]
Bf16Opt = Annotated[Optional[bool], typer.Option(
    "--bf16", help="dinov2 engine: bfloat16 autocast (faster on CPUs and GPUs with bf16).")]


#: Which command-line options each engine takes: engine -> {engine keyword: flag}.
_ENGINE_FLAGS: dict[str, dict[str, str]] = {
    "classic": {"quality_model": "--quality-model"},
    "dinov2": {"model": "--model", "device": "--device", "crops": "--crops", "bf16": "--bf16"},
}


def _engine_options(engine: str, **given: Any) -> dict[str, Any]:
    """The engine keyword arguments among ``given`` (None = not given); a usage error for a flag the
    engine does not take, or a missing ``--model`` for a trained engine."""
    from .pipeline import ENGINES

    if engine not in ENGINES:
        raise _usage(f"unknown engine {engine!r}; choose from {', '.join(sorted(ENGINES))}", "--engine")
    takes = _ENGINE_FLAGS.get(engine, {})
    for name, value in given.items():
        if value is not None and name not in takes:
            owner = next((e for e, flags in _ENGINE_FLAGS.items() if name in flags), "another")
            flag = next((f[name] for f in _ENGINE_FLAGS.values() if name in f), name)
            raise _usage(f"{flag} applies to the {owner} engine, not {engine}", flag)
    if "model" in takes and given.get("model") is None:
        raise _usage(f"the {engine} engine needs --model RUN_DIR (a folder made by `picinspector train --engine "
                     f"{engine}`)", "--model")
    return {k: v for k, v in given.items() if v is not None}


def _feedback_options(feedback: str, vlm_model: str | None, grounded: bool | None,
                      device: str | None) -> dict[str, Any]:
    """The feedback writer's options; a usage error for vlm flags without ``--feedback vlm``."""
    from .feedback import FEEDBACK_WRITERS

    if feedback not in FEEDBACK_WRITERS:
        raise _usage(f"unknown feedback writer {feedback!r}; choose from {', '.join(sorted(FEEDBACK_WRITERS))}",
                     "--feedback")
    if feedback != "vlm":
        for flag, value in (("--vlm-model", vlm_model), ("--grounded/--no-grounded", grounded)):
            if value is not None:
                raise _usage(f"{flag} applies to --feedback vlm", flag)
        return {}
    if vlm_model is None:
        raise _usage("--feedback vlm needs --vlm-model RUN_DIR (a `train --engine vlm` run folder or a merged "
                     "export)", "--vlm-model")
    return {"model_dir": vlm_model, "grounded": grounded, **({"device": device} if device else {})}


#: What each deep extra must make importable (the deep modules import some of these lazily).
_EXTRA_PACKAGES = {"deep": ("torch", "transformers", "safetensors"),
                   "vlm": ("torch", "transformers", "safetensors", "peft")}


def _deep_modules(err: Console, extra: str, *names: str) -> list[Any] | None:
    """Import ``picinspector`` submodules that need a deep extra; None (after printing how to install
    it) when torch, transformers, safetensors or peft is missing."""
    import importlib

    try:
        for package in _EXTRA_PACKAGES[extra]:
            importlib.import_module(package)
        return [importlib.import_module(f"picinspector.{name}") for name in names]
    except ImportError as exc:
        err.print(Text(f"Error: {exc}. Install PyTorch first (pip install torch==2.13.0 for the CPU, or the build "
                       f"for your CUDA), then pip install \"picinspector[{extra}]\"", style="red"), soft_wrap=True)
        return None


def _inspector_or_exit(options: dict[str, Any], err: Console, parallel: bool = False) -> Any:
    """An `Inspector` built once here, so that a model loads once and a missing model, missing weights
    or missing deep extras end with one clear line (exit 2) instead of a traceback. With ``parallel``
    (worker processes will each build one) the options are only checked, and returned as they are."""
    from .models import WeightsNotFound
    from .pipeline import Inspector, check_options

    try:
        if parallel:
            check_options(**options)
            return options
        return Inspector(**options)
    except (ValueError, WeightsNotFound, ImportError) as exc:
        err.print(Text(f"Error: {exc}", style="red"), soft_wrap=True)
        raise typer.Exit(EXIT_USAGE) from None


@app.command()
def analyze(
    path: Annotated[list[str], typer.Argument(
        help="Image files, folders (searched recursively) or quoted glob patterns.",
        show_default=False)],
    json_lines: Annotated[bool, typer.Option(
        "--json", help="Print one JSON object per image per line on stdout (without -o).")] = False,
    output: Annotated[Optional[str], typer.Option(
        "-o", "--output", metavar="FILE",
        help="Write a .jsonl or .csv file, with a progress bar; rerunning resumes where it stopped.")] = None,
    jobs: Annotated[int, typer.Option("-j", "--jobs", min=1, help="Worker processes.")] = 1,
    engine: Annotated[str, typer.Option("--engine", help="Scoring engine.")] = "classic",
    quality_model: QualityModelOpt = None,
    model: ModelOpt = None,
    device: DeviceOpt = None,
    crops: CropsOpt = None,
    bf16: Bf16Opt = None,
    feedback: Annotated[str, typer.Option("--feedback", help="Feedback writer: rules, or vlm (neural).")] = "rules",
    vlm_model: Annotated[Optional[str], typer.Option(
        "--vlm-model", metavar="RUN_DIR", help="--feedback vlm: a `train --engine vlm` run folder (or merged export).")
    ] = None,
    grounded: Annotated[Optional[bool], typer.Option(
        "--grounded/--no-grounded", help="--feedback vlm: put the measured scores and findings into the prompt "
                                         "(default: as the model was trained).")] = None,
    native_detail: Annotated[bool, typer.Option(
        "--native-detail", help="Decode large JPEGs at full resolution for noise and focus (slower).")] = False,
    retry_errors: Annotated[bool, typer.Option(
        "--retry-errors", help="With -o: analyse again the images that failed in a previous run.")] = False,
    no_progress: Annotated[bool, typer.Option("--no-progress", help="No progress bar (with -o).")] = False,
) -> None:
    """Analyse photos: scores, scene, findings and feedback."""
    from .batch import iter_inputs, run_batch, writer_for

    feedback_options = _feedback_options(feedback, vlm_model, grounded, device)
    # --device goes to the engine when it takes one; else to the vlm writer (an error when neither does)
    engine_device = device if "device" in _ENGINE_FLAGS.get(engine, {}) or not feedback_options else None
    engine_options = _engine_options(engine, quality_model=quality_model, model=model, device=engine_device,
                                     crops=crops, bf16=bf16)
    if output is not None:
        try:
            writer_for(output)
        except ValueError as exc:
            raise _usage(str(exc), "-o/--output") from None
    elif retry_errors:
        raise _usage("--retry-errors needs -o FILE (the file whose error rows to redo)", "--retry-errors")
    try:
        inputs = iter_inputs(path)
    except ValueError as exc:
        raise _usage(str(exc), "PATH") from None
    if not inputs:
        raise _usage(f"no images found in {' '.join(path)}", "PATH")

    err = Console(stderr=True)
    options = _inspector_or_exit({"engine": engine, "feedback": feedback, "native_detail": native_detail,
                                  **engine_options, **({"feedback_options": feedback_options} if feedback_options
                                                       else {})}, err, parallel=jobs > 1 and len(inputs) > 1)
    if output is not None:
        try:
            summary = run_batch(inputs, output, jobs=jobs, inspector_options=options,
                                retry_errors=retry_errors, progress=not no_progress)
        except ValueError as exc:
            raise _usage(str(exc), "-o/--output") from None
        line = (f"{summary.analysed} analysed, {summary.skipped} already done, {summary.failed} failed "
                f"-> {summary.output}")
        if summary.interrupted:
            err.print(Text(f"Interrupted: {line}", style="yellow"), soft_wrap=True)
            err.print(Text("Run the same command again to resume: "
                           + shlex.join(["picinspector", *sys.argv[1:]] if sys.argv[1:] else ["picinspector"]),
                           style="yellow"), soft_wrap=True)
            raise typer.Exit(EXIT_INTERRUPTED)
        err.print(Text(line, style="bold"), soft_wrap=True)
        if summary.analysed == 0 and summary.skipped == 0:  # every image failed, none was done before
            raise typer.Exit(EXIT_ALL_FAILED)
        return

    raise typer.Exit(_stream(inputs, jobs, options, json_lines, err))


def _stream(inputs: list[str], jobs: int, options: Any, json_lines: bool, err: Console) -> int:
    """Analyse and print each image as it finishes (JSON lines or panels); returns the exit code."""
    from .batch import iter_rows

    try:
        rows = iter_rows(inputs, jobs=jobs, inspector_options=options)
    except ValueError as exc:
        raise _usage(str(exc)) from None
    out = Console(highlight=False)
    analysed = failed = 0
    try:
        with closing(rows):
            for row in rows:
                error = row.get("error")
                if error is None:
                    analysed += 1
                else:
                    failed += 1
                if json_lines:
                    sys.stdout.write(json.dumps(row, ensure_ascii=False) + "\n")
                    sys.stdout.flush()
                elif error is None:
                    out.print(render_report(row, width=min(out.width, 100)))
                if error is not None:
                    err.print(Text(f"{row.get('path')}: {error.get('message')} ({error.get('kind')})",
                                   style="red"), soft_wrap=True)
    except KeyboardInterrupt:
        err.print(Text(f"Interrupted after {analysed + failed} of {len(inputs)} images.", style="yellow"),
                  soft_wrap=True)
        return EXIT_INTERRUPTED
    except BrokenPipeError:  # e.g. `picinspector analyze DIR --json | head -1`: the reader has gone
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())  # so that the final flush at exit does not fail again
        return EXIT_OK if analysed else EXIT_ALL_FAILED
    return EXIT_OK if analysed else EXIT_ALL_FAILED


# --------------------------------------------------------------------------------------------------
# measures


@app.command()
def measures() -> None:
    """List every measure: name, unit and description."""
    from .measures import measure_units

    table = Table(title="PicInspector measures", show_lines=False)
    table.add_column("name", style="bold", no_wrap=True)
    table.add_column("unit", style="cyan", max_width=24)
    table.add_column("description")
    for name, (unit, description) in measure_units().items():
        table.add_row(name, unit, description)
    Console().print(table)


@app.command()
def samples(
    folder: Annotated[str, typer.Argument(help="Folder to write the photos into (created if needed).")],
    degraded: Annotated[bool, typer.Option("--degraded/--no-degraded",
                                           help="Also write copies with one clear problem each.")] = True,
) -> None:
    """Write the real sample photos that scikit-image, scikit-learn and matplotlib ship (no download)."""
    from .samples import write_samples

    try:
        written = write_samples(folder, degraded=degraded)
    except ImportError as exc:
        Console(stderr=True).print(Text(str(exc), style="red"))  # Text: "[samples]" is not markup
        raise typer.Exit(EXIT_USAGE) from exc
    typer.echo(f"wrote {len(written)} photos to {folder}")


# --------------------------------------------------------------------------------------------------
# eval


@app.command("eval")
def eval_(
    dataset: Annotated[Optional[str], typer.Option(
        "--dataset", metavar="DIR", help="Dataset folder (or its annotation/CSV file).", show_default=False)] = None,
    fmt: Annotated[Optional[str], typer.Option(
        "--format", help="spaq, koniq, biq2021 or csv (default: detected from the files).")] = None,
    engine: Annotated[str, typer.Option("--engine", help="Scoring engine (classic, dinov2), or vlm for the "
                                                          "feedback writer.")] = "classic",
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
    no_progress: Annotated[bool, typer.Option("--no-progress", help="No progress bar.")] = False,
) -> None:
    """Score a labelled dataset and report agreement with people (SRCC, PLCC, KRCC, RMSE, ...); with
    --engine vlm, ROUGE and the contradiction rate of generated feedback against reference captions."""
    from .datasets import CITATIONS, DATASETS, DatasetError, load_dataset, subsample
    from .evaluation import evaluate, render_tables

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
    engine_options = _engine_options(engine, quality_model=quality_model, model=model, device=device, crops=crops,
                                     bf16=bf16)
    if output is not None and not output.lower().endswith(".csv"):
        raise _usage(f"predictions are written as CSV; {output!r} does not end in .csv", "-o/--output")
    err = Console(stderr=True)
    try:
        fmt, samples = load_dataset(dataset, fmt)
    except (DatasetError, ImportError) as exc:
        err.print(Text(f"Error: {exc}", style="red"), soft_wrap=True)
        raise typer.Exit(EXIT_USAGE) from None
    samples = subsample(samples, limit, seed)
    try:
        result = evaluate(samples, _inspector_or_exit({"engine": engine, **engine_options}, err,
                                                      parallel=jobs > 1 and len(samples) > 1), jobs=jobs,
                          progress=not no_progress and not json_out,
                          predictions_out=output)
    except KeyboardInterrupt:
        err.print(Text("Interrupted.", style="yellow"))
        raise typer.Exit(EXIT_INTERRUPTED) from None
    info = {"root": dataset, "format": fmt, "limit": limit, "seed": seed if limit is not None else None,
            "engine": engine, "citation": CITATIONS.get(fmt)}
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
    from .datasets import DatasetError, load_captions, subsample

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
    from .models import WeightsNotFound
    from .models._device import pick_device

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

        from .batch import spreadsheet_safe

        with open(a["output"], "w", newline="", encoding="utf-8") as fh:
            writer = csv.writer(fh)
            writer.writerow(["grounded", "image", "reference", "generated", "rouge1", "rouge2", "rougeL",
                             "contradictions"])
            for summary, rows in results:
                for r in rows:
                    writer.writerow([summary["grounded"], *(spreadsheet_safe(r[k]) for k in ("image", "reference",
                                                                                             "generated")),
                                     r["rouge1"], r["rouge2"], r["rougeL"], ";".join(r.get("contradictions") or [])])
    from .report import json_safe

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


# --------------------------------------------------------------------------------------------------
# train


def _train_dinov2(a: dict[str, Any], err: Console) -> int:
    """``train --engine dinov2``: the multi-task model on a labelled dataset."""
    from .datasets import CITATIONS, DatasetError, load_dataset, subsample
    from .models import WeightsNotFound

    modules = _deep_modules(err, "deep", "training.dinov2")
    if modules is None:
        return EXIT_USAGE
    TrainOptions, read_split_file, train_dinov2 = (getattr(modules[0], n) for n in
                                                   ("TrainOptions", "read_split_file", "train_dinov2"))
    if a["dataset"] is None:
        raise _usage("train --engine dinov2 needs --dataset DIR", "--dataset")
    try:
        fmt, samples = load_dataset(a["dataset"], a["fmt"])
    except (DatasetError, ImportError, ValueError) as exc:
        err.print(Text(f"Error: {exc}", style="red"), soft_wrap=True)
        return EXIT_USAGE
    samples = subsample(samples, a["limit"], a["seed"])
    try:
        opts = TrainOptions(backbone=a["backbone"], mode=a["mode"], unfreeze_last=a["unfreeze_last"],
                            epochs=a["epochs"] or 10, batch_size=a["batch_size"] or 16, lr=a["lr"] or 1e-3,
                            backbone_lr=a["backbone_lr"],
                            short_side=a["input_size"], crops=a["crops"], exif=a["exif"],
                            plcc_weight=a["plcc_weight"], scene_weight=a["scene_weight"],
                            val_fraction=a["val_fraction"], seed=a["seed"], patience=a["patience"],
                            device=a["device"], bf16=a["bf16"], workers=a["workers"])
        val_names = read_split_file(a["split"]) if a["split"] else None
    except (ValueError, OSError) as exc:
        raise _usage(str(exc)) from None
    info = {"root": os.path.abspath(a["dataset"]), "format": fmt, "citation": CITATIONS.get(fmt),
            "limit": a["limit"]}
    try:
        result = train_dinov2(samples, a["output"], opts, dataset=info, val_names=val_names,
                              progress=not a["no_progress"], restart=a["restart"],
                              log=lambda line: err.print(Text(line), soft_wrap=True))
    except (ValueError, WeightsNotFound) as exc:
        err.print(Text(f"Error: {exc}", style="red"), soft_wrap=True)
        return EXIT_USAGE
    except KeyboardInterrupt:
        err.print(Text("Interrupted: run the same command again to resume after the last finished epoch.",
                       style="yellow"), soft_wrap=True)
        return EXIT_INTERRUPTED
    if result.best_epoch is None:
        err.print(Text("No epoch finished with a usable validation score; no model was written.", style="red"))
        return EXIT_ALL_FAILED
    best = {k: float("nan") if v is None else v for k, v in result.best.items()}
    err.print(Text(f"best epoch {result.best_epoch}: quality SRCC {best.get('quality_srcc', float('nan')):.3f}, "
                   f"PLCC {best.get('quality_plcc', float('nan')):.3f} -> {result.run_dir} "
                   f"(serve it with: picinspector analyze PHOTO --engine dinov2 --model {result.run_dir})",
                   style="bold"), soft_wrap=True)
    return EXIT_OK


def _train_vlm(a: dict[str, Any], err: Console) -> int:
    """``train --engine vlm``: a LoRA adapter that teaches SmolVLM to write quality feedback."""
    from .datasets import DatasetError
    from .models._device import pick_device

    if a["captions"] is None:
        raise _usage("train --engine vlm needs --captions FILE (make one with `picinspector captions make`)",
                     "--captions")
    setup = _vlm_setup(a, err)
    if setup is None:
        return EXIT_USAGE
    vlm_mod, lora, samples = setup
    device = str(pick_device(a["device"]))
    try:
        result = lora.train_vlm(samples, a["base"] or vlm_mod.DEFAULT_BASE, a["output"], rank=a["rank"], alpha=a["alpha"],
                           dropout=a["lora_dropout"], target=a["target"], lr=a["lr"] or 2e-4, epochs=a["epochs"] or 1,
                           batch_size=a["batch_size"] or 1, grad_accum=a["grad_accum"],
                           max_image_size=a["max_image_size"], seed=a["seed"], device=device, bf16=a["bf16"],
                           grounded=a["grounded"], progress=not a["no_progress"], resume=not a["restart"],
                           max_steps=a["max_steps"], workers=a["workers"])
    except (ValueError, FileNotFoundError, DatasetError) as exc:  # WeightsNotFound is a FileNotFoundError
        err.print(Text(f"Error: {exc}", style="red"), soft_wrap=True)
        return EXIT_USAGE
    except KeyboardInterrupt:
        err.print(Text("Interrupted: run the same command again to resume from the last checkpoint.",
                       style="yellow"), soft_wrap=True)
        return EXIT_INTERRUPTED
    last = result.history[-1] if result.history else {}
    err.print(Text(f"{result.global_step} steps, {result.epochs_done} epochs"
                   + (f", last train loss {last['train_loss']:.4f}" if last.get("train_loss") is not None else "")
                   + f" -> {result.run_dir} (use it with: picinspector analyze PHOTO --feedback vlm --vlm-model "
                   f"{result.run_dir})", style="bold"), soft_wrap=True)
    if result.bad_images:
        err.print(Text(f"{len(result.bad_images)} photos could not be read and were skipped: see "
                       f"{result.run_dir / 'bad_images.txt'}", style="yellow"), soft_wrap=True)
    if a["merge"]:
        merged = lora.merge_vlm(result.run_dir, a["merge"], device=device)
        err.print(Text(f"merged model -> {merged}", style="bold"), soft_wrap=True)
    return EXIT_OK


#: ``train --engine NAME`` -> the function that runs it with the parsed options.
TRAINERS: dict[str, Any] = {"dinov2": _train_dinov2, "vlm": _train_vlm}


@app.command()
def train(
    engine: Annotated[str, typer.Option("--engine", help="What to train: dinov2 (scores and scene) or vlm "
                                                          "(written feedback).")] = "dinov2",
    dataset: Annotated[Optional[str], typer.Option(
        "--dataset", metavar="DIR", help="dinov2: labelled dataset folder (or annotation/CSV file).")] = None,
    fmt: Annotated[Optional[str], typer.Option(
        "--format", help="dinov2: spaq, koniq, biq2021 or csv (default: detected from the files).")] = None,
    captions: Annotated[Optional[str], typer.Option(
        "--captions", metavar="FILE", help="vlm: image/description pairs (Q-Instruct or LLaVA JSON, CSV, or the "
                                           "JSONL of `captions make`).")] = None,
    output: Annotated[Optional[str], typer.Option(
        "-o", "--output", metavar="RUN_DIR", help="Run folder (default runs/ENGINE); the same command again "
                                                  "resumes.")] = None,
    backbone: Annotated[str, typer.Option(
        "--backbone", metavar="PATH_OR_ID",
        help="dinov2: a folder, a Hub id (facebook/dinov2-small), vit-s14/vit-b14/vit-l14, or random:vit-s14 "
             "(untrained, for smoke tests).")] = "vit-s14",
    base: Annotated[Optional[str], typer.Option(
        "--base", metavar="PATH_OR_ID", help="vlm: the base model, a folder or Hub id (default "
                                             "HuggingFaceTB/SmolVLM-256M-Instruct).")] = None,
    epochs: Annotated[Optional[int], typer.Option("--epochs", min=1, help="Default: dinov2 10, vlm 1.")] = None,
    batch_size: Annotated[Optional[int], typer.Option("--batch-size", min=1, help="Default: dinov2 16, vlm 1.")] = None,
    lr: Annotated[Optional[float], typer.Option(
        "--lr", help="Learning rate (dinov2: of the heads, default 1e-3; vlm: of LoRA, default 2e-4).")] = None,
    mode: Annotated[str, typer.Option(
        "--mode", help="dinov2: frozen (heads on cached features: fast, CPU-friendly), partial (also the last "
                       "--unfreeze-last blocks) or full fine-tuning.")] = "frozen",
    unfreeze_last: Annotated[int, typer.Option("--unfreeze-last", min=0, help="dinov2 partial: blocks to train.")] = 4,
    backbone_lr: Annotated[float, typer.Option("--backbone-lr", help="dinov2: learning rate of trained backbone "
                                                                     "blocks.")] = 2e-5,
    input_size: Annotated[int, typer.Option(
        "--input-size", min=14, help="dinov2: shorter side after resizing and side of the square crops.")] = 448,
    crops: Annotated[int, typer.Option("--crops", min=1, help="dinov2: test-time crops per photo.")] = 3,
    exif: Annotated[bool, typer.Option("--exif", help="dinov2: feed ISO, exposure time and f-number to the heads "
                                                      "(MT-E).")] = False,
    plcc_weight: Annotated[float, typer.Option("--plcc-weight", min=0.0, help="dinov2: weight of the correlation "
                                                                              "loss.")] = 0.5,
    scene_weight: Annotated[float, typer.Option("--scene-weight", min=0.0, help="dinov2: weight of the scene "
                                                                                "loss.")] = 0.5,
    val_fraction: Annotated[float, typer.Option("--val-fraction", help="dinov2: held-out share (seeded split).")] = 0.2,
    split: Annotated[Optional[str], typer.Option(
        "--split", metavar="FILE", help="dinov2: validation images, JSON {\"val\": [...]} or one name per line.")
    ] = None,
    patience: Annotated[int, typer.Option("--patience", min=1, help="dinov2: early stop after this many epochs "
                                                                     "without a better validation SRCC.")] = 5,
    rank: Annotated[int, typer.Option("--rank", min=1, help="vlm: LoRA rank.")] = 8,
    alpha: Annotated[float, typer.Option("--alpha", help="vlm: LoRA alpha.")] = 16,
    lora_dropout: Annotated[float, typer.Option("--lora-dropout", help="vlm: LoRA dropout.")] = 0.05,
    target: Annotated[str, typer.Option("--target", help="vlm: LoRA on the language model's attention, or "
                                                         "attention+mlp.")] = "attention",
    grad_accum: Annotated[int, typer.Option("--grad-accum", min=1, help="vlm: gradient accumulation steps.")] = 4,
    max_image_size: Annotated[Optional[int], typer.Option(
        "--max-image-size", min=16, help="vlm: longest image side (default: the processor's tile).")] = None,
    grounded: Annotated[bool, typer.Option("--grounded", help="vlm: train with the measured scores and findings "
                                                              "in the prompt.")] = False,
    max_steps: Annotated[Optional[int], typer.Option("--max-steps", min=1, help="vlm: stop after this many "
                                                                                "optimiser steps.")] = None,
    merge: Annotated[Optional[str], typer.Option(
        "--merge", metavar="DIR", help="vlm: also write the base with the adapter merged in (for deployment).")] = None,
    seed: Annotated[int, typer.Option("--seed")] = 0,
    device: Annotated[str, typer.Option("--device", help="auto, cpu, cuda, cuda:1, mps.")] = "auto",
    bf16: Annotated[bool, typer.Option("--bf16", help="bfloat16 (GPUs with bf16 support).")] = False,
    workers: Annotated[int, typer.Option("--workers", min=0, help="Image-reading processes.")] = 0,
    limit: Annotated[Optional[int], typer.Option("--limit", min=2, help="Train on a seeded subset.")] = None,
    restart: Annotated[bool, typer.Option("--restart", help="Discard a previous run in RUN_DIR.")] = False,
    no_progress: Annotated[bool, typer.Option("--no-progress", help="No progress bars.")] = False,
) -> None:
    """Train a deep engine; the run folder is what `analyze`/`eval` serve with --model (dinov2) or
    --vlm-model (vlm)."""
    if engine not in TRAINERS:
        raise _usage(f"unknown engine {engine!r}; choose from {', '.join(TRAINERS)}", "--engine")
    err = Console(stderr=True)
    args = dict(locals())
    args["output"] = output or os.path.join("runs", engine)
    raise typer.Exit(TRAINERS[engine](args, err))


# --------------------------------------------------------------------------------------------------
# captions

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
    from .batch import iter_inputs
    from .datasets import DatasetError, load_dataset, subsample, write_captions
    from .feedback.captions import captions_from_labels, captions_from_measures

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

    from .datasets import CITATIONS, load_dataset
    from .training.fit_quality import CANDIDATES, fit_quality, measure_dataset

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
                                     "n": len(kept), "citation": CITATIONS.get(fmt)},
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


def main() -> None:
    """Entry point of the ``picinspector`` script."""
    app(prog_name="picinspector")


if __name__ == "__main__":
    main()
