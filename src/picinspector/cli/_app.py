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
    context_settings={"help_option_names": ["-h", "--help"]},
)

EXIT_OK, EXIT_ALL_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130


def _flag_type(display_type_rich):
    """Typer's help shows ``<bool>`` in the type column of an on/off flag, which takes no value;
    show nothing there instead (any other option keeps its type)."""
    def display(self, ctx):
        if getattr(self, "is_flag", False) and getattr(self, "metavar", None) is None:
            return None
        return display_type_rich(self, ctx)
    return display


if hasattr(typer.core.TyperOption, "display_type_rich"):
    typer.core.TyperOption.display_type_rich = _flag_type(typer.core.TyperOption.display_type_rich)


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
    """Entry point of the ``picinspector`` script.

    A Ctrl-C, SIGTERM or SIGHUP that arrives outside a run (while loading a model, say) ends the
    command with 128 + the signal (130, 143, 129) and one line, not a traceback; during a run,
    `picinspector._process.StopSignals` takes over."""
    import signal
    import sys

    received: list[int] = []

    def stop(signum, frame):
        received.append(signum)
        raise KeyboardInterrupt

    for name in ("SIGINT", "SIGTERM", "SIGHUP"):
        sig = getattr(signal, name, None)
        if sig is not None and signal.getsignal(sig) in (signal.SIG_DFL, signal.default_int_handler):
            signal.signal(sig, stop)
    try:
        app(prog_name="picinspector")
    except SystemExit as exc:
        if received and exc.code not in (0, EXIT_USAGE) and not (isinstance(exc.code, int) and exc.code >= 128):
            sys.exit(128 + received[-1])
        raise
    except KeyboardInterrupt:
        sys.stderr.write("Interrupted.\n")
        sys.exit(128 + (received[-1] if received else signal.SIGINT))
