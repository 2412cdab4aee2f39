"""``picinspector analyze ... --ray``: the same analysis as a Ray Data pipeline (see picinspector.distributed)."""

from __future__ import annotations

from typing import Annotated, Any, Optional

import typer
from rich.console import Console
from rich.text import Text

from ._app import EXIT_ALL_FAILED, EXIT_USAGE
from .._text import printable
from ._common import _inspector_or_exit, _stop_if_interrupted, _usage

_PANEL = "Ray (a cluster, or a local Ray)"

RayOpt = Annotated[bool, typer.Option(
    "--ray", rich_help_panel=_PANEL,
    help="Run on Ray Data (a local Ray, or the cluster of --ray-address); -o is a folder of Parquet parts "
         "or a .jsonl file. INPUT may also be a CSV/Parquet manifest or s3://-style URIs.")]
RayAddressOpt = Annotated[Optional[str], typer.Option(
    "--ray-address", metavar="ADDRESS", rich_help_panel=_PANEL,
    help="Join this Ray cluster (auto, HEAD:6379, ray://HEAD:10001); implies --ray.")]
RayActorsOpt = Annotated[Optional[int], typer.Option(
    "--ray-actors", min=1, rich_help_panel=_PANEL,
    help="Analysing actors (default: as many as the cluster's CPUs, or GPUs with --ray-gpus, allow).")]
RayGpusOpt = Annotated[float, typer.Option(
    "--ray-gpus", min=0.0, rich_help_panel=_PANEL,
    help="GPUs per actor, for a deep engine (0.5: two actors share one GPU).")]
ManifestColumnOpt = Annotated[Optional[str], typer.Option(
    "--manifest-column", metavar="NAME", rich_help_panel=_PANEL,
    help="With --ray: the path/URI column of CSV/Parquet manifests (default: path, uri, url, image or file).")]


def analyze_on_ray(inputs: list[str], output: str | None, options: dict[str, Any], *, address: str | None,
                   actors: int | None, gpus: float, manifest_column: str | None, retry_errors: bool,
                   progress: bool, jobs: int, json_lines: bool) -> None:
    """Run ``analyze --ray``: check the arguments, run, print the counts; exits as the local batch does."""
    from ..distributed import OutputLocked, expand_inputs, ray_available, run_ray

    if output is None:
        raise _usage("--ray needs -o OUT (a folder for Parquet parts, or a .jsonl file)", "-o/--output")
    if json_lines:
        raise _usage("--json prints rows on stdout; with --ray they go into -o OUT", "--json")
    if jobs > 1:
        raise _usage("-j sets local worker processes; with --ray use --ray-actors", "-j/--jobs")
    err = Console(stderr=True)
    missing = ray_available()
    if missing is not None:
        err.print(Text(f"Error: {missing}", style="red"), soft_wrap=True)
        raise typer.Exit(EXIT_USAGE)
    try:
        paths = expand_inputs(inputs, column=manifest_column)
    except ValueError as exc:
        raise _usage(str(exc), "PATH") from None
    if not paths:
        raise _usage(f"no images found in {' '.join(inputs)}", "PATH")
    options = _inspector_or_exit(options, err, parallel=True)  # checked here; each actor loads the model
    try:
        summary = run_ray(paths, output, inspector_options=options, address=address, actors=actors,
                          gpus_per_actor=gpus, retry_errors=retry_errors, progress=progress)
    except OutputLocked as exc:
        err.print(Text(f"Error: {printable(exc)}", style="red"), soft_wrap=True)
        raise typer.Exit(EXIT_USAGE) from None
    except ValueError as exc:
        raise _usage(printable(exc), "-o/--output") from None
    except Exception as exc:  # noqa: BLE001 - Ray's own errors (a cluster that went away, workers that cannot start)
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        err.print(Text(f"Error: the Ray run failed: {type(exc).__name__}: {first}", style="red"), soft_wrap=True)
        err.print(Text(f"The rows committed before the failure are in {output}; run the same command again to "
                       "resume.", style="yellow"), soft_wrap=True)
        raise typer.Exit(EXIT_ALL_FAILED) from None
    line = summary.line()
    if summary.actors:
        line += f" ({summary.actors} Ray actors, {summary.elapsed_s:.1f} s, start-up {summary.first_row_s:.1f} s)"
    _stop_if_interrupted(summary, line, err)
    err.print(Text(line, style="bold"), soft_wrap=True)
    if summary.analysed == 0 and summary.skipped == 0:
        raise typer.Exit(EXIT_ALL_FAILED)
