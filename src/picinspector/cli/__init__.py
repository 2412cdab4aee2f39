"""The ``picinspector`` command line (Typer + Rich).

Commands: ``analyze`` (readable panels, ``--json`` lines, or a resumable batch file with ``-o``; any
engine and feedback writer), ``measures`` (every measure with its unit), ``samples`` (write the demo
photos), ``eval`` (agreement with a labelled dataset; ROUGE and contradictions for the vlm writer),
``fit-quality`` (fit the classic or effnet quality model), ``fit-scene`` (fit the effnet scene head),
``fit-feedback`` (fit the findings' severities to opinion scores), ``train`` (the dinov2 engine or the
vlm writer), ``captions make`` (reference descriptions for the vlm writer), ``report`` (an offline HTML
report of a results file or of photos), ``serve`` (the REST API and web page; the ``server`` extra),
``cull`` and ``undo`` (group bursts and near-duplicates, pick and rate, write XMP ratings; revert a
cull), and ``--version``. Exit codes: 0 when at least one image was analysed (or a batch found everything already done), 1 when every image
failed, 2 for bad arguments, missing models or extras, or when no input was found, 130 when
interrupted.

The application lives in `_app`; each command group is one module that registers on it (``analyze``,
``info``, ``evaluate``, ``train``, ``captions``, ``fit_quality``, ``fit_scene``, ``fit_feedback``, ``report``,
``serve``, ``cull``). A new command is a new module here, imported below.
"""

from __future__ import annotations

from . import (  # noqa: F401  (register the commands)
               analyze,
               captions,
               cull,
               evaluate,
               fit_feedback,
               fit_quality,
               fit_scene,
               info,
               report,
               serve,
               train,
)
from ._app import EXIT_ALL_FAILED, EXIT_INTERRUPTED, EXIT_OK, EXIT_USAGE, app, main
from ._render import render_report

__all__ = ["app", "main", "render_report", "EXIT_OK", "EXIT_ALL_FAILED", "EXIT_USAGE", "EXIT_INTERRUPTED"]
