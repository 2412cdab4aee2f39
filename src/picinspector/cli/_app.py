"""The Typer application, its root options and the exit codes; the command modules register on it."""

from __future__ import annotations

from typing import Annotated

import typer

from .._version import __version__

app = typer.Typer(
    name="picinspector",
    help="How good is this photo, and why: six scores, the scene and plain-language feedback, offline.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

EXIT_OK, EXIT_ALL_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130


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


def main() -> None:
    """Entry point of the ``picinspector`` script."""
    app(prog_name="picinspector")
