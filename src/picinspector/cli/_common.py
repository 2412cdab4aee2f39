"""What several commands share: usage errors, engine and writer options, deep-extra imports, building an inspector."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any, Optional

import typer
from rich.console import Console
from rich.text import Text

from .._text import printable, shell_quote
from ._app import EXIT_INTERRUPTED, EXIT_USAGE


def _usage(message: str, param: str | None = None) -> typer.BadParameter:
    return typer.BadParameter(message, param_hint=param)


# Engine options shared by `analyze` and `eval` (declared once).
QualityModelOpt = Annotated[Optional[str], typer.Option(
    "--quality-model", metavar="FILE.npz",
    help="Classic engine: a model from `fit-quality` instead of the shipped one ('handmade': no model).")]
ModelOpt = Annotated[Optional[str], typer.Option(
    "--model", metavar="RUN_DIR", help="dinov2 engine (and eval --engine vlm): a trained model, i.e. a `train` "
                                       "run folder; effnet engine: a fine-tuned run (`train --backbone "
                                       "efficientnet-lite0`) instead of the shipped heads.")]
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
    "effnet": {"model": "--model"},
}

#: Engines that cannot run without ``--model`` (the effnet engine has shipped heads; dinov2 has none).
_NEEDS_MODEL = {"dinov2"}

EngineOpt = Annotated[Optional[str], typer.Option(
    "--engine", help="Scoring engine: effnet (default where it can run), classic or dinov2.", show_default=False)]


def _resolve_engine(engine: str | None, **given: Any) -> str:
    """The engine named, or else the default engine (`picinspector.pipeline.default_engine`); when
    flags of one engine only are given (``--quality-model``), the default engine is that one if the
    usual default does not take them."""
    if engine is not None:
        return engine
    from ..pipeline import default_engine

    default = default_engine()
    flags = {name for name, value in given.items() if value is not None}
    for candidate in (default, "classic"):
        if flags <= set(_ENGINE_FLAGS.get(candidate, {})):
            return candidate
    return default


def _engine_options(engine: str, **given: Any) -> dict[str, Any]:
    """The engine keyword arguments among ``given`` (None = not given); a usage error for a flag the
    engine does not take, or a missing ``--model`` for a trained engine."""
    from ..pipeline import ENGINES

    if engine not in ENGINES:
        raise _usage(f"unknown engine {engine!r}; choose from {', '.join(sorted(ENGINES))}", "--engine")
    takes = _ENGINE_FLAGS.get(engine, {})
    for name, value in given.items():
        if value is not None and name not in takes:
            owner = next((e for e, flags in _ENGINE_FLAGS.items() if name in flags), "another")
            flag = next((f[name] for f in _ENGINE_FLAGS.values() if name in f), name)
            raise _usage(f"{flag} applies to the {owner} engine, not {engine}", flag)
    if engine in _NEEDS_MODEL and given.get("model") is None:
        raise _usage(f"the {engine} engine needs --model RUN_DIR (a folder made by `picinspector train --engine "
                     f"{engine}`)", "--model")
    return {k: v for k, v in given.items() if v is not None}


def _feedback_options(feedback: str, vlm_model: str | None, grounded: bool | None,
                      device: str | None) -> dict[str, Any]:
    """The feedback writer's options; a usage error for vlm flags without ``--feedback vlm``."""
    from ..feedback import FEEDBACK_WRITERS

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
    if not Path(vlm_model).expanduser().is_dir():  # as --engine dinov2 --model: a folder, never a Hub id
        raise _usage(f"{printable(vlm_model)} is not a folder; --vlm-model takes a run folder made by "
                     "`picinspector train --engine vlm ... -o RUN_DIR` (or a merged export)", "--vlm-model")
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
    from ..models import WeightsNotFound
    from ..pipeline import Inspector, check_options

    try:
        if parallel:
            check_options(**options)
            return options
        return Inspector(**options)
    except (ValueError, WeightsNotFound, ImportError) as exc:
        err.print(Text(f"Error: {printable(exc)}", style="red"), soft_wrap=True)
        raise typer.Exit(EXIT_USAGE) from None


# The analysis options of `analyze`, for the commands that analyse photos too (`report`, `serve`).
FeedbackOpt = Annotated[str, typer.Option("--feedback", help="Feedback writer: rules, or vlm (neural).")]
VlmModelOpt = Annotated[Optional[str], typer.Option(
    "--vlm-model", metavar="RUN_DIR", help="--feedback vlm: a `train --engine vlm` run folder (or merged export).")]
GroundedOpt = Annotated[Optional[bool], typer.Option(
    "--grounded/--no-grounded", help="--feedback vlm: put the measured scores and findings into the prompt "
                                     "(default: as the model was trained).")]
NativeDetailOpt = Annotated[bool, typer.Option(
    "--native-detail", help="Decode large JPEGs at full resolution for noise and focus (slower).")]


def _inspector_options(engine: str | None, feedback: str, vlm_model: str | None, grounded: bool | None,
                       device: str | None, native_detail: bool, **engine_given: Any) -> dict[str, Any]:
    """`Inspector` keyword arguments from the analysis options, with usage errors for flags that do not
    apply. ``engine`` None means the default engine (`_resolve_engine`); ``engine_given``:
    quality_model, model, crops, bf16."""
    feedback_options = _feedback_options(feedback, vlm_model, grounded, device)
    engine = _resolve_engine(engine, **engine_given, device=None if feedback_options else device)
    # --device goes to the engine when it takes one; else to the vlm writer (an error when neither does)
    engine_device = device if "device" in _ENGINE_FLAGS.get(engine, {}) or not feedback_options else None
    engine_options = _engine_options(engine, device=engine_device, **engine_given)
    return {"engine": engine, "feedback": feedback, "native_detail": native_detail, **engine_options,
            **({"feedback_options": feedback_options} if feedback_options else {})}


def _stop_if_interrupted(counts: Any, line: str, err: Console, code: int = EXIT_INTERRUPTED) -> None:
    """After a run into an output file (`~picinspector.batch.RunCounts`): when it was interrupted, print
    ``line`` and the command that resumes it, and exit with ``code``."""
    if not counts.interrupted:
        return
    err.print(Text(f"Interrupted: {line}", style="yellow"), soft_wrap=True)
    err.print(Text("Run the same command again to resume: "
                   + " ".join(shell_quote(a) for a in ["picinspector", *sys.argv[1:]]), style="yellow"), soft_wrap=True)
    raise typer.Exit(code)


def _batch_rows(paths: list[str], results: str, options: Any, *, jobs: int, retry_errors: bool, progress: bool,
                err: Console) -> list[dict[str, Any]]:
    """Analyse ``paths`` into the results file ``results`` (resuming it), print the run's line (and on an
    interruption the resume command, then exit), and return the rows of these photos in their order."""
    import os

    from ..batch import run_batch
    from ..report._results import read_results

    try:
        batch = run_batch(paths, results, jobs=jobs, inspector_options=options, retry_errors=retry_errors,
                          progress=progress)
    except ValueError as exc:
        raise _usage(str(exc), "--results") from None
    line = batch.line()
    _stop_if_interrupted(batch, line, err)
    err.print(Text(line), soft_wrap=True)
    key = lambda p: os.path.normcase(os.path.abspath(p))  # noqa: E731
    wanted = {key(p): i for i, p in enumerate(paths)}
    rows = [r for r in read_results(results) if isinstance(r.get("path"), str) and key(r["path"]) in wanted]
    rows.sort(key=lambda r: wanted[key(r["path"])])
    return rows
