"""Process hygiene for batch runs: stop signals, workers that die with their parent, library output
kept off the terminal.

- `StopSignals`: while a run is active (main thread only), a first Ctrl-C (SIGINT) asks the run to
  stop after the images in progress; a second Ctrl-C, a SIGTERM or a SIGHUP stops it at once by
  raising `Stopped` (a ``KeyboardInterrupt``), whose ``signum`` says which signal it was.
- `die_with_parent`: called first in each worker process; on Linux the kernel kills the worker
  when its parent dies (``prctl(PR_SET_PDEATHSIG, SIGKILL)``), and on every system a daemon thread
  waits on the parent's process sentinel and exits the worker when it fires.
- `spawn_window`: workers are started with their standard error on a log, so that a worker that
  a Ctrl-C or the loss of its parent ends while it starts up prints nothing on the terminal; once
  started, a worker ignores SIGINT (a Ctrl-C reaches the whole process group; only the parent
  decides what it means).
- `LibraryOutput`: around one image, C libraries' messages on file descriptor 2 (libpng, libtiff,
  libjpeg, OpenCV) and Python warnings (Pillow) are captured as notes instead of reaching the
  terminal.

References
----------
Linux ``prctl(2)``, PR_SET_PDEATHSIG; Python ``multiprocessing.parent_process()`` (3.8+);
POSIX ``dup2(2)``, ``sigaction(2)`` (an ignored signal stays ignored across ``execve``).
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import sys
import tempfile
import threading
import warnings
from typing import Any, Callable, Iterator

__all__ = ["LibraryOutput", "StopSignals", "Stopped", "die_with_parent", "spawn_window"]

_PR_SET_PDEATHSIG = 1

#: Signals that stop a run at once (SIGINT stops it at once only the second time).
_HARD_SIGNALS = tuple(getattr(signal, name) for name in ("SIGTERM", "SIGHUP") if hasattr(signal, name))

#: Most notes kept per image, and most characters per note.
MAX_NOTES, MAX_NOTE_CHARS = 20, 400


class Stopped(KeyboardInterrupt):
    """A run stopped by a signal: ``signum`` is SIGINT (a second Ctrl-C), SIGTERM or SIGHUP."""

    def __init__(self, signum: int):
        super().__init__(signum)
        self.signum = signum


class StopSignals:
    """Handle stop signals while a run is active (a context manager; inert outside the main thread).

    Parameters
    ----------
    on_first : callable, optional
        Called (in the main thread, from the signal handler) when a first Ctrl-C asks the run to
        stop after the images in progress.

    Attributes
    ----------
    requested : threading.Event
        Set by the first Ctrl-C (and by any stop signal).
    signum : int or None
        The last stop signal received.
    """

    def __init__(self, on_first: Callable[[], None] | None = None):
        self.requested = threading.Event()
        self.signum: int | None = None
        self._on_first = on_first
        self._previous: dict[int, Any] = {}

    def _handle(self, signum: int, frame: Any) -> None:
        first = not self.requested.is_set()
        self.signum = signum
        self.requested.set()
        if signum == signal.SIGINT and first:
            if self._on_first is not None:
                self._on_first()
            return
        raise Stopped(signum)

    def __enter__(self) -> "StopSignals":
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, *_HARD_SIGNALS):
                if signal.getsignal(sig) == signal.SIG_IGN:  # e.g. SIGHUP under nohup: stays ignored
                    continue
                try:
                    self._previous[sig] = signal.signal(sig, self._handle)
                except (OSError, ValueError):  # pragma: no cover - a signal this system lacks
                    pass
        return self

    def __exit__(self, *exc: Any) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler if handler is not None else signal.SIG_DFL)
        self._previous.clear()


# --------------------------------------------------------------------------------------------------
# Workers


def _set_parent_death_signal() -> None:
    if not sys.platform.startswith("linux"):
        return
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    except (OSError, AttributeError):  # pragma: no cover - no prctl: the watch thread still works
        pass


def _watch_parent(parent_pid: int) -> None:
    import multiprocessing
    from multiprocessing.connection import wait

    parent = multiprocessing.parent_process()
    sentinel = getattr(parent, "sentinel", None)
    if sentinel is not None:
        try:
            wait([sentinel])  # returns when the parent's end of the pipe closes: it has exited
        except OSError:
            pass
        os._exit(0)
    while True:  # pragma: no cover - no sentinel (not a multiprocessing child): poll
        threading.Event().wait(0.5)
        if os.getppid() != parent_pid:
            os._exit(0)


def die_with_parent(parent_pid: int) -> None:
    """Make this worker process end when its parent does (see the module notes).

    Parameters
    ----------
    parent_pid : int
        The parent's pid as the parent saw it; if it is already gone, the worker exits now.
    """
    _set_parent_death_signal()
    if os.getppid() != parent_pid:  # the parent died before the death signal was armed
        os._exit(0)
    threading.Thread(target=_watch_parent, args=(parent_pid,), name="picinspector-parent-watch",
                     daemon=True).start()


@contextlib.contextmanager
def spawn_window(stderr_fd: int | None) -> Iterator[None]:
    """Around starting worker processes: file descriptor 2 on ``stderr_fd`` (inherited by the workers
    and multiprocessing's resource tracker), restored afterwards. A worker that a Ctrl-C, or the loss
    of its parent, ends while it starts up writes its traceback there, not on the terminal; the
    parent, which handles the signal, then stops the run (see `picinspector.batch`)."""
    saved = None
    try:
        if stderr_fd is not None:
            sys.stderr.flush()
            saved = os.dup(2)
            os.dup2(stderr_fd, 2)
        yield
    finally:
        if saved is not None:
            os.dup2(saved, 2)
            os.close(saved)


# --------------------------------------------------------------------------------------------------
# Library output


class LibraryOutput:
    """Capture what C libraries write to file descriptor 2, and Python warnings, around one image.

    One instance per process (it keeps a scratch file). Use ``with capture() as notes:``; after the
    block, ``notes`` holds the captured lines (at most `MAX_NOTES`, each at most `MAX_NOTE_CHARS`).
    """

    def __init__(self) -> None:
        self._scratch = tempfile.TemporaryFile()
        self._lock = threading.Lock()

    @contextlib.contextmanager
    def __call__(self) -> Iterator[list[str]]:
        notes: list[str] = []
        with self._lock:
            try:
                sys.stderr.flush()
            except (OSError, ValueError):
                pass
            saved = os.dup(2)
            os.dup2(self._scratch.fileno(), 2)
            try:
                with warnings.catch_warnings(record=True) as caught:
                    warnings.simplefilter("always")
                    yield notes
            finally:
                try:
                    sys.stderr.flush()
                except (OSError, ValueError):
                    pass
                os.dup2(saved, 2)
                os.close(saved)
                self._scratch.seek(0)
                data = self._scratch.read(MAX_NOTES * MAX_NOTE_CHARS * 4)
                self._scratch.seek(0)
                self._scratch.truncate()
                lines = [line.strip() for line in data.decode("utf-8", "replace").splitlines()]
                lines += [f"{w.category.__name__}: {w.message}" for w in caught]
                seen: set[str] = set()
                for line in lines:
                    if line and line not in seen and len(notes) < MAX_NOTES:
                        seen.add(line)
                        notes.append(line[:MAX_NOTE_CHARS])
