"""``picinspector analyze``: panels, JSON lines, or a resumable batch file."""

from __future__ import annotations

import os
import signal
import sys
from contextlib import closing
from typing import Annotated, Any, Optional

import typer
from rich.console import Console
from rich.text import Text

from .._text import json_line, printable
from ._app import EXIT_ALL_FAILED, EXIT_INTERRUPTED, EXIT_OK, EXIT_USAGE, app
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
    _inspector_options,
    _inspector_or_exit,
    _stop_if_interrupted,
    _usage,
)
from ._ray import ManifestColumnOpt, RayActorsOpt, RayAddressOpt, RayGpusOpt, RayOpt
from ._render import render_report


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
        "--retry-errors", help="With -o: analyse again the images that failed in a previous run.")] = False,
    no_progress: Annotated[bool, typer.Option("--no-progress", help="No progress bar (with -o).")] = False,
    ray: RayOpt = False,
    ray_address: RayAddressOpt = None,
    ray_actors: RayActorsOpt = None,
    ray_gpus: RayGpusOpt = 0.0,
    manifest_column: ManifestColumnOpt = None,
) -> None:
    """Analyse photos: scores, scene, findings and feedback."""
    from ..batch import OutputLocked, iter_inputs, run_batch, writer_for

    options = _inspector_options(engine, feedback, vlm_model, grounded, device, native_detail,
                                 quality_model=quality_model, model=model, crops=crops, bf16=bf16)
    if ray or ray_address is not None:
        from ._ray import analyze_on_ray

        return analyze_on_ray(path, output, options,
                              address=ray_address, actors=ray_actors, gpus=ray_gpus, manifest_column=manifest_column,
                              retry_errors=retry_errors, progress=not no_progress, jobs=jobs, json_lines=json_lines)
    for flag, value in (("--ray-actors", ray_actors), ("--ray-gpus", ray_gpus or None),
                        ("--manifest-column", manifest_column)):
        if value is not None:
            raise _usage(f"{flag} applies to --ray", flag)
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
        raise _usage(f"no images found in {printable(' '.join(path))}", "PATH")

    err = Console(stderr=True)
    options = _inspector_or_exit(options, err, parallel=jobs > 1 and len(inputs) > 1)
    if output is not None:
        try:
            summary = run_batch(inputs, output, jobs=jobs, inspector_options=options,
                                retry_errors=retry_errors, progress=not no_progress)
        except OutputLocked as exc:
            err.print(Text(f"Error: {printable(exc)}", style="red"), soft_wrap=True)
            raise typer.Exit(EXIT_USAGE) from None
        except RuntimeError as exc:  # the worker processes could not start
            err.print(Text(f"Error: {printable(exc)}", style="red"), soft_wrap=True)
            raise typer.Exit(EXIT_USAGE) from None
        except ValueError as exc:
            raise _usage(printable(exc), "-o/--output") from None
        except OSError as exc:  # the output (or its folder, lock or log) cannot be written
            err.print(Text(f"Error: cannot write {printable(output)}: {printable(exc.strerror or exc)}", style="red"),
                      soft_wrap=True)
            raise typer.Exit(EXIT_USAGE) from None
        line = summary.line()
        if summary.log:
            line += (f" ({summary.notes} library messages in {printable(summary.log)})" if summary.notes
                     else f" (worker output in {printable(summary.log)})")
        _stop_if_interrupted(summary, line, err, _interrupted_code(summary.signal))
        err.print(Text(line, style="bold"), soft_wrap=True)
        if summary.analysed == 0 and summary.skipped == 0:  # every image failed, none was done before
            raise typer.Exit(EXIT_ALL_FAILED)
        return

    raise typer.Exit(_stream(inputs, jobs, options, json_lines, err))


def _interrupted_code(signum: int | None) -> int:
    """130 for Ctrl-C; 128 + the signal for SIGTERM and SIGHUP (143, 129), as a shell reports them."""
    return EXIT_INTERRUPTED if signum in (None, signal.SIGINT) else 128 + int(signum)


def _stream(inputs: list[str], jobs: int, options: Any, json_lines: bool, err: Console) -> int:
    """Analyse and print each image as it finishes (JSON lines or panels); returns the exit code.

    Signals as in a batch run: a first Ctrl-C stops after the images in progress, a second one (or
    SIGTERM, SIGHUP) at once. Library output is kept off the terminal; an error row's message
    carries it."""
    from .._process import StopSignals
    from ..batch import iter_rows, terminal_stream

    analysed = failed = 0
    terminal = terminal_stream()  # descriptor 2 itself may be capturing a decoder's output when the signal comes

    def on_first_stop() -> None:
        terminal.write("Stopping after the images in progress (Ctrl-C again to stop now)\n")

    interrupted = None
    with closing(terminal), StopSignals(on_first_stop) as signals:
        try:
            rows = iter_rows(inputs, jobs=jobs, inspector_options=options, stop=signals.requested,
                             notes=lambda path, lines: None)
        except ValueError as exc:
            raise _usage(printable(exc)) from None
        out = Console(highlight=False)
        try:
            with closing(rows):
                for row in rows:
                    error = row.get("error")
                    if error is None:
                        analysed += 1
                    else:
                        failed += 1
                    if json_lines:
                        sys.stdout.write(json_line(row) + "\n")
                        sys.stdout.flush()
                    elif error is None:
                        out.print(render_report(row, width=min(out.width, 100)))
                    if error is not None:
                        err.print(Text(f"{printable(row.get('path'))}: {printable(error.get('message'))} "
                                       f"({error.get('kind')})", style="red"), soft_wrap=True)
        except KeyboardInterrupt as exc:
            interrupted = getattr(exc, "signum", signal.SIGINT)
        except RuntimeError as exc:  # the worker processes could not start
            err.print(Text(f"Error: {printable(exc)}", style="red"), soft_wrap=True)
            return EXIT_USAGE
        except BrokenPipeError:  # e.g. `picinspector analyze DIR --json | head -1`: the reader has gone
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())  # so that the final flush at exit does not fail again
            return EXIT_OK if analysed else EXIT_ALL_FAILED
        if interrupted is None and signals.requested.is_set() and analysed + failed < len(inputs):
            interrupted = signals.signum
    if interrupted is not None:
        err.print(Text(f"Interrupted after {analysed + failed} of {len(inputs)} images.", style="yellow"),
                  soft_wrap=True)
        return _interrupted_code(interrupted)
    return EXIT_OK if analysed else EXIT_ALL_FAILED
