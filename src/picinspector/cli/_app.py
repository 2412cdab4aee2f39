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


class _Terminated(BaseException):
    """SIGTERM or SIGHUP outside a run: ends the command (not an Exception, so nothing swallows it)."""

    def __init__(self, signum: int):
        super().__init__(signum)
        self.signum = signum


def main() -> None:
    """Entry point of the ``picinspector`` script.

    Outside a run (while options are checked or a model loads, say), Ctrl-C ends the command with
    exit code 130 and no traceback (Typer's own handling), and SIGTERM or SIGHUP with 143 or 129
    and one line; during a run, `picinspector._process.StopSignals` takes over (clean stop, resume
    hint)."""
    import signal
    import sys

    def stop(signum, frame):
        raise _Terminated(signum)

    for name in ("SIGTERM", "SIGHUP"):
        sig = getattr(signal, name, None)
        if sig is not None and signal.getsignal(sig) == signal.SIG_DFL:
            signal.signal(sig, stop)
    try:
        app(prog_name="picinspector")
    except _Terminated as exc:
        sys.stderr.write(f"Stopped by {signal.Signals(exc.signum).name}.\n")
        sys.exit(128 + exc.signum)
    except KeyboardInterrupt:  # before Typer's own handling starts
        sys.exit(EXIT_INTERRUPTED)
